package testenv

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	containerd "github.com/containerd/containerd"
	"github.com/containerd/containerd/errdefs"
	"github.com/containerd/containerd/namespaces"
	"golang.org/x/sys/unix"
)

// Containerd is a private containerd daemon for one test: its own config,
// root, state directory and socket under a temporary directory, no systemd.
// It is Debian's containerd with runc (make test installs both).
type Containerd struct {
	Dir     string // everything the daemon writes lives here
	Address string // its gRPC socket
	cmd     *exec.Cmd
	t       testing.TB
	// namespaces seen at cleanup: runc and the cgroup hierarchy keep an
	// empty directory per namespace, outside Dir.
	namespaces []string
}

// StartContainerd starts a private containerd and stops it when the test
// ends, after killing every task and deleting every container left in it,
// so no shim, mount or cgroup outlives the test.
func StartContainerd(t testing.TB) *Containerd {
	t.Helper()
	if _, err := exec.LookPath("containerd"); err != nil {
		t.Fatalf("containerd is not installed (make test installs Debian's containerd and runc): %v", err)
	}
	dir, err := os.MkdirTemp("", "lc")
	if err != nil {
		t.Fatal(err)
	}
	c := &Containerd{Dir: dir, Address: filepath.Join(dir, "c.sock"), t: t}
	t.Cleanup(c.cleanup)
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	return c
}

func (c *Containerd) config() string {
	return fmt.Sprintf(`version = 2
root = %q
state = %q
# The CRI plugin wants a CNI setup and is not used; the other snapshotters
# only log that their backing filesystem is missing.
disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.snapshotter.v1.aufs",
  "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs",
  "io.containerd.snapshotter.v1.devmapper"]
[grpc]
  address = %q
[ttrpc]
  address = %q
[plugins."io.containerd.internal.v1.opt"]
  path = %q
`, filepath.Join(c.Dir, "root"), filepath.Join(c.Dir, "state"), c.Address, c.Address+".ttrpc", filepath.Join(c.Dir, "opt"))
}

// Start (re)starts the daemon on the same directories and waits until it
// answers.
func (c *Containerd) Start() error {
	cfg := filepath.Join(c.Dir, "config.toml")
	if err := os.WriteFile(cfg, []byte(c.config()), 0o600); err != nil {
		return err
	}
	logf, err := os.OpenFile(filepath.Join(c.Dir, "containerd.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := exec.Command("containerd", "--config", cfg)
	cmd.Stdout, cmd.Stderr = logf, logf
	// Its own process group, so a Ctrl-C of `go test` reaches the cleanup
	// rather than the daemon directly.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting containerd: %w", err)
	}
	c.cmd = cmd
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case <-exited:
			return fmt.Errorf("containerd exited at start: %s", c.LogTail())
		default:
		}
		if conn, err := net.Dial("unix", c.Address); err == nil {
			conn.Close()
			cl, err := containerd.New(c.Address)
			if err == nil {
				_, err = cl.Version(context.Background())
				cl.Close()
				if err == nil {
					return nil
				}
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("containerd did not answer within 30s: %s", c.LogTail())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Kill SIGKILLs the daemon (its shims and their tasks live on).
func (c *Containerd) Kill() {
	if c.cmd == nil || c.cmd.Process == nil {
		return
	}
	c.cmd.Process.Kill()
	for i := 0; i < 100 && syscall.Kill(c.cmd.Process.Pid, 0) == nil; i++ {
		time.Sleep(20 * time.Millisecond)
	}
	c.cmd = nil
}

// PID is the daemon's process ID, 0 when it is not running.
func (c *Containerd) PID() int {
	if c.cmd == nil || c.cmd.Process == nil {
		return 0
	}
	return c.cmd.Process.Pid
}

// LogTail is the end of the daemon's log, for failure messages.
func (c *Containerd) LogTail() string {
	b, _ := os.ReadFile(filepath.Join(c.Dir, "containerd.log"))
	if len(b) > 3000 {
		b = b[len(b)-3000:]
	}
	return string(b)
}

// Mounts are the lines of /proc/mounts under the daemon's directories.
func (c *Containerd) Mounts() []string {
	b, _ := os.ReadFile("/proc/mounts")
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) > 1 && strings.HasPrefix(f[1], c.Dir+"/") {
			out = append(out, l)
		}
	}
	return out
}

// Shims are the PIDs of containerd shims serving this daemon.
func (c *Containerd) Shims() []int {
	entries, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		args := bytes.Split(bytes.TrimRight(b, "\x00"), []byte{0})
		if len(args) == 0 || !strings.Contains(filepath.Base(string(args[0])), "containerd-shim") {
			continue
		}
		if bytes.Contains(b, []byte(c.Address+"\x00")) || bytes.Contains(b, []byte(c.Address+".ttrpc")) {
			pids = append(pids, pid)
		}
	}
	return pids
}

