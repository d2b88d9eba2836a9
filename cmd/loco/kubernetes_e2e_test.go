package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8s "k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/locolan/loco/internal/testenv"
)

// TestKubernetesCLI drives loco's commands against a real kube-apiserver,
// etcd and kube-controller-manager (no kubelet, so pods stay Pending):
// render, run (twice: idempotent), status by file and by name, stop (pods
// go, claims stay), stop --destroy.
func TestKubernetesCLI(t *testing.T) {
	k := testenv.StartKube(t)
	dir := t.TempDir()
	bin := filepath.Join(dir, "loco")
	build := exec.Command("go", "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building loco: %v\n%s", err, out)
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", k.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	cs, err := k8s.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "party"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"vmlinuz", "initrd.img"} {
		os.WriteFile(filepath.Join(dir, f), nil, 0o644)
	}
	specFile := filepath.Join(dir, "party.hcl")
	os.WriteFile(specFile, []byte(fmt.Sprintf(`cluster "party" {
  instances = 3
  image {
    kernel = "vmlinuz"
    initrd = "initrd.img"
  }
  runtime "kubernetes" {
    kubeconfig  = %q
    namespace   = "party"
    base_volume = "host-path:/srv/loco"
    stop_grace  = "10s"
  }
}
`, k.Kubeconfig)), 0o644)
	loco := func(args ...string) (string, error) {
		cmd := exec.Command(bin, args...)
		cmd.Env = append(os.Environ(), "LOCO_STATE_DIR="+filepath.Join(dir, "state"))
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	must := func(args ...string) string {
		t.Helper()
		out, err := loco(args...)
		if err != nil {
			t.Fatalf("loco %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return out
	}

	rendered := must("render", specFile, "--target", "kubernetes")
	for _, want := range []string{"kind: StatefulSet", "kind: Service", "kind: ConfigMap", "name: party-plan-0", "replicas: 3", "clusterIP: None"} {
		if !strings.Contains(rendered, want) {
			t.Errorf("render has no %q:\n%s", want, rendered)
		}
	}
	if out, err := loco("render", specFile, "--target", "nomad"); err == nil || !strings.Contains(out, "only target is kubernetes") {
		t.Errorf("render --target nomad: %v %s", err, out)
	}

	start := time.Now()
	out := must("run", specFile)
	t.Logf("loco run (3 guests, to pods created) took %v:\n%s", time.Since(start).Round(time.Millisecond), out)
	if !strings.Contains(out, "3 pods created") || !strings.Contains(out, "StatefulSet party") {
		t.Errorf("run output:\n%s", out)
	}
	sts, err := cs.AppsV1().StatefulSets("party").Get(ctx, "party", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	out = must("run", specFile)
	again, _ := cs.AppsV1().StatefulSets("party").Get(ctx, "party", metav1.GetOptions{})
	if again.ResourceVersion != sts.ResourceVersion {
		t.Errorf("a second loco run changed the StatefulSet (resourceVersion %s -> %s)", sts.ResourceVersion, again.ResourceVersion)
	}

	status := must("status", specFile)
	t.Logf("loco status:\n%s", status)
	for i := 0; i < 3; i++ {
		if !strings.Contains(status, fmt.Sprintf("party-%d  Pending", i)) {
			t.Errorf("status has no Pending party-%d:\n%s", i, status)
		}
	}
	var js struct {
		Runtime string `json:"runtime"`
		Guests  []struct {
			Name, Phase, Accel string
		} `json:"guests"`
	}
	if err := json.Unmarshal([]byte(must("status", "party", "--json")), &js); err != nil {
		t.Fatal(err)
	}
	if js.Runtime != "kubernetes" || len(js.Guests) != 3 || js.Guests[0].Accel != "tcg" {
		t.Errorf("status --json by name: %+v", js)
	}

	out = must("stop", "party")
	if !strings.Contains(out, "scaled to 0") || !strings.Contains(out, "disks kept") {
		t.Errorf("stop:\n%s", out)
	}
	deadline := time.Now().Add(time.Minute)
	for {
		pods, _ := cs.CoreV1().Pods("party").List(ctx, metav1.ListOptions{})
		if len(pods.Items) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d pods a minute after loco stop", len(pods.Items))
		}
		time.Sleep(200 * time.Millisecond)
	}
	pvcs, _ := cs.CoreV1().PersistentVolumeClaims("party").List(ctx, metav1.ListOptions{})
	if len(pvcs.Items) != 3 {
		t.Errorf("%d claims after stop, want 3 kept", len(pvcs.Items))
	}
	if status := must("status", specFile); !strings.Contains(status, "party-0  Stopped") {
		t.Errorf("status after stop:\n%s", status)
	}

	out = must("stop", specFile, "--destroy")
	if !strings.Contains(out, "deleted PersistentVolumeClaim overlay-party-0") || !strings.Contains(out, "destroyed") {
		t.Errorf("stop --destroy:\n%s", out)
	}
}
