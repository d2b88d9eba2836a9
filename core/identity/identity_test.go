package identity

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestCheckName(t *testing.T) {
	for _, ok := range []string{"LOCO-0", "A", "PLAYER_9", "9LIVES", "ABCDEFGHIJKLMNO"} {
		if err := CheckName(ok); err != nil {
			t.Errorf("CheckName(%q): %v", ok, err)
		}
	}
	for bad, want := range map[string]string{
		"":                 "empty",
		"ABCDEFGHIJKLMNOP": "16 characters; NetBIOS names have at most 15",
		"LOCO 1":           "letters, digits",
		"LOCO%1":           "letters, digits",
		"-LOCO":            "starting with",
		"LOCO.1":           "letters, digits",
		`A\B`:              "letters, digits",
		"1234":             "digits only",
	} {
		err := CheckName(bad)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("CheckName(%q) = %v, want %q", bad, err, want)
		}
	}
}

func TestNames(t *testing.T) {
	got, err := Names("loco-{index}", 3)
	if err != nil || strings.Join(got, " ") != "LOCO-0 LOCO-1 LOCO-2" {
		t.Errorf("Names = %v, %v", got, err)
	}
	if got, err := Names(DefaultTemplate("lego-loco"), 10); err != nil || got[9] != "LEGO-LOCO-9" {
		t.Errorf("default names = %v, %v", got, err)
	}
	for tmpl, want := range map[string]string{
		"HOST":        "guests 0 and 1 are both HOST: NetBIOS needs a name per machine",
		"Loco":        "guests 0 and 1 are both LOCO", // case-insensitive
		"LOCO-{name}": "the only placeholder is {index}",
		"{index}":     "guest 0: \"0\" is digits only",
	} {
		if _, err := Names(tmpl, 2); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Names(%q) = %v, want %q", tmpl, err, want)
		}
	}
	// 15 characters fit up to guest 999, guest 1000 is one too many.
	if _, err := Names("LOCO-PLAYER-{index}", 1000); err != nil {
		t.Errorf("1000 guests: %v", err)
	}
	if _, err := Names("LOCO-PLAYER-{index}", 1001); err == nil || !strings.Contains(err.Error(), `guest 1000: "LOCO-PLAYER-1000" is 16 characters`) {
		t.Errorf("1001 guests: %v", err)
	}
}

func mustRun(t *testing.T, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), "MTOOLS_SKIP_CHECK=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
	return string(out)
}

var guest3 = Guest{ComputerName: "LOCO-3", Workgroup: "LOCO", Index: 3, Name: "lego-loco-3", Cluster: "lego-loco", MAC: "52:54:00:00:00:03"}

// TestFloppyReadBack writes the floppy and reads it with mtools and
// dosfstools, which share no code with the writer.
func TestFloppyReadBack(t *testing.T) {
	path := filepath.Join(t.TempDir(), "guests", "3", "identity.img")
	if err := WriteFloppy(path, guest3); err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(path); err != nil || st.Size() != 1474560 {
		t.Fatalf("image: %v %v", st, err)
	}
	mustRun(t, "fsck.fat", "-n", "-v", path)
	dir := mustRun(t, "mdir", "-i", path, "::")
	if !strings.Contains(dir, "Volume in drive : is LOCO-ID") {
		t.Errorf("no volume label:\n%s", dir)
	}
	for _, f := range Files(guest3) {
		got := mustRun(t, "mtype", "-i", path, "::"+f.Name)
		if got != string(f.Data) {
			t.Errorf("%s read back as %q, written %q", f.Name, got, f.Data)
		}
	}
	ini := mustRun(t, "mtype", "-i", path, "::LOCO.INI")
	for _, want := range []string{"computer_name=LOCO-3\r\n", "workgroup=LOCO\r\n", "index=3\r\n", "guest=lego-loco-3\r\n", "mac=52:54:00:00:00:03\r\n"} {
		if !strings.Contains(ini, want) {
			t.Errorf("LOCO.INI lacks %q:\n%s", want, ini)
		}
	}
	// The same guest gives the same bytes; another gives another serial.
	a, _ := os.ReadFile(path)
	b, _ := Floppy(Label, Files(guest3))
	if !bytes.Equal(a, b) {
		t.Error("two images of one guest differ")
	}
	g4 := guest3
	g4.ComputerName, g4.Index = "LOCO-4", 4
	c, _ := Floppy(Label, Files(g4))
	if bytes.Equal(a[39:43], c[39:43]) {
		t.Error("two guests' floppies have one volume serial")
	}
}

