package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/locolan/loco/sdk/qmp"
)

// snapshotSpec writes a LAN cluster of n test guests of memMiB on a copy of
// the base disk (so a test may swap the base without touching the shared
// one) and returns the spec's path.
func (e *e2e) snapshotSpec(name string, n, memMiB int, base, extra string) string {
	path := filepath.Join(e.Dir, name+".hcl")
	src := fmt.Sprintf(`cluster %q {
  instances = %d
  image {
    kernel     = %q
    initrd     = %q
    disk       = %q
    min_memory = 96
    append     = "vga=0x315"
  }
  guest {
    memory = %d
    accel  = "tcg"
  }
  runtime "process" {
    stop_grace = "10s"
  }
  network "socket" {
    probe_interval = "100ms"
  }
  api {
    listen = "127.0.0.1:0"
  }
%s}
`, name, n, filepath.Join(e.Guest, "vmlinuz"), filepath.Join(e.Guest, "initrd.img"), base, memMiB, extra)
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		e.T.Fatal(err)
	}
	e.Track(path)
	return path
}

func copyFile(t testing.TB, src, dst string) {
	t.Helper()
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}

// cornerLit says whether the test agent's F9 marker (a white block in the
// bottom-right fifth of an 800x600 screen) is on guest i's screen.
func (e *e2e) cornerLit(cl string, i int) bool {
	e.T.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := qmp.Dial(ctx, filepath.Join(e.GuestDir(cl, i), "qmp.sock"))
	if err != nil {
		e.T.Fatal(err)
	}
	defer c.Close()
	path := filepath.Join(e.Dir, fmt.Sprintf("screen-%d.ppm", i))
	if err := c.Screendump(ctx, path, "ppm"); err != nil {
		e.T.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		e.T.Fatal(err)
	}
	// P6 <w> <h> <max>\n then RGB.
	f := bytes.Fields(b[:min(len(b), 32)])
	if len(f) < 4 || string(f[0]) != "P6" {
		e.T.Fatalf("screendump is not a P6 PPM: %q", b[:min(len(b), 16)])
	}
	w, _ := strconv.Atoi(string(f[1]))
	h, _ := strconv.Atoi(string(f[2]))
	hdr := len(b) - w*h*3
	lit := 0
	for _, p := range [][2]int{{w * 88 / 100, h * 88 / 100}, {w * 95 / 100, h * 95 / 100}, {w * 85 / 100, h * 97 / 100}} {
		o := hdr + (p[1]*w+p[0])*3
		if b[o] > 0xf0 && b[o+1] > 0xf0 && b[o+2] > 0xf0 {
			lit++
		}
	}
	return lit == 3
}

func (e *e2e) pressKey(cl string, i int, key string) {
	e.T.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := qmp.Dial(ctx, filepath.Join(e.GuestDir(cl, i), "qmp.sock"))
	if err != nil {
		e.T.Fatal(err)
	}
	defer c.Close()
	if err := c.Run(ctx, "send-key", map[string]any{"keys": []map[string]string{{"type": "qcode", "data": key}}}, nil); err != nil {
		e.T.Fatal(err)
	}
}

