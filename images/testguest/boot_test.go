//go:build linux

// Package testguest holds the loco test guest image (see README.md); this
// file boots the real image under QEMU and checks the contract that other
// loco tests rely on.
package testguest

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

const (
	// guestMemMiB: the Debian kernel alone needs ~80 MiB (it decompresses
	// to 64 MiB at the 16 MiB mark) and unpacking the initramfs OOMs below
	// 92 MiB; see README.md.
	guestMemMiB = 96
	// TCG on a busy two-core machine boots in 5-20 s; leave room.
	bootTimeout = 90 * time.Second
	cmdTimeout  = 15 * time.Second
)

// guestFiles is the build output the test boots.
type guestFiles struct {
	dir, vmlinuz, initrd, base string
}

// buildGuest returns the guest image, running build.sh first. build.sh is
// idempotent, so the default output directory is always brought up to date
// (a stale agent would test the wrong code); a directory given through
// LOCO_TESTGUEST_DIR is used as it is unless files are missing.
func buildGuest(t *testing.T) guestFiles {
	t.Helper()
	buildOnce.Do(func() { built, buildErr = buildGuestOnce() })
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return built
}

// The build is shared by all tests of one run: even when up to date,
// build.sh costs a second or two of apt-cache.
var (
	buildOnce sync.Once
	built     guestFiles
	buildErr  error
)

func buildGuestOnce() (guestFiles, error) {
	here, err := os.Getwd()
	if err != nil {
		return guestFiles{}, fmt.Errorf("working directory: %w", err)
	}
	dir := os.Getenv("LOCO_TESTGUEST_DIR")
	explicit := dir != ""
	if !explicit {
		dir = filepath.Join(here, "..", "..", "build", "testguest")
	}
	g := guestFiles{
		dir:     dir,
		vmlinuz: filepath.Join(dir, "vmlinuz"),
		initrd:  filepath.Join(dir, "initrd.img"),
		base:    filepath.Join(dir, "base.qcow2"),
	}
	missing := false
	for _, f := range []string{g.vmlinuz, g.initrd, g.base} {
		if _, err := os.Stat(f); err != nil {
			missing = true
		}
	}
	if explicit && !missing {
		return g, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", filepath.Join(here, "build.sh"), dir)
	if out, err := cmd.CombinedOutput(); err != nil {
		return guestFiles{}, fmt.Errorf("images/testguest/build.sh %s failed (it needs root on Debian 12: apt-get, cpio, qemu-utils): %w\n%s", dir, err, out)
	}
	return g, nil
}

func requireQEMU(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("boots a VM under TCG; skipped with -short")
	}
	for _, bin := range []string{"qemu-system-x86_64", "qemu-img"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Fatalf("%s not installed: run `make deps` (apt-get install qemu-system-x86 qemu-utils)", bin)
		}
	}
}

