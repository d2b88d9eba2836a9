package kubernetes

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/locolan/loco/core/runtime/containerd"
	"github.com/locolan/loco/internal/testenv"
)

// TestGuestsBootInRealPods runs guests in real pods: a kubelet built from
// hack/go.mod on this machine's cgroup v1, a private containerd with its
// CRI plugin, the containerd runtime's image, the test guest from a
// host-path base volume and each overlay on its own (host-path) persistent
// volume. Both guests boot to LOCO-READY under TCG; `loco status` shows
// Running on node kubelet-0; `loco stop` (scale to zero) terminates the
// pods, each guest powered down by the preStop hook's ACPI button well
// within stop_grace, and keeps each guest's disk. When the test is over
// (pass or fail) no process of it is left: no QEMU, shim, kubelet,
// containerd, etcd or API server. Boots QEMU: run it under the shared lock.
func TestGuestsBootInRealPods(t *testing.T) {
	guest := testenv.TestGuest(t)
	// Registered first, so it runs after every other cleanup. The
	// control plane's and the kubelet's directories are in every
	// daemon's and shim's command line.
	mine := []string{"-name real-"}
	t.Cleanup(func() {
		if left := testenv.ProcessesMentioning(mine...); len(left) > 0 {
			t.Errorf("processes left after the test:\n%s", strings.Join(left, "\n"))
		}
	})
	k, cs := startKube(t)
	k.StartScheduler()
	kl := k.StartKubelet()
	mine = append(mine, k.Dir, kl.Dir)
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()

	drv := containerd.New(slog.Default(), containerd.Config{Address: kl.Containerd, Namespace: testenv.CRINamespace})
	if _, err := drv.EnsureImage(ctx); err != nil {
		t.Fatal(err)
	}
	drv.Close()

	dir := testenv.ShortTempDir(t)
	base := filepath.Join(dir, "base")
	os.Mkdir(base, 0o755)
	for _, f := range []string{"vmlinuz", "initrd.img", "base.qcow2"} {
		b, err := os.ReadFile(filepath.Join(guest, f))
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(base, f), b, 0o644)
		os.WriteFile(filepath.Join(dir, f), nil, 0o644) // the spec's local copies, by name
	}
	ns := "real"
	if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		d := filepath.Join(dir, fmt.Sprintf("pv%d", i))
		os.Mkdir(d, 0o755)
		pv := &corev1.PersistentVolume{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("overlay-pv-%d", i)},
			Spec: corev1.PersistentVolumeSpec{StorageClassName: "local", AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
				Capacity:               corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("8Gi")},
				PersistentVolumeSource: corev1.PersistentVolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: d}}}}
		if _, err := cs.CoreV1().PersistentVolumes().Create(ctx, pv, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	specFile := filepath.Join(dir, "real.hcl")
	os.WriteFile(specFile, []byte(fmt.Sprintf(`cluster "real" {
  instances = 2
  image {
    kernel     = "vmlinuz"
    initrd     = "initrd.img"
    disk       = "base.qcow2"
    min_memory = 96
  }
  guest {
    memory = 128
  }
  runtime "kubernetes" {
    kubeconfig    = %q
    namespace     = %q
    base_volume   = "host-path:%s"
    storage_class = "local"
    stop_grace    = "60s"
  }
}
`, k.Kubeconfig, ns, base)), 0o644)
	c := load(t, specFile, nil)
	kc, err := Connect(c.Runtime.Kube, nil)
	if err != nil {
		t.Fatal(err)
	}
	o, err := Build(c, 2)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := kc.Apply(ctx, o); err != nil {
		t.Fatal(err)
	}
	// Each guest's serial log is on its overlay volume: find it by name.
	ready := func(name string) bool {
		logs, _ := filepath.Glob(filepath.Join(dir, "pv*", "*", "serial.log"))
		for _, l := range logs {
			b, _ := os.ReadFile(l)
			if strings.Contains(string(b), "LOCO-READY name="+name) {
				return true
			}
		}
		return false
	}
	waitFor(t, "both guests LOCO-READY in real pods", 6*time.Minute, func() (bool, string) {
		st, _ := kc.Status(ctx, "real", ns, 2)
		return ready("real-0") && ready("real-1"), fmt.Sprintf("%+v\nkubelet:\n%s", st, tail(kl.Dir, "kubelet.log"))
	})
	t.Logf("apply to both guests ready: %v", time.Since(start).Round(time.Millisecond))
	st, err := kc.Status(ctx, "real", ns, 2)
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range st {
		if g.Phase != "Running" || g.Node != kl.Node || g.Accel != "tcg" || !strings.Contains(g.Claim, "Bound") {
			t.Errorf("guest %+v: want Running on %s, tcg, a Bound claim", g, kl.Node)
		}
	}
	overlays, _ := filepath.Glob(filepath.Join(dir, "pv*", "*", "disk.qcow2"))
	if len(overlays) != 2 {
		t.Errorf("%d overlays on the claims' volumes, want 2: %v", len(overlays), overlays)
	}

	// loco stop: replicas 0; the pods terminate, the overlays stay.
	o0, _ := Build(c, 0)
	stop := time.Now()
	if err := kc.Apply(ctx, o0); err != nil {
		t.Fatal(err)
	}
	// Gone, not just terminating: the kubelet deletes a pod once its
	// containers have ended, after the preStop hook.
	waitFor(t, "pods gone after stop", 2*time.Minute, func() (bool, string) {
		pods, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: LabelCluster + "=real"})
		if err != nil {
			return false, err.Error()
		}
		return len(pods.Items) == 0, fmt.Sprint(len(pods.Items), " pods")
	})
	took := time.Since(stop)
	t.Logf("stop to both pods gone: %v (stop_grace %v)", took.Round(time.Millisecond), c.Runtime.StopGrace)
	logs, _ := filepath.Glob(filepath.Join(dir, "pv*", "*", "serial.log"))
	for _, l := range logs {
		if b, _ := os.ReadFile(l); !strings.Contains(string(b), "LOCO-POWEROFF") {
			t.Errorf("%s: the guest saw no power button (no LOCO-POWEROFF)", l)
		}
	}
	if took >= c.Runtime.StopGrace {
		t.Errorf("the pods took %v to go, not within stop_grace %v: the guests were not powered down by the hook", took, c.Runtime.StopGrace)
	}
	evs, err := cs.CoreV1().Events(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range evs.Items {
		if e.Reason == "FailedPreStopHook" {
			t.Errorf("%s %s: %s %s", e.InvolvedObject.Kind, e.InvolvedObject.Name, e.Reason, e.Message)
		}
	}
	if overlays, _ := filepath.Glob(filepath.Join(dir, "pv*", "*", "disk.qcow2")); len(overlays) != 2 {
		t.Errorf("overlays after stop: %v, want both kept", overlays)
	}
}

func tail(dir, name string) string {
	b, _ := os.ReadFile(filepath.Join(dir, name))
	if len(b) > 3000 {
		b = b[len(b)-3000:]
	}
	return string(b)
}