// corruptVMState overwrites the start of the memory state saved in a qcow2
// overlay (QEMU's stream magic "QEVM", version 3, at a cluster boundary), as
// a torn write or bit rot would: the overlay stays a valid image, but QEMU
// can no longer load the state.
func corruptVMState(t testing.TB, overlay string) {
	t.Helper()
	b, err := os.ReadFile(overlay)
	if err != nil {
		t.Fatal(err)
	}
	magic := []byte{'Q', 'E', 'V', 'M', 0, 0, 0, 3}
	for off := 0; off+len(magic) <= len(b); off += 512 {
		if bytes.Equal(b[off:off+len(magic)], magic) {
			f, err := os.OpenFile(overlay, os.O_WRONLY, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if _, err := f.WriteAt(bytes.Repeat([]byte{0x5a}, 64), int64(off)); err != nil {
				t.Fatal(err)
			}
			return
		}
	}
	t.Fatalf("no saved memory state (QEVM magic) found in %s", overlay)
}

var clockStepRe = regexp.MustCompile(`LOCO-CLOCK stepped ([+-][0-9.]+)s`)

// TestSnapshotWarmStart saves a running LAN of three guests, stops it and
// starts it again from the snapshot: no guest boots again, each has its own
// disk, screen, MAC and address back as they were at the save, the LAN works
// at once and the clocks are right. Then a snapshot that does not fit (other
// hardware, other base image) is refused, and one that is corrupt or gone
// for some guests makes just those guests boot cold.
func TestSnapshotWarmStart(t *testing.T) {
	const n = 3
	e := newE2E(t)
	base := filepath.Join(e.Dir, "base.qcow2")
	copyFile(t, filepath.Join(e.Guest, "base.qcow2"), base)
	spec := e.snapshotSpec("warm", n, 96, base, "")

	e.MustRun("run", "--detach", spec)
	for i := 0; i < n; i++ {
		e.WaitReady("warm", i, 1)
	}
	g := &lanGuests{e: e, cluster: "warm", mu: make([]sync.Mutex, n)}
	ips := make([]string, n)
	for i := 0; i < n; i++ {
		m := e.waitSerial(t, "warm", i, regexp.MustCompile(`LOCO-DHCP name=\S+ ip=(\S+)`), 1)
		ips[i] = m[1]
		g.must(t, i, "disk-write before-save-"+strconv.Itoa(i))
		e.pressKey("warm", i, "f9")
	}
	for i := 0; i < n; i++ {
		for deadline := time.Now().Add(30 * time.Second); !e.cornerLit("warm", i); time.Sleep(200 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("guest %d never showed the F9 marker", i)
			}
		}
	}

	out := e.MustRun("snapshot", "save", spec, "--name", "lan")
	t.Logf("snapshot save:\n%s", out)
	for i := 0; i < n; i++ {
		if !regexp.MustCompile(fmt.Sprintf(`(?m)^warm-%d: saved in [0-9.]+ s \([0-9.]+ MiB`, i)).MatchString(out) {
			t.Errorf("no progress line for guest %d:\n%s", i, out)
		}
	}
	saved := time.Now()
	// What happens after the save must be undone by the restore.
	for i := 0; i < n; i++ {
		g.must(t, i, "disk-write after-save-"+strconv.Itoa(i))
	}
	list := e.MustRun("snapshot", "list", spec)
	if !regexp.MustCompile(`(?m)^lan\s+3\s+[0-9.]+ MiB\s+\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\s+` + regexp.QuoteMeta(base)).MatchString(list) {
		t.Errorf("snapshot list:\n%s", list)
	}
	e.MustRun("stop", spec)
	if list2 := e.MustRun("snapshot", "list", spec); list2 != list {
		t.Errorf("the snapshot did not survive loco stop: before\n%s\nafter\n%s", list, list2)
	}

	// Long enough for a restored guest's clock to be visibly wrong.
	time.Sleep(6 * time.Second)
	start := time.Now()
	out = e.MustRun("run", "--detach", "--from", "lan", spec)
	runTook := time.Since(start)
	for i := 0; i < n; i++ {
		if !strings.Contains(out, fmt.Sprintf("guest warm-%d: restored from snapshot \"lan\"", i)) {
			t.Errorf("run does not say guest %d was restored:\n%s", i, out)
		}
	}
	// Every pair pings, all guests at once; each echo gets a second.
	var pingTook time.Duration
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		err := g.allPairsPing(ips, 1, time.Second)
		if err == nil {
			pingTook = time.Since(start)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the LAN does not work after the restore: %v", err)
		}
	}
	t.Logf("run --from returned after %.2f s; every pair of guests pinged %.2f s after run started", runTook.Seconds(), pingTook.Seconds())
	if pingTook > runTook+20*time.Second {
		t.Errorf("pings worked only %.1f s after run returned", (pingTook - runTook).Seconds())
	}
	for i := 0; i < n; i++ {
		if got := g.must(t, i, "disk-read"); got != "before-save-"+strconv.Itoa(i) {
			t.Errorf("guest %d disk marker %q, want the one written before the save", i, got)
		}
		info := g.must(t, i, "info")
		if !strings.Contains(info, "ip="+ips[i]) || !strings.Contains(info, fmt.Sprintf("name=warm-%d", i)) {
			t.Errorf("guest %d after restore: %s (want ip %s)", i, info, ips[i])
		}
		if !e.cornerLit("warm", i) {
			t.Errorf("guest %d: the F9 marker on its screen is gone after the restore", i)
		}
	}
	// The restored guests believed it was the time of the save until their
	// agent read the RTC, which QEMU keeps on the host's clock.
	gap := start.Sub(saved)
	stepRe := regexp.MustCompile(`unix_ms=(\d+) steps=(\d+) last_step_ms=(-?\d+)`)
	for i := 0; i < n; i++ {
		var reply string
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(200 * time.Millisecond) {
			reply = g.must(t, i, "clock")
			host := time.Now().UnixMilli()
			m := stepRe.FindStringSubmatch(reply)
			if m == nil {
				t.Fatalf("clock: %s", reply)
			}
			guestMS, _ := strconv.ParseInt(m[1], 10, 64)
			lastStep, _ := strconv.ParseInt(m[3], 10, 64)
			off := time.Duration(host-guestMS) * time.Millisecond
			if m[2] != "0" && time.Duration(lastStep)*time.Millisecond >= gap-3*time.Second && off < 3*time.Second && off > -3*time.Second {
				t.Logf("guest %d stepped its clock by %+.2f s after the restore (%.1f s between save and run); now %v off the host's (reply time included)",
					i, float64(lastStep)/1000, gap.Seconds(), off)
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("guest %d clock not set right after the restore (%.1f s between save and run): %s, %v off the host's", i, gap.Seconds(), reply, off)
			}
		}
		// The step is also on the serial log: a restored guest's serial
		// console still carries what the guest writes.
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(200 * time.Millisecond) {
			b, _ := os.ReadFile(filepath.Join(e.GuestDir("warm", i), "serial.log"))
			if steps := clockStepRe.FindAllStringSubmatch(string(b), -1); len(steps) > 0 {
				if last, _ := strconv.ParseFloat(steps[len(steps)-1][1], 64); last >= gap.Seconds()-3 {
					break
				}
			}
			if time.Now().After(deadline) {
				t.Errorf("guest %d stepped its clock (%s) but its serial log does not say so: serial output after the restore is lost", i, reply)
				break
			}
		}
	}
	// Nothing booted a second time.
	time.Sleep(2 * time.Second)
	for i := 0; i < n; i++ {
		if c := e.ReadyCount("warm", i); c != 1 {
			t.Errorf("guest %d printed LOCO-READY %d times: it booted instead of being restored", i, c)
		}
	}
	// A second snapshot of the running guests, deleted over QMP while they
	// run; the first one stays.
	e.MustRun("snapshot", "save", spec, "--name", "tmp")
	if out := e.MustRun("snapshot", "delete", spec, "tmp"); !strings.Contains(out, `snapshot "tmp" deleted`) {
		t.Errorf("delete: %s", out)
	}
	if list := e.MustRun("snapshot", "list", spec); regexp.MustCompile(`(?m)^tmp\s`).MatchString(list) || !regexp.MustCompile(`(?m)^lan\s`).MatchString(list) {
		t.Errorf("list after deleting tmp:\n%s", list)
	}
	for i := 0; i < n; i++ {
		out, err := exec.Command("qemu-img", "snapshot", "-U", "-l", filepath.Join(e.GuestDir("warm", i), "disk.qcow2")).CombinedOutput()
		if err != nil || regexp.MustCompile(`\stmp\s`).Match(out) || !regexp.MustCompile(`\slan\s`).Match(out) {
			t.Errorf("guest %d overlay after deleting tmp: %v\n%s", i, err, out)
		}
	}
	e.MustRun("stop", "--grace", "0s", spec)

	// Refused: another hardware profile.
	other := e.snapshotSpec("warm", n, 112, base, "")
	_, errOut, code := e.Run("run", "--detach", "--from", "lan", other)
	if code == 0 || !strings.Contains(errOut, "snapshot refused") || !strings.Contains(errOut, "hardware profile: then -m 96; now -m 112") {
		t.Errorf("another hardware profile: exit %d, %s", code, errOut)
	}
	// Refused: another base image.
	otherBase := filepath.Join(e.Dir, "other.qcow2")
	if b, err := exec.Command("qemu-img", "create", "-q", "-f", "qcow2", otherBase, "128M").CombinedOutput(); err != nil {
		t.Fatalf("qemu-img create: %v %s", err, b)
	}
	other = e.snapshotSpec("warm", n, 96, otherBase, "")
	_, errOut, code = e.Run("run", "--detach", "--from", "lan", other)
	if code == 0 || !strings.Contains(errOut, "saved against another image: disk "+otherBase+" is not the file") {
		t.Errorf("another base image: exit %d, %s", code, errOut)
	}
	for _, gs := range e.Status(spec).Guests {
		if gs.Running {
			t.Errorf("guest %s runs after a refused restore", gs.Name)
		}
	}

	// Fallback: guest 1's saved memory is corrupt, guest 2's state is gone;
	// guest 0 is still restored.
	e.snapshotSpec("warm", n, 96, base, "")
	corruptVMState(t, filepath.Join(e.GuestDir("warm", 1), "disk.qcow2"))
	if b, err := exec.Command("qemu-img", "snapshot", "-d", "lan", filepath.Join(e.GuestDir("warm", 2), "disk.qcow2")).CombinedOutput(); err != nil {
		t.Fatalf("qemu-img snapshot -d: %v %s", err, b)
	}
	out = e.MustRun("run", "--detach", "--from", "lan", spec)
	for _, want := range []string{`guest warm-0: restored from snapshot "lan"`, `guest warm-1: cold boot: restoring snapshot "lan" failed`,
		`guest warm-2: cold boot: its overlay ` + filepath.Join(e.GuestDir("warm", 2), "disk.qcow2") + ` no longer holds snapshot "lan"`} {
		if !strings.Contains(out, want) {
			t.Errorf("run --from with a corrupt and a missing state does not say %q:\n%s", want, out)
		}
	}
	e.WaitReady("warm", 1, 2)
	e.WaitReady("warm", 2, 2)
	if c := e.ReadyCount("warm", 0); c != 1 {
		t.Errorf("guest 0 booted (%d LOCO-READY) although its state was fine", c)
	}

	// Destroy takes the snapshots with the overlays.
	e.MustRun("stop", "--grace", "0s", "--destroy", spec)
	if _, err := os.Stat(filepath.Join(e.StateDir, "warm", "snapshots")); !os.IsNotExist(err) {
		t.Errorf("snapshot records survive stop --destroy: %v", err)
	}
	if list := e.MustRun("snapshot", "list", spec); !strings.Contains(list, "no snapshots") {
		t.Errorf("after stop --destroy: %s", list)
	}
}
