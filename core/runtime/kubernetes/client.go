package kubernetes

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	k8s "k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/locolan/loco/core/spec"
)

// Client applies and inspects one cluster's objects.
type Client struct {
	cs *k8s.Clientset
	// Where: the API server and the kubeconfig it came from, for errors.
	Server, Kubeconfig, User string
}

// Connect makes a client from the runtime's kubeconfig and context. wrap,
// when not nil, wraps the HTTP transport (tests record what is sent).
func Connect(k *spec.KubeRuntime, wrap func(http.RoundTripper) http.RoundTripper) (*Client, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	where := "$KUBECONFIG or ~/.kube/config"
	if k.Kubeconfig != "" {
		rules.ExplicitPath = k.Kubeconfig
		where = k.Kubeconfig
	}
	cc := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{CurrentContext: k.Context})
	cfg, err := cc.ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("reading the kubeconfig (%s; set the runtime's kubeconfig): %w; nothing was applied", where, err)
	}
	raw, _ := cc.RawConfig()
	user := ""
	if ctxName := k.Context; ctxName != "" || raw.CurrentContext != "" {
		if ctxName == "" {
			ctxName = raw.CurrentContext
		}
		if c := raw.Contexts[ctxName]; c != nil {
			user = c.AuthInfo
		}
	}
	cfg.UserAgent = "loco"
	// Applying a few objects is cheap; the default 5 QPS would make a big
	// cluster's apply wait on the client, not the server.
	cfg.QPS, cfg.Burst = 50, 100
	cfg.Timeout = 30 * time.Second
	if wrap != nil {
		cfg.Wrap(wrap)
	}
	cs, err := k8s.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("making a Kubernetes client from %s: %w", where, err)
	}
	return &Client{cs: cs, Server: cfg.Host, Kubeconfig: where, User: user}, nil
}

// Clientset is the underlying client-go clientset.
func (c *Client) Clientset() *k8s.Clientset { return c.cs }

// ApplyError is a failed apply: which object failed and which ones were
// applied before it (and so are left in the cluster).
type ApplyError struct {
	Object  string   // "StatefulSet demo"
	Applied []string // objects applied before the failure, in order
	Err     error
}

func (e *ApplyError) Error() string {
	left := "nothing was applied"
	if len(e.Applied) > 0 {
		left = "left applied: " + strings.Join(e.Applied, ", ") + " (loco stop --destroy removes them)"
	}
	return fmt.Sprintf("applying %s: %v; %s", e.Object, e.Err, left)
}

func (e *ApplyError) Unwrap() error { return e.Err }

// Apply server-side applies the objects in order (field manager "loco",
// forcing ownership of conflicting fields so that drift is corrected). It
// checks the namespace first so that a missing one fails before anything
// is applied.
func (c *Client) Apply(ctx context.Context, o *Objects) error {
	if err := c.checkNamespace(ctx, o.Namespace); err != nil {
		return &ApplyError{Object: "namespace " + o.Namespace, Err: err}
	}
	if err := c.checkBaseClaim(ctx, o); err != nil {
		return &ApplyError{Object: "base volume", Err: err}
	}
	var applied []string
	for _, obj := range o.List() {
		body, err := obj.Body()
		if err != nil {
			return &ApplyError{Object: obj.Kind + " " + obj.Name, Applied: applied, Err: err}
		}
		if err := c.applyOne(ctx, o.Namespace, obj, body); err != nil {
			return &ApplyError{Object: obj.Kind + " " + obj.Name, Applied: applied, Err: c.explain(err, "apply", obj.Kind, o.Namespace)}
		}
		applied = append(applied, obj.Kind+" "+obj.Name)
	}
	return c.pruneConfigMaps(ctx, o)
}

