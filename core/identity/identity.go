// Package identity tells each guest of a LAN of clones who it is: its
// computer name (NetBIOS needs one per machine), workgroup, index and MAC,
// on a small FAT floppy image of its own that the guest reads at boot
// (Windows 98 as A:, the test guest as /dev/fd0). The spec's identity
// block asks for it (docs/spec.md); images/win98 installs the step that
// applies it.
package identity

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
)

// MaxNameLen is NetBIOS's limit: 16 bytes, the last one the service type.
const MaxNameLen = 15

// IndexPlaceholder in a computer name template is the guest's index.
const IndexPlaceholder = "{index}"

// DefaultWorkgroup is the workgroup when the spec names none: the one
// images/win98's msbatch.inf installs.
const DefaultWorkgroup = "LOCO"

// nameRE is a subset of what NetBIOS allows: it also takes ! @ # $ % ^ &
// ( ) ' { } . ~, but those mean something in the batch files and .reg
// files written here (%, ^, &) or in templates ({ }), and a name is more
// use to people when it is plain.
var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]*$`)

// CheckName says whether s can be a computer name or workgroup.
func CheckName(s string) error {
	switch {
	case s == "":
		return fmt.Errorf("the name is empty")
	case len(s) > MaxNameLen:
		return fmt.Errorf("%q is %d characters; NetBIOS names have at most %d", s, len(s), MaxNameLen)
	case !nameRE.MatchString(s):
		return fmt.Errorf("%q: use letters, digits, '-' and '_', starting with a letter or digit", s)
	case strings.Trim(s, "0123456789") == "":
		// Windows 2000 and later refuse such names, and \\123 reads as
		// an address.
		return fmt.Errorf("%q is digits only; add a letter", s)
	}
	return nil
}

// DefaultTemplate is the computer name template when the spec gives
// none: the cluster's name, upper-cased, and the index (LEGO-LOCO-3).
func DefaultTemplate(cluster string) string {
	return strings.ToUpper(cluster) + "-" + IndexPlaceholder
}

// Expand is template's name for guest i, upper-cased as Windows stores
// NetBIOS names (they are case-insensitive). The template may use
// {index} and no other braces.
func Expand(template string, i int) (string, error) {
	s := strings.ReplaceAll(template, IndexPlaceholder, strconv.Itoa(i))
	if strings.ContainsAny(s, "{}") {
		return "", fmt.Errorf("template %q: the only placeholder is %s", template, IndexPlaceholder)
	}
	return strings.ToUpper(s), nil
}

// Names expands template for guests 0..n-1 and checks every name: valid
// and unique (a template without {index} names every guest alike).
func Names(template string, n int) ([]string, error) {
	names := make([]string, n)
	seen := map[string]int{}
	for i := range names {
		s, err := Expand(template, i)
		if err != nil {
			return nil, err
		}
		if err := CheckName(s); err != nil {
			return nil, fmt.Errorf("guest %d: %w", i, err)
		}
		if j, dup := seen[s]; dup {
			return nil, fmt.Errorf("guests %d and %d are both %s: NetBIOS needs a name per machine (put %s in the template)", j, i, s, IndexPlaceholder)
		}
		seen[s] = i
		names[i] = s
	}
	return names, nil
}

// Guest is what one guest is told.
type Guest struct {
	ComputerName string `json:"computer_name"`
	Workgroup    string `json:"workgroup"`
	Index        int    `json:"index"`
	Name         string `json:"guest"` // loco's name for it, NAME-INDEX
	Cluster      string `json:"cluster"`
	MAC          string `json:"mac"`
}

// File is one file of the floppy's root directory.
type File struct {
	Name string // 8.3, upper case
	Data []byte
}

func crlf(lines ...string) []byte { return []byte(strings.Join(lines, "\r\n") + "\r\n") }

// Files are the floppy's files. All text is CRLF (DOS and Windows read
// it) and ASCII: names are checked by CheckName.
//
//   - LOCO.INI: everything, key=value, for any guest (the test guest's
//     init reads it).
//   - IDENT.REG: the registry values Windows 98 keeps the computer name
//     and workgroup in, for REGEDIT /S.
//   - IDENT.BAT: sets LOCONAME, LOCOWG and LOCOID (8 hex digits that
//     change when IDENT.REG does) for the base image's C:\LOCO\IDENTITY.BAT,
//     which COMMAND.COM runs and which cannot parse an INI file.
func Files(g Guest) []File {
	ini := crlf("; loco: who this guest is (docs/spec.md, identity block)",
		"[identity]",
		"computer_name="+g.ComputerName,
		"workgroup="+g.Workgroup,
		"index="+strconv.Itoa(g.Index),
		"guest="+g.Name,
		"cluster="+g.Cluster,
		"mac="+g.MAC)
	// REGEDIT4 files end with an empty line, or the last value is lost.
	reg := crlf("REGEDIT4",
		"",
		`[HKEY_LOCAL_MACHINE\System\CurrentControlSet\Control\ComputerName\ComputerName]`,
		`"ComputerName"="`+g.ComputerName+`"`,
		"",
		`[HKEY_LOCAL_MACHINE\System\CurrentControlSet\Services\VxD\VNETSUP]`,
		`"ComputerName"="`+g.ComputerName+`"`,
		`"Workgroup"="`+g.Workgroup+`"`,
		"")
	sum := sha256.Sum256(reg)
	bat := crlf("@ECHO OFF",
		"REM loco: this guest's identity, for C:\\LOCO\\IDENTITY.BAT",
		"SET LOCONAME="+g.ComputerName,
		"SET LOCOWG="+g.Workgroup,
		"SET LOCOID="+strings.ToUpper(hex.EncodeToString(sum[:4])))
	return []File{{"LOCO.INI", ini}, {"IDENT.REG", reg}, {"IDENT.BAT", bat}}
}

// Label is the floppy's volume label.
const Label = "LOCO-ID"

// WriteFloppy writes g's floppy image at path, replacing any old one
// atomically: a QEMU that has the old one open keeps reading it whole.
func WriteFloppy(path string, g Guest) error {
	img, err := Floppy(Label, Files(g))
	if err != nil {
		return fmt.Errorf("making the identity floppy of guest %s: %w", g.Name, err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("writing the identity floppy of guest %s: %w", g.Name, err)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, img, 0o600); err != nil {
		return fmt.Errorf("writing the identity floppy of guest %s: %w", g.Name, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("writing the identity floppy of guest %s: %w", g.Name, err)
	}
	return nil
}
