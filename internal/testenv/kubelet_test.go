package testenv

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestKubeletRunsAPod: the real kubelet registers its node and runs a pod
// (busybox from the pause image) that writes into a hostPath volume; no
// guest is booted.
func TestKubeletRunsAPod(t *testing.T) {
	k := StartKube(t)
	k.StartScheduler()
	kl := k.StartKubelet()
	out := ShortTempDir(t)
	pod := fmt.Sprintf(`{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "hello", "namespace": "default"},
  "spec": {"automountServiceAccountToken": false, "terminationGracePeriodSeconds": 1,
    "containers": [{"name": "c", "image": %q, "imagePullPolicy": "Never",
      "command": ["/busybox", "sh", "-c", "echo hello from $(/busybox hostname) > /out/hello; exec /busybox sleep 3600"],
      "volumeMounts": [{"name": "out", "mountPath": "/out"}]}],
    "volumes": [{"name": "out", "hostPath": {"path": %q}}]}}`, PauseImage, out)
	deadline := time.Now().Add(3 * time.Minute)
	// The ServiceAccount admission wants the namespace's default account,
	// which the controller manager makes a moment after start.
	for {
		resp, err := k.Post("/api/v1/namespaces/default/pods", pod)
		if err == nil {
			break
		}
		if time.Now().After(deadline) || !strings.Contains(resp, "serviceaccount") {
			t.Fatalf("creating the pod: %v\n%s", err, resp)
		}
		time.Sleep(500 * time.Millisecond)
	}
	start := time.Now()
	for {
		b, err := os.ReadFile(filepath.Join(out, "hello"))
		if err == nil && strings.Contains(string(b), "hello from hello") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the pod wrote nothing in 3 minutes; kubelet:\n%s", tail(filepath.Join(kl.Dir, "kubelet.log")))
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Logf("pod ran %v after it was created", time.Since(start).Round(time.Millisecond))
}