// pruneConfigMaps deletes plan ConfigMaps of the cluster that the plan no
// longer has (a smaller cluster needs fewer), after the StatefulSet stopped
// projecting them.
func (c *Client) pruneConfigMaps(ctx context.Context, o *Objects) error {
	keep := map[string]bool{}
	for _, cm := range o.ConfigMaps {
		keep[cm.Name] = true
	}
	cms, err := c.cs.CoreV1().ConfigMaps(o.Namespace).List(ctx, metav1.ListOptions{LabelSelector: LabelCluster + "=" + o.StatefulSet.Name + "," + LabelManaged + "=loco"})
	if err != nil {
		return &ApplyError{Object: "stale plan ConfigMaps", Err: c.explain(err, "list", "ConfigMap", o.Namespace)}
	}
	for _, cm := range cms.Items {
		if keep[cm.Name] {
			continue
		}
		if err := c.cs.CoreV1().ConfigMaps(o.Namespace).Delete(ctx, cm.Name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			return &ApplyError{Object: "stale ConfigMap " + cm.Name, Err: c.explain(err, "delete", "ConfigMap", o.Namespace)}
		}
	}
	return nil
}

func (c *Client) applyOne(ctx context.Context, ns string, obj Object, body []byte) error {
	opts := metav1.PatchOptions{FieldManager: FieldManager, Force: ptr(true)}
	var err error
	switch obj.Kind {
	case "ConfigMap":
		_, err = c.cs.CoreV1().ConfigMaps(ns).Patch(ctx, obj.Name, types.ApplyPatchType, body, opts)
	case "Service":
		_, err = c.cs.CoreV1().Services(ns).Patch(ctx, obj.Name, types.ApplyPatchType, body, opts)
	case "StatefulSet":
		_, err = c.cs.AppsV1().StatefulSets(ns).Patch(ctx, obj.Name, types.ApplyPatchType, body, opts)
	default:
		err = fmt.Errorf("no apply for kind %s", obj.Kind)
	}
	return err
}

// checkNamespace fails when the namespace does not exist. A user allowed
// only inside the namespace may not read it: then the apply itself says.
func (c *Client) checkNamespace(ctx context.Context, ns string) error {
	_, err := c.cs.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
	switch {
	case err == nil, apierrors.IsForbidden(err):
		return nil
	case apierrors.IsNotFound(err):
		return fmt.Errorf("namespace %q does not exist on %s: create it (kubectl create namespace %s) or set the runtime's namespace; loco does not create namespaces", ns, c.Server, ns)
	}
	return c.explain(err, "get", "namespace", ns)
}

// checkBaseClaim fails when base_volume names a claim that does not
// exist: every pod would wait unschedulable for it.
func (c *Client) checkBaseClaim(ctx context.Context, o *Objects) error {
	for _, v := range o.StatefulSet.Spec.Template.Spec.Volumes {
		if v.Name != "base" || v.PersistentVolumeClaim == nil {
			continue
		}
		name := v.PersistentVolumeClaim.ClaimName
		_, err := c.cs.CoreV1().PersistentVolumeClaims(o.Namespace).Get(ctx, name, metav1.GetOptions{})
		switch {
		case err == nil, apierrors.IsForbidden(err):
			return nil
		case apierrors.IsNotFound(err):
			return fmt.Errorf("base_volume = \"pvc:%s\": no PersistentVolumeClaim %q in namespace %q; make it (ReadOnlyMany) and copy the image's files into it (docs/kubernetes.md)", name, name, o.Namespace)
		default:
			return c.explain(err, "get", "PersistentVolumeClaim", o.Namespace)
		}
	}
	return nil
}

