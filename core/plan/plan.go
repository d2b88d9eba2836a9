// Package plan turns a cluster spec, the chosen accelerator and the plugins'
// QEMU fragments into a plan: for every guest the exact command line, files,
// sockets and ports. Planning is pure: same inputs, same plan; nothing is
// started or written.
package plan

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/locolan/loco/core/qemu"
	"github.com/locolan/loco/core/spec"
	"github.com/locolan/loco/sdk"
)

// Plan is everything loco will start for a cluster.
type Plan struct {
	Cluster     string    `json:"cluster"`
	SpecFile    string    `json:"spec_file"`
	StateDir    string    `json:"state_dir"`
	Runtime     string    `json:"runtime"`
	Accel       string    `json:"accel"`
	AccelReason string    `json:"accel_reason"`
	APIListen   string    `json:"api_listen"`
	Guests      []Guest   `json:"guests"`
	Services    []Service `json:"services"`
}

// Guest is one QEMU process and the files it owns.
type Guest struct {
	Index          int      `json:"index"`
	Name           string   `json:"name"`
	MAC            string   `json:"mac"`
	Dir            string   `json:"dir"`
	Program        string   `json:"program"`
	Args           []string `json:"args"`
	BaseDisk       string   `json:"base_disk,omitempty"`
	Overlay        string   `json:"overlay,omitempty"`
	QMPSocket      string   `json:"qmp_socket"`
	InputQMPSocket string   `json:"input_qmp_socket"`
	ConsoleSocket  string   `json:"console_socket"`
	VNC            string   `json:"vnc"`
	SerialLog      string   `json:"serial_log"`
	PIDFile        string   `json:"pid_file"`
	MemoryMiB      int      `json:"memory_mib"`
	CPUs           int      `json:"cpus"`
	// Pointer is "ps2" (relative motion only) or "tablet" (absolute too):
	// clients choose how to send the mouse by it.
	Pointer string `json:"pointer"`
	// Env is added to QEMU's environment: DISPLAY for a guest whose stream
	// plugin gives it a window.
	Env []string `json:"env,omitempty"`
}

// Service is a process the cluster needs besides its guests: a plugin.
type Service struct {
	Kind string `json:"kind"`
	Name string `json:"name"`
}

// Inputs are what planning needs beyond the spec; the caller gathers them
// (probing the accelerator, asking plugins) so planning stays pure.
type Inputs struct {
	StateDir    string
	Accel       string // "kvm" or "tcg": already resolved
	AccelReason string
	// NetArgs and StreamArgs are the plugins' QEMU fragments by instance.
	NetArgs    map[int][]string
	StreamArgs map[int][]string
	// XDisplays are the X displays a stream plugin runs for guests that
	// need a window (":N" by instance); the rest stay headless.
	XDisplays map[int]string
	// QEMU is the emulator binary; "" for qemu-system-x86_64.
	QEMU string
}

// maxSocketPath is the room sun_path leaves for a unix socket's path.
const maxSocketPath = 107

// DefaultStateDir is where a cluster keeps its guests' state when the spec
// does not say: $LOCO_STATE_DIR/<cluster>, else $XDG_STATE_HOME/loco/<cluster>,
// else ~/.local/state/loco/<cluster>.
func DefaultStateDir(c *spec.Cluster) string {
	if c.StateDir != "" {
		return c.StateDir
	}
	if d := os.Getenv("LOCO_STATE_DIR"); d != "" {
		return filepath.Join(d, c.Name)
	}
	if d := os.Getenv("XDG_STATE_HOME"); d != "" {
		return filepath.Join(d, "loco", c.Name)
	}
	home, err := os.UserHomeDir()
	if err != nil {
		home = os.TempDir()
	}
	return filepath.Join(home, ".local", "state", "loco", c.Name)
}

// GuestName names instance i of a cluster.
func GuestName(cluster string, i int) string { return cluster + "-" + strconv.Itoa(i) }

// guestFiles lays out instance i's directory. One place decides it, so plan
// and plugin facts can never disagree.
func guestFiles(stateDir string, i int) (dir string, g Guest) {
	dir = filepath.Join(stateDir, "guests", strconv.Itoa(i))
	return dir, Guest{
		Dir:            dir,
		QMPSocket:      filepath.Join(dir, "qmp.sock"),
		InputQMPSocket: filepath.Join(dir, "input.sock"),
		ConsoleSocket:  filepath.Join(dir, "console.sock"),
		VNC:            "unix:" + filepath.Join(dir, "vnc.sock"),
		SerialLog:      filepath.Join(dir, "serial.log"),
		PIDFile:        filepath.Join(dir, "qemu.pid"),
	}
}

// Facts are what plugins are told about the cluster.
func Facts(c *spec.Cluster) sdk.Cluster {
	return FactsIn(c, DefaultStateDir(c))
}

// FactsIn is Facts for a given state directory.
func FactsIn(c *spec.Cluster, stateDir string) sdk.Cluster {
	f := sdk.Cluster{Name: c.Name, StateDir: stateDir}
	for i := 0; i < c.Instances; i++ {
		dir, g := guestFiles(stateDir, i)
		f.Instances = append(f.Instances, sdk.Instance{Index: uint32(i), Name: GuestName(c.Name, i),
			MAC: sdk.MAC(c.Name, i).String(), InputQMPSocket: g.InputQMPSocket, VNC: g.VNC, StateDir: dir})
	}
	return f
}