// TestFloppyLongFile: a file over several clusters chains in the FAT.
func TestFloppyLongFile(t *testing.T) {
	long := bytes.Repeat([]byte("0123456789abcdef"), 700) // 11200 bytes, 22 clusters
	img, err := Floppy("TEST", []File{{"A.TXT", []byte("a\r\n")}, {"LONG.DAT", long}, {"EMPTY", nil}})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "f.img")
	os.WriteFile(path, img, 0o600)
	mustRun(t, "fsck.fat", "-n", path)
	if got := mustRun(t, "mtype", "-i", path, "::LONG.DAT"); got != string(long) {
		t.Errorf("LONG.DAT: %d bytes read back, %d written", len(got), len(long))
	}
	if got := mustRun(t, "mtype", "-i", path, "::EMPTY"); got != "" {
		t.Errorf("EMPTY: %q", got)
	}
	if _, err := Floppy("X", []File{{"toolong.name", nil}}); err == nil {
		t.Error("a name that is not 8.3 was written")
	}
}

// TestWindowsFiles checks the text Windows 98 gets, as far as it can be
// checked without Windows: REGEDIT4's layout and keys, CRLF, and a LOCOID
// that changes with the name.
func TestWindowsFiles(t *testing.T) {
	files := map[string]string{}
	for _, f := range Files(guest3) {
		files[f.Name] = string(f.Data)
		if strings.Contains(strings.ReplaceAll(string(f.Data), "\r\n", ""), "\n") {
			t.Errorf("%s has a bare LF", f.Name)
		}
	}
	reg := files["IDENT.REG"]
	want := "REGEDIT4\r\n\r\n" +
		"[HKEY_LOCAL_MACHINE\\System\\CurrentControlSet\\Control\\ComputerName\\ComputerName]\r\n" +
		"\"ComputerName\"=\"LOCO-3\"\r\n\r\n" +
		"[HKEY_LOCAL_MACHINE\\System\\CurrentControlSet\\Services\\VxD\\VNETSUP]\r\n" +
		"\"ComputerName\"=\"LOCO-3\"\r\n" +
		"\"Workgroup\"=\"LOCO\"\r\n\r\n"
	if reg != want {
		t.Errorf("IDENT.REG:\n%q\nwant\n%q", reg, want)
	}
	bat := files["IDENT.BAT"]
	for _, want := range []string{"SET LOCONAME=LOCO-3\r\n", "SET LOCOWG=LOCO\r\n"} {
		if !strings.Contains(bat, want) {
			t.Errorf("IDENT.BAT lacks %q:\n%s", want, bat)
		}
	}
	id := func(g Guest) string {
		for _, f := range Files(g) {
			if f.Name == "IDENT.BAT" {
				_, v, _ := strings.Cut(string(f.Data), "SET LOCOID=")
				return strings.TrimSpace(v)
			}
		}
		return ""
	}
	g4 := guest3
	g4.ComputerName = "LOCO-4"
	gw := guest3
	gw.Workgroup = "LAN"
	gi := guest3
	gi.MAC = "52:54:00:00:00:99" // not in the registry: no new LOCOID
	if a := id(guest3); len(a) != 8 || a == id(g4) || a == id(gw) || a != id(gi) {
		t.Errorf("LOCOID %q: name %q, workgroup %q, MAC %q", a, id(g4), id(gw), id(gi))
	}
}
