package kubernetes

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"runtime/pprof"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	k8s "k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/yaml"

	"github.com/locolan/loco/core/spec"
	"github.com/locolan/loco/internal/testenv"
)

func TestMain(m *testing.M) {
	code := testenv.Main(m)
	// client-go watches certificate files named in a kubeconfig from a
	// goroutine that never ends; one left here outlived its test's control
	// plane and logged "Loading client cert failed" in later tests.
	var b bytes.Buffer
	pprof.Lookup("goroutine").WriteTo(&b, 2)
	if code == 0 && strings.Contains(b.String(), "dynamicClientCert") {
		fmt.Fprintf(os.Stderr, "a client-go certificate file watcher outlived its test:\n%s\n", b.String())
		code = 1
	}
	os.Exit(code)
}

// startKube starts a control plane for one test (a few seconds) and an
// admin client of it.
func startKube(t testing.TB) (*testenv.Kube, *k8s.Clientset) {
	t.Helper()
	k := testenv.StartKube(t)
	cfg, err := clientcmd.BuildConfigFromFlags("", k.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	cs, err := k8s.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return k, cs
}

// makeNamespace makes a namespace with the base claim testdata/lan.hcl
// names (loco-base), bound to a read-only volume.
func makeNamespace(t testing.TB, cs *k8s.Clientset, ns string) {
	t.Helper()
	ctx := context.Background()
	if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	rox := []corev1.PersistentVolumeAccessMode{corev1.ReadOnlyMany}
	size := corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}
	pv := &corev1.PersistentVolume{ObjectMeta: metav1.ObjectMeta{Name: "base-" + ns},
		Spec: corev1.PersistentVolumeSpec{StorageClassName: "base-" + ns, AccessModes: rox, Capacity: size,
			PersistentVolumeSource: corev1.PersistentVolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/nonexistent/loco-base"}}}}
	if _, err := cs.CoreV1().PersistentVolumes().Create(ctx, pv, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	pvc := &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Name: "loco-base", Namespace: ns},
		Spec: corev1.PersistentVolumeClaimSpec{StorageClassName: ptr("base-" + ns), AccessModes: rox,
			Resources: corev1.VolumeResourceRequirements{Requests: size}}}
	if _, err := cs.CoreV1().PersistentVolumeClaims(ns).Create(ctx, pvc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// kubeCluster loads testdata/lan.hcl aimed at the test control plane.
func kubeCluster(t *testing.T, k *testenv.Kube, ns string, instances int) *spec.Cluster {
	t.Helper()
	c := load(t, "testdata/lan.hcl", nil)
	c.Instances = instances
	c.Runtime.Kube.Kubeconfig, c.Runtime.Kube.Namespace = k.Kubeconfig, ns
	return c
}

// recorder keeps the bodies of the PATCH requests a client sends.
type recorder struct {
	mu     sync.Mutex
	bodies map[string][]byte // by URL path
	next   http.RoundTripper
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Method == http.MethodPatch && req.Body != nil {
		b, _ := io.ReadAll(req.Body)
		req.Body = io.NopCloser(bytes.NewReader(b))
		r.mu.Lock()
		r.bodies[req.URL.Path] = b
		r.mu.Unlock()
	}
	return r.next.RoundTrip(req)
}

func waitFor(t *testing.T, what string, timeout time.Duration, f func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	start := time.Now()
	for {
		ok, state := f()
		if ok {
			t.Logf("%s after %v", what, time.Since(start).Round(time.Millisecond))
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v (%s)", what, timeout, state)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func podCount(t *testing.T, cs *k8s.Clientset, ns, cluster string) int {
	pods, err := cs.CoreV1().Pods(ns).List(context.Background(), metav1.ListOptions{LabelSelector: LabelCluster + "=" + cluster})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, p := range pods.Items {
		if p.DeletionTimestamp == nil {
			n++
		}
	}
	return n
}

func versions(t *testing.T, cs *k8s.Clientset, o *Objects) map[string]string {
	ctx := context.Background()
	rv := map[string]string{}
	for _, cm := range o.ConfigMaps {
		got, err := cs.CoreV1().ConfigMaps(o.Namespace).Get(ctx, cm.Name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		rv["ConfigMap "+cm.Name] = got.ResourceVersion
	}
	svc, err := cs.CoreV1().Services(o.Namespace).Get(ctx, o.Service.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	rv["Service"] = svc.ResourceVersion
	sts, err := cs.AppsV1().StatefulSets(o.Namespace).Get(ctx, o.StatefulSet.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	rv["StatefulSet"] = sts.ResourceVersion
	return rv
}

// TestLifecycleAgainstAPIServer runs the whole life of a cluster against a
// real kube-apiserver, etcd and kube-controller-manager (no kubelet: pods
// are created by the StatefulSet controller and stay Pending): apply,
// render equals what apply sent, re-apply changes nothing, drift is
// corrected, scale up, stop keeps the disks, destroy deletes them.
func TestLifecycleAgainstAPIServer(t *testing.T) {
	k, cs := startKube(t)
	ctx := context.Background()
	ns := "life"
	makeNamespace(t, cs, ns)
	c := kubeCluster(t, k, ns, 3)

	rec := &recorder{bodies: map[string][]byte{}}
	kc, err := Connect(c.Runtime.Kube, func(rt http.RoundTripper) http.RoundTripper { rec.next = rt; return rec })
	if err != nil {
		t.Fatal(err)
	}
	o, err := Build(c, c.Instances)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := kc.Apply(ctx, o); err != nil {
		t.Fatal(err)
	}
	t.Logf("applied %d objects in %v", len(o.List()), time.Since(start).Round(time.Millisecond))

	// What render prints is what apply sent, object by object.
	var buf bytes.Buffer
	if err := Render(&buf, o); err != nil {
		t.Fatal(err)
	}
	docs := strings.Split(strings.TrimPrefix(buf.String(), "---\n"), "\n---\n")
	if len(docs) != len(rec.bodies) {
		t.Fatalf("render printed %d objects, apply sent %d", len(docs), len(rec.bodies))
	}
	for i, obj := range o.List() {
		var path string
		switch obj.Kind {
		case "ConfigMap":
			path = fmt.Sprintf("/api/v1/namespaces/%s/configmaps/%s", ns, obj.Name)
		case "Service":
			path = fmt.Sprintf("/api/v1/namespaces/%s/services/%s", ns, obj.Name)
		case "StatefulSet":
			path = fmt.Sprintf("/apis/apps/v1/namespaces/%s/statefulsets/%s", ns, obj.Name)
		}
		sent, ok := rec.bodies[path]
		if !ok {
			t.Fatalf("apply sent nothing to %s (sent: %v)", path, keys(rec.bodies))
		}
		rendered, err := yaml.YAMLToJSON([]byte(docs[i]))
		if err != nil {
			t.Fatal(err)
		}
		var a, b any
		json.Unmarshal(sent, &a)
		json.Unmarshal(rendered, &b)
		if !reflect.DeepEqual(a, b) {
			t.Errorf("%s %s: render differs from what apply sent\nsent:     %s\nrendered: %s", obj.Kind, obj.Name, sent, rendered)
		}
	}

	// The StatefulSet controller makes one pod and one overlay claim per
	// guest, with stable names.
	if err := kc.WaitPods(ctx, o); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		name := fmt.Sprintf("lan-%d", i)
		if _, err := cs.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{}); err != nil {
			t.Errorf("pod %s: %v", name, err)
		}
		if _, err := cs.CoreV1().PersistentVolumeClaims(ns).Get(ctx, "overlay-"+name, metav1.GetOptions{}); err != nil {
			t.Errorf("claim overlay-%s: %v", name, err)
		}
	}
	sts, err := cs.AppsV1().StatefulSets(ns).Get(ctx, "lan", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if ru := sts.Spec.UpdateStrategy.RollingUpdate; ru == nil || ru.MaxUnavailable == nil || ru.MaxUnavailable.IntValue() != 1 {
		t.Errorf("rolling update %+v: maxUnavailable 1 did not stick", sts.Spec.UpdateStrategy)
	}
	owned := false
	for _, mf := range sts.ManagedFields {
		if mf.Manager == FieldManager && mf.Operation == metav1.ManagedFieldsOperationApply {
			owned = true
		}
	}
	if !owned {
		t.Errorf("no apply entry of field manager %q in %+v", FieldManager, sts.ManagedFields)
	}

	// Re-applying the same spec changes nothing: no object gets a new
	// resourceVersion.
	before := versions(t, cs, o)
	if err := kc.Apply(ctx, o); err != nil {
		t.Fatal(err)
	}
	if after := versions(t, cs, o); !reflect.DeepEqual(before, after) {
		t.Errorf("re-apply changed objects: before %v, after %v", before, after)
	}

	// Drift: someone edits the image and deletes the Service; the next
	// apply puts both back.
	sts.Spec.Template.Spec.Containers[0].Image = "someone/else:latest"
	if _, err := cs.AppsV1().StatefulSets(ns).Update(ctx, sts, metav1.UpdateOptions{FieldManager: "kubectl-edit"}); err != nil {
		t.Fatal(err)
	}
	if err := cs.CoreV1().Services(ns).Delete(ctx, "lan", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := kc.Apply(ctx, o); err != nil {
		t.Fatal(err)
	}
	sts, err = cs.AppsV1().StatefulSets(ns).Get(ctx, "lan", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if img := sts.Spec.Template.Spec.Containers[0].Image; img != spec.DefaultKubeImage {
		t.Errorf("image %q after re-apply, want the drift corrected to %q", img, spec.DefaultKubeImage)
	}
	if _, err := cs.CoreV1().Services(ns).Get(ctx, "lan", metav1.GetOptions{}); err != nil {
		t.Errorf("deleted Service not recreated: %v", err)
	}

	// Ownership: another manager applying a conflicting replica count is
	// refused while loco owns the field.
	conflict := []byte(`{"apiVersion":"apps/v1","kind":"StatefulSet","metadata":{"name":"lan"},"spec":{"replicas":7}}`)
	_, err = cs.AppsV1().StatefulSets(ns).Patch(ctx, "lan", types.ApplyPatchType, conflict, metav1.PatchOptions{FieldManager: "gitops"})
	if err == nil || !strings.Contains(err.Error(), "conflict") || !strings.Contains(err.Error(), FieldManager) {
		t.Errorf("a conflicting apply by another manager: %v, want a conflict naming %q", err, FieldManager)
	}

	// Scale: 5 guests.
	c5 := kubeCluster(t, k, ns, 5)
	o5, err := Build(c5, 5)
	if err != nil {
		t.Fatal(err)
	}
	if err := kc.Apply(ctx, o5); err != nil {
		t.Fatal(err)
	}
	if err := kc.WaitPods(ctx, o5); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "5 pods", time.Minute, func() (bool, string) { n := podCount(t, cs, ns, "lan"); return n == 5, fmt.Sprint(n, " pods") })

	// Shrinking the plan from two ConfigMaps to one deletes the other.
	stale := o5.ConfigMaps[0].DeepCopy()
	stale.Name = "lan-plan-1"
	if _, err := cs.CoreV1().ConfigMaps(ns).Create(ctx, stale, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := kc.Apply(ctx, o5); err != nil {
		t.Fatal(err)
	}
	if _, err := cs.CoreV1().ConfigMaps(ns).Get(ctx, "lan-plan-1", metav1.GetOptions{}); err == nil {
		t.Error("a plan ConfigMap the plan no longer has was kept")
	}

	// Status: every guest, Pending with no node (no kubelet here), its
	// accelerator and its claim.
	st, err := kc.Status(ctx, "lan", ns, 5)
	if err != nil {
		t.Fatal(err)
	}
	if len(st) != 5 {
		t.Fatalf("status of %d guests, want 5: %+v", len(st), st)
	}
	for _, g := range st {
		if g.Phase != "Pending" || g.Node != "" || g.Accel != "kvm" || !strings.HasPrefix(g.Claim, "overlay-"+g.Name) {
			t.Errorf("guest %+v: want Pending, no node, accel kvm (device-plugin), its claim", g)
		}
	}

	// Stop: scale to zero; pods go, claims stay.
	o0, err := Build(c5, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := kc.Apply(ctx, o0); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "no pods after stop", time.Minute, func() (bool, string) { n := podCount(t, cs, ns, "lan"); return n == 0, fmt.Sprint(n, " pods") })
	pvcs, err := cs.CoreV1().PersistentVolumeClaims(ns).List(ctx, metav1.ListOptions{LabelSelector: LabelCluster + "=lan"})
	if err != nil {
		t.Fatal(err)
	}
	if len(pvcs.Items) != 5 {
		t.Errorf("%d overlay claims after stop, want the 5 kept", len(pvcs.Items))
	}
	st, _ = kc.Status(ctx, "lan", ns, 5)
	for _, g := range st {
		if g.Phase != "Stopped" || g.Claim == "" {
			t.Errorf("after stop guest %+v: want Stopped with its claim", g)
		}
	}

	// Destroy: everything loco made goes, claims included.
	deleted, err := kc.Destroy(ctx, "lan", ns)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("destroy deleted %v", deleted)
	waitFor(t, "claims gone after destroy", time.Minute, func() (bool, string) {
		pvcs, err := cs.CoreV1().PersistentVolumeClaims(ns).List(ctx, metav1.ListOptions{LabelSelector: LabelCluster + "=lan"})
		if err != nil {
			return false, err.Error()
		}
		return len(pvcs.Items) == 0, fmt.Sprint(len(pvcs.Items), " claims")
	})
	if _, err := cs.AppsV1().StatefulSets(ns).Get(ctx, "lan", metav1.GetOptions{}); err == nil {
		t.Error("StatefulSet left after destroy")
	}
	cms, _ := cs.CoreV1().ConfigMaps(ns).List(ctx, metav1.ListOptions{LabelSelector: LabelCluster + "=lan"})
	if len(cms.Items) != 0 {
		t.Errorf("%d ConfigMaps left after destroy", len(cms.Items))
	}
}

func keys(m map[string][]byte) []string {
	var l []string
	for k := range m {
		l = append(l, k)
	}
	return l
}

// TestApplyErrors: a missing namespace, an unreachable API server, an RBAC
// denial part-way and a quota say what happened and what is left applied.
func TestApplyErrors(t *testing.T) {
	k, cs := startKube(t)
	ctx := context.Background()

	t.Run("missing namespace", func(t *testing.T) {
		c := kubeCluster(t, k, "nowhere", 1)
		kc, err := Connect(c.Runtime.Kube, nil)
		if err != nil {
			t.Fatal(err)
		}
		o, _ := Build(c, 1)
		err = kc.Apply(ctx, o)
		if err == nil || !strings.Contains(err.Error(), `namespace "nowhere" does not exist`) || !strings.Contains(err.Error(), "nothing was applied") {
			t.Fatalf("apply into a missing namespace: %v", err)
		}
		t.Log(err)
	})

	t.Run("missing base claim", func(t *testing.T) {
		ns := "nobase"
		if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		c := kubeCluster(t, k, ns, 1)
		kc, err := Connect(c.Runtime.Kube, nil)
		if err != nil {
			t.Fatal(err)
		}
		o, _ := Build(c, 1)
		err = kc.Apply(ctx, o)
		if err == nil || !strings.Contains(err.Error(), `no PersistentVolumeClaim "loco-base"`) || !strings.Contains(err.Error(), "nothing was applied") {
			t.Fatalf("apply without the base claim: %v", err)
		}
		t.Log(err)
	})

	t.Run("unreachable", func(t *testing.T) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		l.Close()
		cfg, _ := os.ReadFile(k.Kubeconfig)
		bad := filepath.Join(t.TempDir(), "kubeconfig")
		os.WriteFile(bad, []byte(strings.ReplaceAll(string(cfg), strings.TrimPrefix(k.Server, "https://"), addr)), 0o600)
		c := kubeCluster(t, k, "default", 1)
		c.Runtime.Kube.Kubeconfig = bad
		kc, err := Connect(c.Runtime.Kube, nil)
		if err != nil {
			t.Fatal(err)
		}
		o, _ := Build(c, 1)
		err = kc.Apply(ctx, o)
		if err == nil || !strings.Contains(err.Error(), "cannot reach the Kubernetes API server") || !strings.Contains(err.Error(), "nothing was applied") {
			t.Fatalf("apply to a closed port: %v", err)
		}
		t.Log(err)
	})

	t.Run("rbac denial part-way", func(t *testing.T) {
		ns := "rbac"
		makeNamespace(t, cs, ns)
		// alice may apply ConfigMaps and nothing else.
		role := &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: "cm-only", Namespace: ns},
			Rules: []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"configmaps"}, Verbs: []string{"get", "create", "patch"}}}}
		if _, err := cs.RbacV1().Roles(ns).Create(ctx, role, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		rb := &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "alice", Namespace: ns},
			RoleRef:  rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: "cm-only"},
			Subjects: []rbacv1.Subject{{Kind: "User", Name: "alice", APIGroup: "rbac.authorization.k8s.io"}}}
		if _, err := cs.RbacV1().RoleBindings(ns).Create(ctx, rb, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		c := kubeCluster(t, k, ns, 2)
		c.Runtime.Kube.Kubeconfig = k.UserKubeconfig("alice")
		kc, err := Connect(c.Runtime.Kube, nil)
		if err != nil {
			t.Fatal(err)
		}
		o, _ := Build(c, 2)
		err = kc.Apply(ctx, o)
		if err == nil || !strings.Contains(err.Error(), "may not apply services") || !strings.Contains(err.Error(), "left applied: ConfigMap lan-plan-0") {
			t.Fatalf("apply without permission for Services: %v", err)
		}
		t.Log(err)
	})

	t.Run("quota exceeded", func(t *testing.T) {
		ns := "quota"
		makeNamespace(t, cs, ns)
		q := &corev1.ResourceQuota{ObjectMeta: metav1.ObjectMeta{Name: "two-pods", Namespace: ns},
			Spec: corev1.ResourceQuotaSpec{Hard: corev1.ResourceList{corev1.ResourcePods: resource.MustParse("2")}}}
		if _, err := cs.CoreV1().ResourceQuotas(ns).Create(ctx, q, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		// The quota controller must have counted before it is enforced.
		waitFor(t, "quota counted", time.Minute, func() (bool, string) {
			got, err := cs.CoreV1().ResourceQuotas(ns).Get(ctx, "two-pods", metav1.GetOptions{})
			return err == nil && got.Status.Hard != nil, "no status"
		})
		c := kubeCluster(t, k, ns, 4)
		kc, err := Connect(c.Runtime.Kube, nil)
		if err != nil {
			t.Fatal(err)
		}
		o, _ := Build(c, 4)
		if err := kc.Apply(ctx, o); err != nil {
			t.Fatal(err)
		}
		wctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		err = kc.WaitPods(wctx, o)
		if err == nil || !strings.Contains(err.Error(), "exceeded quota") || !strings.Contains(err.Error(), "stay applied") {
			t.Fatalf("4 guests under a 2-pod quota: %v", err)
		}
		t.Log(err)
	})
}

// BenchmarkApply100 is `loco run` of 100 guests up to "objects applied",
// against the real API server; each iteration a new cluster. It also logs
// how long the StatefulSet controller took to create the 100 pods.
func BenchmarkApply100(b *testing.B) {
	kube, cs := startKube(b)
	ctx := context.Background()
	ns := fmt.Sprintf("bench-%d", time.Now().UnixNano()%100000)
	makeNamespace(b, cs, ns)
	i := 0
	var pods time.Duration
	for b.Loop() {
		c := load(b, "testdata/lan.hcl", nil)
		c.Name, c.Instances = fmt.Sprintf("b%d", i), 100
		i++
		c.Runtime.Kube.Kubeconfig, c.Runtime.Kube.Namespace = kube.Kubeconfig, ns
		kc, err := Connect(c.Runtime.Kube, nil)
		if err != nil {
			b.Fatal(err)
		}
		o, err := Build(c, c.Instances)
		if err != nil {
			b.Fatal(err)
		}
		if err := kc.Apply(ctx, o); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		start := time.Now()
		if err := kc.WaitPods(ctx, o); err != nil {
			b.Fatal(err)
		}
		pods += time.Since(start)
		b.StartTimer()
	}
	b.ReportMetric(float64(pods.Milliseconds())/float64(i), "ms-to-100-pods/op")
}