// explain turns an API error into one that says what to do.
func (c *Client) explain(err error, verb, kind, ns string) error {
	var netErr net.Error
	var opErr *net.OpError
	switch {
	case errors.As(err, &opErr), errors.As(err, &netErr), strings.Contains(err.Error(), "connection refused"):
		return fmt.Errorf("cannot reach the Kubernetes API server %s (from %s): %w", c.Server, c.Kubeconfig, err)
	case apierrors.IsForbidden(err) && strings.Contains(err.Error(), "exceeded quota"):
		return fmt.Errorf("a ResourceQuota in namespace %q refuses it: %w", ns, err)
	case apierrors.IsForbidden(err):
		who := c.User
		if who == "" {
			who = "the kubeconfig's user"
		}
		return fmt.Errorf("%s may not %s %ss in namespace %q (RBAC): %w; loco needs get, create, patch, delete on configmaps, services, statefulsets, persistentvolumeclaims and list on pods and events there", who, verb, strings.ToLower(kind), ns, err)
	case apierrors.IsNotFound(err) && strings.Contains(err.Error(), "namespaces"):
		return fmt.Errorf("namespace %q does not exist: %w", ns, err)
	case apierrors.IsUnauthorized(err):
		return fmt.Errorf("the API server %s does not accept the credentials in %s: %w", c.Server, c.Kubeconfig, err)
	}
	return err
}