func sha256File(t *testing.T, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatalf("hashing %s: %v", path, err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// vm is one running QEMU.
type vm struct {
	t         *testing.T
	dir       string
	serialLog string
	agentSock string
	qmpSock   string
	overlay   string
	cmd       *exec.Cmd
	stderr    bytes.Buffer
	exited    chan struct{}
}

type vmConfig struct {
	append  string   // extra kernel command line
	diskIf  string   // QEMU -drive if=
	devices []string // extra QEMU arguments (NICs)
}

func startVM(t *testing.T, g guestFiles, c vmConfig) *vm {
	t.Helper()
	dir := t.TempDir()
	v := &vm{
		t:         t,
		dir:       dir,
		serialLog: filepath.Join(dir, "serial0.log"),
		agentSock: filepath.Join(dir, "agent.sock"),
		qmpSock:   filepath.Join(dir, "qmp.sock"),
		overlay:   filepath.Join(dir, "overlay.qcow2"),
		exited:    make(chan struct{}),
	}
	if out, err := exec.Command("qemu-img", "create", "-q", "-f", "qcow2", "-F", "qcow2",
		"-b", g.base, v.overlay).CombinedOutput(); err != nil {
		t.Fatalf("qemu-img create overlay: %v\n%s", err, out)
	}
	args := []string{
		"-accel", "tcg",
		"-m", fmt.Sprint(guestMemMiB),
		"-display", "none", "-vga", "std", "-nodefaults",
		"-kernel", g.vmlinuz, "-initrd", g.initrd,
		"-append", "console=tty0 console=ttyS0 " + c.append,
		"-drive", "file=" + v.overlay + ",if=" + c.diskIf + ",format=qcow2",
		"-chardev", "file,id=s0,path=" + v.serialLog + ",append=on",
		"-serial", "chardev:s0",
		"-chardev", "socket,id=s1,path=" + v.agentSock + ",server=on,wait=off",
		"-serial", "chardev:s1",
		"-qmp", "unix:" + v.qmpSock + ",server=on,wait=off",
	}
	args = append(args, c.devices...)
	v.cmd = exec.Command("qemu-system-x86_64", args...)
	v.cmd.Stderr = &v.stderr
	v.cmd.Stdout = &v.stderr
	if err := v.cmd.Start(); err != nil {
		t.Fatalf("starting qemu: %v", err)
	}
	go func() {
		_ = v.cmd.Wait()
		close(v.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-v.exited:
		default:
			_ = v.cmd.Process.Kill()
			<-v.exited
		}
		if t.Failed() {
			log, _ := os.ReadFile(v.serialLog)
			t.Logf("qemu %s\nqemu output:\n%s\nguest serial log:\n%s", strings.Join(args, " "), v.stderr.String(), log)
		}
	})
	return v
}

// waitLine waits for a serial console line matching re and returns it.
func (v *vm) waitLine(re *regexp.Regexp, timeout time.Duration) string {
	v.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		b, _ := os.ReadFile(v.serialLog)
		for _, line := range strings.Split(string(b), "\n") {
			if line = strings.TrimRight(line, "\r"); re.MatchString(line) {
				return line
			}
		}
		select {
		case <-v.exited:
			v.t.Fatalf("qemu exited while waiting for a serial line matching %q", re)
		default:
		}
		if time.Now().After(deadline) {
			v.t.Fatalf("no serial line matching %q within %v", re, timeout)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// quit asks QEMU to exit and waits for it, so the overlay is complete.
func (v *vm) quit(q *qmpConn) {
	v.t.Helper()
	if _, err := q.execute("quit", nil); err != nil && !errors.Is(err, io.EOF) {
		v.t.Errorf("qmp quit: %v", err)
	}
	select {
	case <-v.exited:
	case <-time.After(30 * time.Second):
		v.t.Fatal("qemu did not exit after quit")
	}
}

// agentConn speaks the guest agent's line protocol over QEMU's socket for
// the guest's /dev/ttyS1.
type agentConn struct {
	t *testing.T
	c net.Conn
	r *bufio.Reader
}

func dialAgent(t *testing.T, v *vm) *agentConn {
	t.Helper()
	c, err := net.Dial("unix", v.agentSock)
	if err != nil {
		t.Fatalf("connect to agent socket: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	a := &agentConn{t: t, c: c, r: bufio.NewReader(c)}
	a.sync()
	return a
}

// sync gets in step with the agent: bytes sent before the guest opened the
// port can be lost or left half a line, so send a fresh line with a nonce
// until its echo comes back, dropping any other replies.
func (a *agentConn) sync() {
	a.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for i := 0; time.Now().Before(deadline); i++ {
		nonce := fmt.Sprintf("sync-%d-%d", time.Now().UnixNano(), i)
		_ = a.c.SetDeadline(time.Now().Add(3 * time.Second))
		if _, err := io.WriteString(a.c, "\necho "+nonce+"\n"); err != nil {
			a.t.Fatalf("write to agent: %v", err)
		}
		for {
			line, err := a.r.ReadString('\n')
			if err != nil {
				break // timed out: send a new nonce
			}
			if strings.TrimRight(line, "\r\n") == "OK "+nonce {
				return
			}
		}
	}
	a.t.Fatal("agent never answered echo on its control port")
}

func (a *agentConn) command(cmd string) string {
	a.t.Helper()
	_ = a.c.SetDeadline(time.Now().Add(cmdTimeout))
	if _, err := io.WriteString(a.c, cmd+"\n"); err != nil {
		a.t.Fatalf("agent %q: write: %v", cmd, err)
	}
	line, err := a.r.ReadString('\n')
	if err != nil {
		a.t.Fatalf("agent %q: read reply: %v", cmd, err)
	}
	return strings.TrimRight(line, "\r\n")
}

func (a *agentConn) expect(cmd, want string) {
	a.t.Helper()
	if got := a.command(cmd); got != want {
		a.t.Errorf("agent %q = %q, want %q", cmd, got, want)
	}
}

// qmpConn is a minimal QMP client: raw JSON lines over the unix socket.
type qmpConn struct {
	c net.Conn
	r *bufio.Reader
}

func dialQMP(t *testing.T, v *vm) *qmpConn {
	t.Helper()
	c, err := net.Dial("unix", v.qmpSock)
	if err != nil {
		t.Fatalf("connect to QMP socket: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	q := &qmpConn{c: c, r: bufio.NewReader(c)}
	_ = c.SetDeadline(time.Now().Add(cmdTimeout))
	if _, err := q.r.ReadString('\n'); err != nil {
		t.Fatalf("QMP greeting: %v", err)
	}
	if _, err := q.execute("qmp_capabilities", nil); err != nil {
		t.Fatalf("QMP qmp_capabilities: %v", err)
	}
	return q
}

func (q *qmpConn) execute(cmd string, args any) (json.RawMessage, error) {
	_ = q.c.SetDeadline(time.Now().Add(cmdTimeout))
	req := map[string]any{"execute": cmd}
	if args != nil {
		req["arguments"] = args
	}
	b, err := json.Marshal(req)
	if err != nil {
		return nil, fmt.Errorf("encode %s: %w", cmd, err)
	}
	if _, err := q.c.Write(append(b, '\n')); err != nil {
		return nil, fmt.Errorf("send %s: %w", cmd, err)
	}
	for {
		line, err := q.r.ReadBytes('\n')
		if err != nil {
			return nil, fmt.Errorf("reply to %s: %w", cmd, err)
		}
		var resp struct {
			Event  string          `json:"event"`
			Return json.RawMessage `json:"return"`
			Error  *struct {
				Class string `json:"class"`
				Desc  string `json:"desc"`
			} `json:"error"`
		}
		if err := json.Unmarshal(line, &resp); err != nil {
			return nil, fmt.Errorf("decode reply to %s: %w", cmd, err)
		}
		switch {
		case resp.Event != "":
			continue // asynchronous events interleave with replies
		case resp.Error != nil:
			return nil, fmt.Errorf("%s: %s: %s", cmd, resp.Error.Class, resp.Error.Desc)
		default:
			return resp.Return, nil
		}
	}
}

func keyEvent(qcode string, down bool) map[string]any {
	return map[string]any{"events": []any{map[string]any{
		"type": "key",
		"data": map[string]any{"down": down, "key": map[string]any{"type": "qcode", "data": qcode}},
	}}}
}

// pressKeyA types "a" until the agent reports it: the first press can race
// the agent opening /dev/input/event*.
func pressKeyA(t *testing.T, v *vm, q *qmpConn) {
	t.Helper()
	re := regexp.MustCompile(`^LOCO-INPUT dev=event\d+ type=1 code=30 value=1$`)
	for attempt := 0; attempt < 5; attempt++ {
		for _, down := range []bool{true, false} {
			if _, err := q.execute("input-send-event", keyEvent("a", down)); err != nil {
				t.Fatalf("QMP input-send-event: %v", err)
			}
		}
		deadline := time.Now().Add(5 * time.Second)
		for time.Now().Before(deadline) {
			b, _ := os.ReadFile(v.serialLog)
			for _, line := range strings.Split(string(b), "\n") {
				if re.MatchString(strings.TrimRight(line, "\r")) {
					return
				}
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	t.Fatal("no LOCO-INPUT line for key a (code 30) after QMP input-send-event")
}

// diskSector0 reads the guest-visible first sector of a qcow2 image.
func diskSector0(t *testing.T, image string) []byte {
	t.Helper()
	raw := filepath.Join(t.TempDir(), "disk.raw")
	if out, err := exec.Command("qemu-img", "convert", "-f", "qcow2", "-O", "raw", image, raw).CombinedOutput(); err != nil {
		t.Fatalf("qemu-img convert %s: %v\n%s", image, err, out)
	}
	f, err := os.Open(raw)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, 512)
	if _, err := io.ReadFull(f, b); err != nil {
		t.Fatalf("reading %s: %v", raw, err)
	}
	return b
}

var readyRE = regexp.MustCompile(`^LOCO-READY name=\S+ mac=\S+ ip=\S+$`)

// TestBootIDE boots the guest without a NIC on an IDE disk: the minimal
// machine must still come up, report itself, run the control protocol,
// echo keyboard input and persist disk writes to the overlay only.
func TestBootIDE(t *testing.T) {
	requireQEMU(t)
	g := buildGuest(t)
	baseSum := sha256File(t, g.base)

	start := time.Now()
	v := startVM(t, g, vmConfig{append: "loco.name=ide-guest loco.ip=10.9.9.9/24", diskIf: "ide"})
	ready := v.waitLine(readyRE, bootTimeout)
	t.Logf("LOCO-READY after %v", time.Since(start).Round(100*time.Millisecond))
	if want := "LOCO-READY name=ide-guest mac=none ip=none"; ready != want {
		t.Errorf("ready line = %q, want %q", ready, want)
	}
	v.waitLine(regexp.MustCompile(`^LOCO-ERROR loco\.ip=10\.9\.9\.9/24 given but there is no eth0$`), time.Second)

	a := dialAgent(t, v)
	a.expect("ping", "OK pong")
	a.expect("info", "OK name=ide-guest mac=none ip=none")
	a.expect("disk-read", "ERR no marker")
	a.expect("disk-write hello", "OK written /dev/sda")
	a.expect("disk-read", "OK hello")
	a.expect("no-such-command", `ERR unknown command "no-such-command"`)

	// The host may drop and reopen the control connection at any time.
	a.c.Close()
	a = dialAgent(t, v)
	a.expect("ping", "OK pong")

	q := dialQMP(t, v)
	pressKeyA(t, v, q)
	v.quit(q)

	if got := diskSector0(t, v.overlay); !bytes.HasPrefix(got, []byte("LOCOMARK:hello\n")) {
		t.Errorf("overlay sector 0 starts %q, want LOCOMARK:hello", got[:32])
	}
	if got := sha256File(t, g.base); got != baseSum {
		t.Errorf("base disk %s changed: sha256 %s -> %s", g.base, baseSum, got)
	}
}

// TestBootE1000Virtio boots with an e1000 NIC (on a multicast socket
// backend, which needs no host networking) and a virtio disk, to prove the
// NIC and virtio-blk modules load and the static address is applied.
func TestBootE1000Virtio(t *testing.T) {
	requireQEMU(t)
	g := buildGuest(t)
	baseSum := sha256File(t, g.base)

	v := startVM(t, g, vmConfig{
		append: "loco.name=net-guest loco.ip=10.0.2.15/24",
		diskIf: "virtio",
		devices: []string{
			"-device", "e1000,netdev=n0,mac=52:54:00:4c:4f:01",
			"-netdev", "socket,id=n0,mcast=230.0.0.1:12345,localaddr=127.0.0.1",
		},
	})
	ready := v.waitLine(readyRE, bootTimeout)
	if want := "LOCO-READY name=net-guest mac=52:54:00:4c:4f:01 ip=10.0.2.15"; ready != want {
		t.Errorf("ready line = %q, want %q", ready, want)
	}

	a := dialAgent(t, v)
	a.expect("info", "OK name=net-guest mac=52:54:00:4c:4f:01 ip=10.0.2.15")
	a.expect("disk-write virtio", "OK written /dev/vda")
	a.expect("disk-read", "OK virtio")

	q := dialQMP(t, v)
	v.quit(q)
	if got := diskSector0(t, v.overlay); !bytes.HasPrefix(got, []byte("LOCOMARK:virtio\n")) {
		t.Errorf("overlay sector 0 starts %q, want LOCOMARK:virtio", got[:32])
	}
	if got := sha256File(t, g.base); got != baseSum {
		t.Errorf("base disk %s changed: sha256 %s -> %s", g.base, baseSum, got)
	}
}