func (c *Containerd) cleanup() {
	t := c.t
	if c.cmd == nil {
		if err := c.Start(); err != nil {
			t.Logf("restarting containerd to clean up: %v", err)
		}
	}
	if c.cmd != nil {
		c.removeAll()
		c.cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() {
			for syscall.Kill(c.cmd.Process.Pid, 0) == nil {
				time.Sleep(20 * time.Millisecond)
			}
			close(done)
		}()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			c.cmd.Process.Kill()
		}
	}
	// Whatever the daemon could not clean (a shim it lost): by force.
	for _, pid := range c.Shims() {
		t.Logf("killing a leftover shim, pid %d", pid)
		syscall.Kill(pid, syscall.SIGKILL)
	}
	for _, m := range c.Mounts() {
		f := strings.Fields(m)
		t.Logf("unmounting a leftover mount %s", f[1])
		unix.Unmount(f[1], unix.MNT_DETACH)
	}
	if err := os.RemoveAll(c.Dir); err != nil {
		t.Logf("removing %s: %v", c.Dir, err)
	}
	// Only empty directories go (rmdir), so another containerd's are safe.
	for _, ns := range c.namespaces {
		for _, d := range c.NamespaceDirs(ns) {
			os.Remove(d)
		}
	}
	// /run/containerd/{s,runc} themselves stay: containerd's fixed
	// places, which another test's daemon may be using at this moment.
}

// NamespaceDirs are the directories outside Dir that containers of
// namespace ns make: runc's state and the namespace's cgroups.
func (c *Containerd) NamespaceDirs(ns string) []string {
	dirs := []string{filepath.Join("/run/containerd/runc", ns)}
	v1, _ := filepath.Glob(filepath.Join("/sys/fs/cgroup", "*", ns))
	dirs = append(dirs, v1...)
	if _, err := os.Stat(filepath.Join("/sys/fs/cgroup", ns)); err == nil {
		dirs = append(dirs, filepath.Join("/sys/fs/cgroup", ns))
	}
	return dirs
}

// removeAll kills every task and deletes every container and image in every
// namespace: the tests' own stops should have left nothing, this is for a
// test that failed half-way.
func (c *Containerd) removeAll() {
	cl, err := containerd.New(c.Address)
	if err != nil {
		c.t.Logf("connecting to containerd to clean up: %v", err)
		return
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	nss, _ := cl.NamespaceService().List(ctx)
	c.namespaces = nss
	for _, ns := range nss {
		nctx := namespaces.WithNamespace(ctx, ns)
		cs, _ := cl.Containers(nctx)
		for _, ctr := range cs {
			if task, err := ctr.Task(nctx, nil); err == nil {
				task.Kill(nctx, syscall.SIGKILL)
				if ch, err := task.Wait(nctx); err == nil {
					select {
					case <-ch:
					case <-time.After(5 * time.Second):
					}
				}
				task.Delete(nctx)
			}
			// Not found: the driver's own watcher deleted it meanwhile.
			if err := ctr.Delete(nctx, containerd.WithSnapshotCleanup); err != nil && !errdefs.IsNotFound(err) {
				c.t.Logf("deleting leftover container %s/%s: %v", ns, ctr.ID(), err)
			}
		}
	}
}
