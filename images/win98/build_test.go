// Package win98 holds the tests of the Windows 98 image recipe, build.sh:
// its input checks and everything it prepares before Windows 98 setup
// runs. No Windows 98 media exist on a CI machine, so the CDs here are
// stand-ins made with genisoimage with the retail CD's layout and empty
// files (the test names say so); setup itself is not run.
package win98

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

const key = "ABCDE-12345-FGHIJ-67890-KLMNO"

func run(t *testing.T, env []string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command("./build.sh", args...)
	cmd.Env = append(os.Environ(), env...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

// standInISO makes a CD image with the given files and, with boot, a
// 1.44 MB FAT boot floppy (El Torito) that has an AUTOEXEC.BAT to replace.
func standInISO(t *testing.T, files []string, boot string) string {
	t.Helper()
	root := filepath.Join(t.TempDir(), "cd")
	for _, f := range files {
		p := filepath.Join(root, f)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte("stand-in "+f), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	args := []string{"-quiet", "-J", "-o", filepath.Join(filepath.Dir(root), "cd.iso")}
	switch boot {
	case "floppy":
		img := filepath.Join(root, "BOOT.IMG")
		mustRun(t, "dd", "if=/dev/zero", "of="+img, "bs=1024", "count=1440", "status=none")
		mustRun(t, "mformat", "-i", img, "-f", "1440", "::")
		mustRun(t, "sh", "-c", "echo REM original | mcopy -i "+img+" - ::AUTOEXEC.BAT")
		args = append(args, "-b", "BOOT.IMG", "-c", "BOOT.CAT")
	case "small":
		if err := os.WriteFile(filepath.Join(root, "BOOT.BIN"), make([]byte, 2048), 0o644); err != nil {
			t.Fatal(err)
		}
		args = append(args, "-b", "BOOT.BIN", "-c", "BOOT.CAT", "-no-emul-boot")
	}
	mustRun(t, "genisoimage", append(args, root)...)
	return filepath.Join(filepath.Dir(root), "cd.iso")
}

func mustRun(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
	return string(out)
}

var win98Files = []string{"SETUP.EXE", "WIN98/BASE4.CAB", "WIN98/PRECOPY1.CAB", "WIN98/WIN98_21.CAB"}

// empty fails the test when dir holds anything: a failed build leaves
// nothing behind.
func empty(t *testing.T, dir string) {
	t.Helper()
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		t.Errorf("left behind in %s: %s", dir, e.Name())
	}
}

func TestInputChecksStandInCDs(t *testing.T) {
	notISO := filepath.Join(t.TempDir(), "notes.txt")
	os.WriteFile(notISO, []byte("not a CD"), 0o644)
	otherCD := standInISO(t, []string{"README.TXT", "SETUP.EXE"}, "floppy")
	unbootable := standInISO(t, win98Files, "")
	win98 := standInISO(t, win98Files, "floppy")
	odd := standInISO(t, win98Files, "small")
	for _, tc := range []struct {
		name string
		env  []string
		args []string
		want string
	}{
		{"no ISO", nil, []string{"--key", key}, "no CD image: give your Windows 98 SE CD as --iso FILE"},
		{"missing ISO", nil, []string{"--iso", "/nonexistent.iso", "--key", key}, "no such readable file"},
		{"not an ISO", nil, []string{"--iso", notISO, "--key", key}, "is not an ISO 9660 CD image"},
		{"another CD", nil, []string{"--iso", otherCD, "--key", key}, "is not a Windows 98 CD: it has no /WIN98/BASE4.CAB"},
		{"no boot image", nil, []string{"--iso", unbootable, "--key", key}, "has no boot image"},
		{"no key", []string{"WIN98_KEY="}, []string{"--iso", win98}, "no product key"},
		{"malformed key", nil, []string{"--iso", win98, "--key", "12345"}, "is not of the form XXXXX-XXXXX-XXXXX-XXXXX-XXXXX"},
		{"boot image that is no floppy", nil, []string{"--iso", odd, "--key", key}, "the CD's boot image is not a 1.44 MB floppy"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			outDir := t.TempDir()
			out, err := run(t, tc.env, append(tc.args, "--out", outDir, "--prepare-only", "--size", "64M")...)
			if err == nil {
				t.Fatalf("build.sh succeeded:\n%s", out)
			}
			if !strings.Contains(out, tc.want) {
				t.Errorf("output lacks %q:\n%s", tc.want, out)
			}
			empty(t, outDir)
		})
	}
}

// TestPrepareStandInCD runs everything before setup on a stand-in CD: the
// partitioned, formatted disk with the CD's WIN98 folder on C:, setup's
// answers with the key, and the CD's own boot floppy running them.
func TestPrepareStandInCD(t *testing.T) {
	iso := standInISO(t, win98Files, "floppy")
	outDir := t.TempDir()
	out, err := run(t, nil, "--iso", iso, "--key", strings.ToLower(key), "--out", outDir, "--prepare-only", "--size", "64M")
	if err != nil {
		t.Fatalf("build.sh: %v\n%s", err, out)
	}
	p := filepath.Join(outDir, "prepared")
	inf, err := os.ReadFile(filepath.Join(p, "msbatch.inf"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`ProductKey="` + key + `"`, "Protocols=MSTCP,NWLINK,NETBEUI", "DHCP=1", "MaxMTU=1450"} {
		if !bytes.Contains(inf, []byte(want)) {
			t.Errorf("msbatch.inf lacks %s", want)
		}
	}
	if a := mustRun(t, "mtype", "-i", filepath.Join(p, "boot.img"), "::AUTOEXEC.BAT"); !strings.Contains(a, `SETUP.EXE C:\WIN98\MSBATCH.INF`) {
		t.Errorf("the floppy's AUTOEXEC.BAT does not run setup:\n%s", a)
	}
	raw := filepath.Join(t.TempDir(), "disk.raw")
	mustRun(t, "qemu-img", "convert", "-f", "qcow2", "-O", "raw", filepath.Join(p, "win98.qcow2"), raw)
	part := mustRun(t, "sfdisk", "--dump", raw)
	if !strings.Contains(part, "start=          63") || !strings.Contains(part, "type=c, bootable") {
		t.Errorf("partition table:\n%s", part)
	}
	dir := mustRun(t, "mdir", "-i", raw+"@@32256", "-b", "::WIN98")
	for _, f := range []string{"BASE4.CAB", "PRECOPY1.CAB", "WIN98_21.CAB", "MSBATCH.INF"} {
		if !strings.Contains(strings.ToUpper(dir), f) {
			t.Errorf("C:\\WIN98 lacks %s:\n%s", f, dir)
		}
	}
	// A second run never overwrites a finished disk.
	os.Rename(filepath.Join(p, "win98.qcow2"), filepath.Join(outDir, "win98.qcow2"))
	if out, err := run(t, nil, "--iso", iso, "--key", key, "--out", outDir, "--prepare-only"); err == nil || !strings.Contains(out, "exists: remove it") {
		t.Errorf("second run: %v\n%s", err, out)
	}
}
