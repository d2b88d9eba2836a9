package kubernetes

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8s "k8s.io/client-go/kubernetes"
)

// makeVolumes creates n PersistentVolumes of a class for the overlay
// claims to bind to (there is no provisioner in the test control plane).
func makeVolumes(t *testing.T, cs *k8s.Clientset, class string, n int) {
	t.Helper()
	for i := 0; i < n; i++ {
		pv := &corev1.PersistentVolume{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("%s-%d", class, i)},
			Spec: corev1.PersistentVolumeSpec{
				StorageClassName: class, AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
				Capacity:                      corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("8Gi")},
				PersistentVolumeReclaimPolicy: corev1.PersistentVolumeReclaimRetain,
				PersistentVolumeSource:        corev1.PersistentVolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: fmt.Sprintf("/nonexistent/loco-test/%d", i)}},
			}}
		if _, err := cs.CoreV1().PersistentVolumes().Create(context.Background(), pv, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
}

// TestStatusAndRollingUpdateOnSimulatedNodes: with kwok simulating two
// KVM nodes (no kubelet, no container runs: simulated), the guests' pods
// are scheduled and Running, `loco status` shows phase, node, restarts
// and the accelerator per guest, and a changed spec rolls the pods one at
// a time, keeping every guest's claim.
func TestStatusAndRollingUpdateOnSimulatedNodes(t *testing.T) {
	k, cs := startKube(t)
	k.StartSimulatedNodes(2, map[string]string{"cpu": "8", "memory": "16Gi", KVMResource: "8"})
	ctx := context.Background()
	ns := "sim"
	makeNamespace(t, cs, ns)
	makeVolumes(t, cs, "fast", 3)
	c := kubeCluster(t, k, ns, 3)
	kc, err := Connect(c.Runtime.Kube, nil)
	if err != nil {
		t.Fatal(err)
	}
	o, err := Build(c, 3)
	if err != nil {
		t.Fatal(err)
	}
	if err := kc.Apply(ctx, o); err != nil {
		t.Fatal(err)
	}
	var st []GuestStatus
	waitFor(t, "3 guests Running on simulated nodes", 3*time.Minute, func() (bool, string) {
		st, err = kc.Status(ctx, "lan", ns, 3)
		if err != nil {
			return false, err.Error()
		}
		for _, g := range st {
			if g.Phase != "Running" || !strings.HasPrefix(g.Node, "kwok-") {
				return false, fmt.Sprintf("%+v", st)
			}
		}
		return true, ""
	})
	for _, g := range st {
		if g.Accel != "kvm" || g.Restarts != 0 || !strings.Contains(g.Claim, "Bound") {
			t.Errorf("guest %+v: want accel kvm, 0 restarts, a Bound claim", g)
		}
	}
	t.Logf("status: %+v", st)
	podUIDs := map[string]string{}
	pods, _ := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
	for _, p := range pods.Items {
		podUIDs[p.Name] = string(p.UID)
	}
	claims := map[string]string{}
	pvcs, _ := cs.CoreV1().PersistentVolumeClaims(ns).List(ctx, metav1.ListOptions{})
	for _, p := range pvcs.Items {
		claims[p.Name] = string(p.UID)
	}

	// A changed spec (more memory for guest 1) changes the template: the
	// pods are replaced one at a time.
	c.Overrides[1] = c.Overrides[2]
	o2, err := Build(c, 3)
	if err != nil {
		t.Fatal(err)
	}
	if o2.StatefulSet.Spec.Template.Annotations[AnnotationPlan] == o.StatefulSet.Spec.Template.Annotations[AnnotationPlan] {
		t.Fatal("a changed plan kept the template's plan hash")
	}
	if err := kc.Apply(ctx, o2); err != nil {
		t.Fatal(err)
	}
	maxDown := 0
	waitFor(t, "rolling update done", 3*time.Minute, func() (bool, string) {
		pods, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: LabelCluster + "=lan"})
		if err != nil {
			return false, err.Error()
		}
		ready := 0
		for _, p := range pods.Items {
			for _, cond := range p.Status.Conditions {
				if cond.Type == corev1.PodReady && cond.Status == corev1.ConditionTrue && p.DeletionTimestamp == nil {
					ready++
				}
			}
		}
		maxDown = max(maxDown, 3-ready)
		sts, err := cs.AppsV1().StatefulSets(ns).Get(ctx, "lan", metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		s := sts.Status
		return s.ObservedGeneration == sts.Generation && s.UpdatedReplicas == 3 && s.ReadyReplicas == 3 && s.CurrentRevision == s.UpdateRevision,
			fmt.Sprintf("%+v", s)
	})
	if maxDown > 1 {
		t.Errorf("%d guests were down at once during the rolling update; maxUnavailable is 1", maxDown)
	}
	// Sampled every 100 ms: a short dip can be missed, a second pod down
	// for longer cannot.
	t.Logf("at most %d guest(s) seen down at once during the roll", maxDown)
	pods, _ = cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
	for _, p := range pods.Items {
		if podUIDs[p.Name] == string(p.UID) || p.Annotations[AnnotationPlan] != o2.StatefulSet.Spec.Template.Annotations[AnnotationPlan] {
			t.Errorf("pod %s was not replaced with the new template", p.Name)
		}
	}
	pvcs, _ = cs.CoreV1().PersistentVolumeClaims(ns).List(ctx, metav1.ListOptions{})
	for _, p := range pvcs.Items {
		if claims[p.Name] != string(p.UID) {
			t.Errorf("claim %s was replaced during the roll", p.Name)
		}
	}
}
