package containerd

import (
	"net"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/locolan/loco/core/plan"
)

// TestHostMounts: every host path the argv names is bound, sockets and
// files QEMU creates by their directory (read-write), other files
// read-only, the guest kernel's command line and /dev never.
func TestHostMounts(t *testing.T) {
	root := t.TempDir()
	gdir, lan, img := filepath.Join(root, "g"), filepath.Join(root, "lan"), filepath.Join(root, "img")
	for _, d := range []string{gdir, lan, img} {
		os.MkdirAll(d, 0o755)
	}
	l, err := net.Listen("unix", filepath.Join(lan, "0.sock"))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	for _, f := range []string{"vmlinuz", "base.qcow2"} {
		os.WriteFile(filepath.Join(img, f), nil, 0o644)
	}
	pg := plan.Guest{Dir: gdir, BaseDisk: filepath.Join(img, "base.qcow2"), Args: []string{
		"-kernel", filepath.Join(img, "vmlinuz"),
		"-append", "root=/dev/vda init=" + filepath.Join(img, "vmlinuz"),
		"-drive", "file=" + filepath.Join(gdir, "disk.qcow2") + ",format=qcow2",
		"-netdev", "dgram,id=n,local.path=" + filepath.Join(gdir, "net.sock") + ",remote.path=" + filepath.Join(lan, "0.sock"),
		"-vnc", "unix:" + filepath.Join(gdir, "vnc.sock"),
		"-device", "x,romfile=/usr/share/qemu/x.rom", "-object", "rng-random,filename=/dev/urandom",
	}}
	got := hostMounts(pg)
	want := []hostMount{{gdir, true}, {lan, true}, {filepath.Join(img, "base.qcow2"), false}, {filepath.Join(img, "vmlinuz"), false}}
	if !slices.Equal(got, want) {
		t.Errorf("mounts:\n got %v\nwant %v", got, want)
	}
}
