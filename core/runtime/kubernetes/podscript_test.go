package kubernetes

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/locolan/loco/internal/testenv"
)

// TestPodScriptBootsAndPowersDown runs what a guest's pod runs, without a
// kubelet: the start script from the plan ConfigMap as PID 1 of its own
// PID and mount namespaces, the base volume and overlay claim bound at the
// pod's paths, then the StatefulSet's preStop command entered into those
// namespaces (as the kubelet execs it into the container). The real test
// guest boots under TCG, gets its overlay made on first start, and powers
// off through the ACPI button well within stop_grace. Boots QEMU: run it
// under the shared lock.
func TestPodScriptBootsAndPowersDown(t *testing.T) {
	guest := testenv.TestGuest(t)
	dir := testenv.ShortTempDir(t)
	for _, f := range []string{"vmlinuz", "initrd.img", "base.qcow2"} {
		b, err := os.ReadFile(filepath.Join(guest, f))
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(dir, f), b, 0o644)
	}
	specFile := filepath.Join(dir, "pod.hcl")
	os.WriteFile(specFile, []byte(`cluster "pod" {
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
    base_volume = "host-path:/srv/loco"
    stop_grace  = "60s"
  }
}
`), 0o644)
	c := load(t, specFile, nil)
	o, err := Build(c, 2)
	if err != nil {
		t.Fatal(err)
	}
	script := filepath.Join(dir, "1.sh")
	os.WriteFile(script, []byte(o.ConfigMaps[0].Data["1.sh"]), 0o755)
	claim := filepath.Join(dir, "claim")
	os.Mkdir(claim, 0o755)

	// A tmpfs over /var/lib in the new mount namespace gives the pod's
	// paths without touching the host's /var/lib.
	setup := fmt.Sprintf(`set -e
mount -t tmpfs tmpfs /var/lib
mkdir -p %[1]s %[2]s/guests
mount --bind %[3]s %[1]s
mount -o remount,bind,ro %[1]s
mount --bind %[4]s %[2]s/guests
export LOCO_INDEX=1
exec /bin/sh %[5]s`, PodBaseDir, PodStateDir, dir, claim, script)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	// --kill-child: unshare killed (a failed test, a cancelled context)
	// takes the pod's PID 1, and with it every process of the namespace.
	pod := exec.CommandContext(ctx, "unshare", "--mount", "--pid", "--fork", "--kill-child", "--propagation", "private", "/bin/sh", "-c", setup)
	out, _ := os.Create(filepath.Join(dir, "pod.out"))
	defer out.Close()
	pod.Stdout, pod.Stderr = out, out
	if err := pod.Start(); err != nil {
		t.Fatal(err)
	}
	// exited is closed when the pod is gone, waitErr is then its end.
	var waitErr error
	exited := make(chan struct{})
	go func() { waitErr = pod.Wait(); close(exited) }()
	defer func() {
		testenv.KillTree(pod.Process.Pid)
		<-exited
	}()

	serial := filepath.Join(claim, "1", "serial.log")
	start := time.Now()
	for {
		b, _ := os.ReadFile(serial)
		if strings.Contains(string(b), "LOCO-READY name=pod-1") {
			break
		}
		select {
		case <-exited:
			log, _ := os.ReadFile(filepath.Join(dir, "pod.out"))
			t.Fatalf("the pod's QEMU exited before the guest was ready: %v\n%s", waitErr, log)
		case <-time.After(200 * time.Millisecond):
		}
		if time.Since(start) > 3*time.Minute {
			log, _ := os.ReadFile(filepath.Join(dir, "pod.out"))
			t.Fatalf("guest not ready after 3 minutes; serial:\n%s\npod:\n%s", b, log)
		}
	}
	t.Logf("guest ready %v after the pod started", time.Since(start).Round(time.Millisecond))
	if _, err := os.Stat(filepath.Join(claim, "1", "disk.qcow2")); err != nil {
		t.Errorf("the start script made no overlay on the claim: %v", err)
	}

	// The pod's PID 1 (the start script's shell) is unshare's child, and
	// QEMU is the shell's.
	child := func(pid int) int {
		kids, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", pid, pid))
		if err != nil || len(strings.Fields(string(kids))) == 0 {
			t.Fatalf("no child of %d: %v", pid, err)
		}
		n, _ := strconv.Atoi(strings.Fields(string(kids))[0])
		return n
	}
	pid1 := child(pod.Process.Pid)
	qemuPID := child(pid1)
	// QEMU renames its thread (-name process=...): the command line says.
	cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", qemuPID))
	if !strings.HasPrefix(string(cmdline), "qemu-system") {
		t.Fatalf("the pod's PID 1's child runs %q, not QEMU", cmdline)
	}
	hook := o.StatefulSet.Spec.Template.Spec.Containers[0].Lifecycle.PreStop.Exec.Command
	stop := time.Now()
	pre := exec.CommandContext(ctx, "nsenter", append([]string{"-t", strconv.Itoa(pid1), "-m", "-p", "--", "env", "LOCO_INDEX=1"}, hook...)...)
	// The hook must return by itself (a hook killed with its container is
	// a FailedPreStopHook event), after QEMU is gone.
	if b, err := pre.CombinedOutput(); err != nil {
		t.Fatalf("preStop: %v\n%s", err, b)
	}
	took := time.Since(stop)
	if err := syscall.Kill(qemuPID, 0); err == nil {
		t.Fatal("preStop returned but QEMU still runs")
	}
	select {
	case <-exited:
		if waitErr != nil {
			log, _ := os.ReadFile(filepath.Join(dir, "pod.out"))
			t.Errorf("the pod ended with %v after the power-down, want QEMU's 0\n%s", waitErr, log)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("QEMU is gone but the pod's PID 1 did not exit")
	}
	if b, _ := os.ReadFile(serial); !strings.Contains(string(b), "LOCO-POWEROFF") {
		t.Errorf("the guest did not see the power button (no LOCO-POWEROFF on its serial):\n%s", b)
	}
	t.Logf("preStop to QEMU gone: %v (stop_grace %v)", took.Round(time.Millisecond), c.Runtime.StopGrace)
	if took >= c.Runtime.StopGrace {
		t.Errorf("the guest did not power down within stop_grace: %v", took)
	}
}