// WaitPods waits until the StatefulSet controller has acted on the
// applied generation, and fails with the controller's own words when it
// cannot create pods (a quota, an admission webhook).
func (c *Client) WaitPods(ctx context.Context, o *Objects) error {
	ns, name := o.Namespace, o.StatefulSet.Name
	want := *o.StatefulSet.Spec.Replicas
	for {
		sts, err := c.cs.AppsV1().StatefulSets(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return c.explain(err, "get", "StatefulSet", ns)
		}
		if sts.Status.ObservedGeneration >= sts.Generation && sts.Status.Replicas == want {
			return nil
		}
		evs, err := c.cs.CoreV1().Events(ns).List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.kind=StatefulSet,involvedObject.name=" + name + ",reason=FailedCreate"})
		if err == nil {
			for _, ev := range evs.Items {
				if ev.InvolvedObject.UID == sts.UID {
					return fmt.Errorf("the StatefulSet controller cannot create the guests' pods (%d of %d exist): %s; the objects stay applied: fix it and run again, or loco stop --destroy", sts.Status.Replicas, want, ev.Message)
				}
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for StatefulSet %s/%s to have %d pods (it has %d): %w", ns, name, want, sts.Status.Replicas, ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// Destroy deletes the cluster's objects and the guests' overlay claims.
// The base volume is the user's and is never touched.
func (c *Client) Destroy(ctx context.Context, clusterName, ns string) ([]string, error) {
	var deleted []string
	sel := metav1.ListOptions{LabelSelector: LabelCluster + "=" + clusterName + "," + LabelManaged + "=loco"}
	bg := metav1.DeletePropagationBackground
	del := metav1.DeleteOptions{PropagationPolicy: &bg}
	if err := c.cs.AppsV1().StatefulSets(ns).Delete(ctx, clusterName, del); err == nil {
		deleted = append(deleted, "StatefulSet "+clusterName)
	} else if !apierrors.IsNotFound(err) {
		return deleted, c.explain(err, "delete", "StatefulSet", ns)
	}
	if err := c.cs.CoreV1().Services(ns).Delete(ctx, clusterName, del); err == nil {
		deleted = append(deleted, "Service "+clusterName)
	} else if !apierrors.IsNotFound(err) {
		return deleted, c.explain(err, "delete", "Service", ns)
	}
	cms, err := c.cs.CoreV1().ConfigMaps(ns).List(ctx, sel)
	if err != nil {
		return deleted, c.explain(err, "list", "ConfigMap", ns)
	}
	for _, cm := range cms.Items {
		if err := c.cs.CoreV1().ConfigMaps(ns).Delete(ctx, cm.Name, del); err != nil && !apierrors.IsNotFound(err) {
			return deleted, c.explain(err, "delete", "ConfigMap", ns)
		}
		deleted = append(deleted, "ConfigMap "+cm.Name)
	}
	pvcs, err := c.cs.CoreV1().PersistentVolumeClaims(ns).List(ctx, sel)
	if err != nil {
		return deleted, c.explain(err, "list", "PersistentVolumeClaim", ns)
	}
	for _, pvc := range pvcs.Items {
		if err := c.cs.CoreV1().PersistentVolumeClaims(ns).Delete(ctx, pvc.Name, del); err != nil && !apierrors.IsNotFound(err) {
			return deleted, c.explain(err, "delete", "PersistentVolumeClaim", ns)
		}
		deleted = append(deleted, "PersistentVolumeClaim "+pvc.Name)
	}
	return deleted, nil
}

// GuestStatus is one guest's pod as `loco status` shows it.
type GuestStatus struct {
	Name     string `json:"name"`
	Index    int    `json:"index"`
	Pod      string `json:"pod"`              // "" when the guest has no pod (stopped)
	Phase    string `json:"phase"`            // Pending, Running, ...; "Stopped" with no pod
	Node     string `json:"node"`             // "" while unscheduled
	Restarts int32  `json:"restarts"`         // the QEMU container's
	Accel    string `json:"accel"`            // from the pod's loco.dev/accel
	Reason   string `json:"reason,omitempty"` // why it is not running, when the pod says
	Claim    string `json:"claim,omitempty"`  // the overlay's PVC and its phase
}

// Status lists each of the cluster's guests: its pod's phase, node,
// restarts and accelerator, and its overlay claim.
func (c *Client) Status(ctx context.Context, clusterName, ns string, instances int) ([]GuestStatus, error) {
	sel := metav1.ListOptions{LabelSelector: LabelCluster + "=" + clusterName}
	pods, err := c.cs.CoreV1().Pods(ns).List(ctx, sel)
	if err != nil {
		return nil, c.explain(err, "list", "Pod", ns)
	}
	pvcs, err := c.cs.CoreV1().PersistentVolumeClaims(ns).List(ctx, sel)
	if err != nil {
		return nil, c.explain(err, "list", "PersistentVolumeClaim", ns)
	}
	byIndex := map[int]*corev1.Pod{}
	for i := range pods.Items {
		p := &pods.Items[i]
		idx, err := strconv.Atoi(p.Labels[podIndexLabel])
		if err != nil {
			continue
		}
		byIndex[idx] = p
	}
	claims := map[string]string{}
	for _, pvc := range pvcs.Items {
		claims[pvc.Name] = string(pvc.Status.Phase)
	}
	n := instances
	for idx := range byIndex {
		n = max(n, idx+1)
	}
	var out []GuestStatus
	for i := 0; i < n; i++ {
		name := fmt.Sprintf("%s-%d", clusterName, i)
		gs := GuestStatus{Name: name, Index: i, Phase: "Stopped"}
		claim := "overlay-" + name
		if ph, ok := claims[claim]; ok {
			gs.Claim = claim + " (" + ph + ")"
		}
		if p := byIndex[i]; p != nil {
			gs.Pod, gs.Phase, gs.Node, gs.Accel = p.Name, string(p.Status.Phase), p.Spec.NodeName, p.Annotations[AnnotationAccel]
			if p.DeletionTimestamp != nil {
				gs.Phase = "Terminating"
			}
			for _, cs := range p.Status.ContainerStatuses {
				if cs.Name == "qemu" {
					gs.Restarts = cs.RestartCount
					if w := cs.State.Waiting; w != nil {
						gs.Reason = w.Reason
					}
				}
			}
			if gs.Reason == "" {
				for _, cond := range p.Status.Conditions {
					if cond.Type == corev1.PodScheduled && cond.Status != corev1.ConditionTrue {
						gs.Reason = strings.TrimSpace(cond.Reason + ": " + cond.Message)
					}
				}
			}
		}
		if gs.Reason == "" && gs.Phase == string(corev1.PodPending) && gs.Node == "" {
			gs.Reason = "not scheduled yet"
		}
		out = append(out, gs)
	}
	sort.Slice(out, func(a, b int) bool { return out[a].Index < out[b].Index })
	return out, nil
}