// Build makes the plan.
func Build(c *spec.Cluster, in Inputs) (*Plan, error) {
	if in.StateDir == "" {
		return nil, fmt.Errorf("planning cluster %q: no state directory", c.Name)
	}
	if in.Accel != qemu.AccelKVM && in.Accel != qemu.AccelTCG {
		return nil, fmt.Errorf("planning cluster %q: accelerator %q is not resolved to kvm or tcg", c.Name, in.Accel)
	}
	p := &Plan{Cluster: c.Name, SpecFile: c.File, StateDir: in.StateDir, Runtime: c.Runtime.Driver,
		Accel: in.Accel, AccelReason: in.AccelReason, APIListen: c.API.Listen}
	for _, u := range c.Plugins {
		p.Services = append(p.Services, Service{Kind: u.Kind, Name: u.Name})
	}
	for i := 0; i < c.Instances; i++ {
		g, err := buildGuest(c, in, i)
		if err != nil {
			return nil, fmt.Errorf("planning guest %d of cluster %q: %w", i, c.Name, err)
		}
		p.Guests = append(p.Guests, g)
	}
	return p, nil
}

func buildGuest(c *spec.Cluster, in Inputs, i int) (Guest, error) {
	hw := c.GuestFor(i)
	dir, g := guestFiles(in.StateDir, i)
	g.Index, g.Name, g.MAC = i, GuestName(c.Name, i), sdk.MAC(c.Name, i).String()
	g.MemoryMiB, g.CPUs, g.Pointer = hw.MemoryMiB, hw.CPUs, hw.Pointer
	for _, s := range []string{g.QMPSocket, g.InputQMPSocket, g.ConsoleSocket, strings.TrimPrefix(g.VNC, "unix:")} {
		if len(s) > maxSocketPath {
			return g, fmt.Errorf("socket path %s is %d bytes, more than a unix socket allows (%d): choose a shorter state_dir", s, len(s), maxSocketPath)
		}
	}
	m := qemu.Machine{
		Binary: in.QEMU, Name: g.Name, Machine: hw.Machine, CPUs: hw.CPUs, MemoryMiB: hw.MemoryMiB,
		Accel: in.Accel, DiskInterface: hw.DiskInterface, NICModel: hw.NIC, VGA: hw.VGA, Audio: hw.Audio, Pointer: hw.Pointer,
		QMPSocket: g.QMPSocket, InputQMPSocket: g.InputQMPSocket, VNC: g.VNC,
		SerialLog: g.SerialLog, ConsoleSocket: g.ConsoleSocket, PIDFile: g.PIDFile,
		NetArgs: in.NetArgs[i], ExtraArgs: in.StreamArgs[i], XDisplay: in.XDisplays[i],
	}
	if m.XDisplay != "" {
		if c.Runtime.Driver != "" && c.Runtime.Driver != "process" {
			return g, fmt.Errorf("the stream plugin gives guest %s a window on X display %s: runtime %q does not support windows yet; use runtime \"process\"", g.Name, m.XDisplay, c.Runtime.Driver)
		}
		g.Env = []string{"DISPLAY=" + m.XDisplay}
	}
	if len(m.NetArgs) > 0 {
		m.MAC = sdk.MAC(c.Name, i)
	}
	if c.Image.Kernel != "" {
		m.Kernel, m.Initrd = c.Image.Kernel, c.Image.Initrd
		// tty0 last makes it the console /dev/console writes to, so what
		// the guest prints shows on its screen; ttyS0 goes to serial.log.
		m.Append = strings.TrimSpace("console=ttyS0 console=tty0 loco.name=" + g.Name + " " + c.Image.Append)
	}
	if c.Image.Disk != "" {
		g.BaseDisk = c.Image.Disk
		g.Overlay = filepath.Join(dir, "disk.qcow2")
		m.Disk = g.Overlay
	}
	args, err := m.Args()
	if err != nil {
		return g, err
	}
	g.Program, g.Args = m.Program(), args
	return g, nil
}

// WriteJSON prints the plan as indented JSON.
func (p *Plan) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(p)
}

// WriteText prints the plan for people: per guest the command line, one
// option per line, and its files.
func (p *Plan) WriteText(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "cluster %s (%s runtime, accelerator %s: %s)\n", p.Cluster, p.Runtime, p.Accel, p.AccelReason)
	fmt.Fprintf(&b, "state   %s\napi     http://%s\n", p.StateDir, p.APIListen)
	for _, s := range p.Services {
		fmt.Fprintf(&b, "plugin  %s %q\n", s.Kind, s.Name)
	}
	for _, g := range p.Guests {
		fmt.Fprintf(&b, "\nguest %d: %s  mac %s  %d MiB  %d cpu\n", g.Index, g.Name, g.MAC, g.MemoryMiB, g.CPUs)
		if g.Overlay != "" {
			fmt.Fprintf(&b, "  disk    %s (overlay on %s)\n", g.Overlay, g.BaseDisk)
		}
		fmt.Fprintf(&b, "  qmp     %s\n  input   %s\n  vnc     %s\n  serial  %s\n  console %s\n", g.QMPSocket, g.InputQMPSocket, g.VNC, g.SerialLog, g.ConsoleSocket)
		fmt.Fprintf(&b, "  command %s", g.Program)
		for _, a := range g.Args {
			if strings.HasPrefix(a, "-") {
				fmt.Fprintf(&b, " \\\n    %s", a)
			} else {
				fmt.Fprintf(&b, " %s", shellQuote(a))
			}
		}
		b.WriteString("\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func shellQuote(s string) string {
	if s != "" && !strings.ContainsAny(s, " \t\n'\"\\$`*?[]{}()<>|&;#~") {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
