package qemu

import (
	"context"
	"net"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestCheckSnapshotName(t *testing.T) {
	for _, ok := range []string{"lobby", "a", "Lego-Loco_1.0", strings.Repeat("x", 63)} {
		if err := CheckSnapshotName(ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	for _, bad := range []string{"", "-x", ".x", "a b", "a,b", "a/b", strings.Repeat("x", 64)} {
		if err := CheckSnapshotName(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func profileOf(t *testing.T, m Machine) []string {
	t.Helper()
	args, err := m.Args()
	if err != nil {
		t.Fatal(err)
	}
	return HardwareProfile(args)
}

// TestHardwareProfile: where a guest's files and sockets live, and which
// backends its sound and network use, do not change the machine; memory,
// CPUs, NIC model, MAC, disk interface and kernel arguments do.
func TestHardwareProfile(t *testing.T) {
	mac, _ := net.ParseMAC("52:cc:cc:00:00:01")
	base := func(dir string) Machine {
		return Machine{Name: "demo-1", Accel: AccelTCG, MemoryMiB: 96, Kernel: dir + "/vmlinuz", Initrd: dir + "/initrd.img",
			Append: "console=ttyS0 loco.name=demo-1", Disk: dir + "/disk.qcow2", QMPSocket: dir + "/qmp.sock",
			InputQMPSocket: dir + "/input.sock", ConsoleSocket: dir + "/console.sock", VNC: "unix:" + dir + "/vnc.sock",
			SerialLog: dir + "/serial.log", PIDFile: dir + "/qemu.pid", MAC: mac, Audio: "ac97",
			NetArgs: []string{"-netdev", "dgram,id=net0,local.type=unix,local.path=" + dir + "/net.sock,remote.type=unix,remote.path=" + dir + "/lan.sock"}}
	}
	a := profileOf(t, base("/a"))
	moved := base("/somewhere/else")
	moved.ExtraArgs = []string{"-audiodev", "wav,id=snd0,path=/x/y.wav"}
	if b := profileOf(t, moved); !slices.Equal(a, b) {
		t.Errorf("moving the guest's files changed its profile:\n%q\n%q", a, b)
	}
	for _, s := range a {
		if strings.Contains(s, "/a/") {
			t.Errorf("profile keeps a host path: %q", s)
		}
	}
	for name, change := range map[string]func(*Machine){
		"memory": func(m *Machine) { m.MemoryMiB = 128 },
		"cpus":   func(m *Machine) { m.CPUs = 2 },
		"nic":    func(m *Machine) { m.NICModel = "pcnet" },
		"mac":    func(m *Machine) { m.MAC, _ = net.ParseMAC("52:cc:cc:00:00:02") },
		"disk":   func(m *Machine) { m.DiskInterface = "virtio" },
		"append": func(m *Machine) { m.Append += " quiet" },
		"vga":    func(m *Machine) { m.VGA = "cirrus" },
		"audio":  func(m *Machine) { m.Audio = "hda" },
		"accel":  func(m *Machine) { m.Accel = AccelKVM },
		"tablet": func(m *Machine) { m.Pointer = "tablet" },
	} {
		m := base("/a")
		change(&m)
		if b := profileOf(t, m); slices.Equal(a, b) {
			t.Errorf("changing %s left the profile the same", name)
		}
	}
	if p := HardwareProfile([]string{"-m", "96", "-loadvm", "lobby", "-nodefaults"}); !slices.Equal(p, []string{"-m 96", "-nodefaults"}) {
		t.Errorf("-loadvm is part of the profile: %q", p)
	}
}

// TestImageSnapshots lists and deletes internal snapshots with the real
// qemu-img; a disk-only snapshot (qemu-img snapshot -c) has no memory state.
func TestImageSnapshots(t *testing.T) {
	dir := t.TempDir()
	img := filepath.Join(dir, "disk.qcow2")
	run := func(args ...string) {
		t.Helper()
		if out, err := exec.Command("qemu-img", args...).CombinedOutput(); err != nil {
			t.Fatalf("qemu-img %v: %v\n%s", args, err, out)
		}
	}
	run("create", "-q", "-f", "qcow2", img, "16M")
	ctx := context.Background()
	if s, err := ImageSnapshots(ctx, "", img); err != nil || len(s) != 0 {
		t.Fatalf("fresh image: %v %v", s, err)
	}
	run("snapshot", "-c", "one", img)
	run("snapshot", "-c", "two", img)
	s, err := ImageSnapshots(ctx, "", img)
	if err != nil || len(s) != 2 || s[0].Name != "one" || s[1].Name != "two" || s[0].VMStateSize != 0 || s[0].Date.IsZero() {
		t.Fatalf("snapshots: %+v %v", s, err)
	}
	if err := DeleteImageSnapshot(ctx, "", img, "one"); err != nil {
		t.Fatal(err)
	}
	if err := DeleteImageSnapshot(ctx, "", img, "never-there"); err != nil {
		t.Errorf("deleting a missing tag: %v", err)
	}
	if s, _ := ImageSnapshots(ctx, "", img); len(s) != 1 || s[0].Name != "two" {
		t.Errorf("after delete: %+v", s)
	}
	if _, err := ImageSnapshots(ctx, "", filepath.Join(dir, "nope.qcow2")); err == nil {
		t.Error("no error for a missing image")
	}
}
