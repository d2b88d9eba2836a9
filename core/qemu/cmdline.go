package qemu

import (
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/locolan/loco/sdk"
)

// DefaultBinary is the QEMU system emulator used when Machine.Binary is empty.
const DefaultBinary = "qemu-system-x86_64"

// Accelerators accepted by Machine.Accel.
const (
	AccelKVM = "kvm"
	AccelTCG = "tcg"
)

// maxUnixPath is the usable length of sockaddr_un.sun_path on Linux (108
// bytes including the terminating NUL). QEMU's error for longer paths only
// shows up at start time, so we reject them while building the argv.
const maxUnixPath = 107

// NICModels lists the NIC models Machine.NICModel accepts. They are the PCI
// NICs that both QEMU 7.2 and common old guest OSes have drivers for.
var NICModels = []string{"e1000", "ne2k_pci", "pcnet", "rtl8139", "virtio-net-pci"}

// VGAModels lists the values Machine.VGA accepts.
var VGAModels = []string{"std", "cirrus", "none"}

// AudioModels lists the values Machine.Audio accepts.
var AudioModels = []string{"none", "sb16", "ac97", "hda"}

// PointerModels lists the values Machine.Pointer accepts: the PS/2 mouse
// every pc has (relative), or a USB tablet besides it (absolute positions).
var PointerModels = []string{"ps2", "tablet"}

// DiskInterfaces lists the values Machine.DiskInterface accepts.
var DiskInterfaces = []string{"ide", "virtio"}

// Machine describes one guest's QEMU process. The zero value of every
// optional field means "use the default" or "leave the feature out".
type Machine struct {
	// Binary is the emulator; DefaultBinary when empty. It is not part of
	// Args; use Program.
	Binary string

	// Name is the guest name, passed as "-name NAME,process=NAME" so that
	// ps shows it and QMP query-name can verify a reattached guest.
	Name string

	// Machine is the QEMU machine type; "pc" when empty.
	Machine string

	// CPUs is the number of virtual CPUs; 1 when zero.
	CPUs int

	// MemoryMiB is the guest RAM in MiB; at least 16.
	MemoryMiB int

	// Accel is AccelKVM or AccelTCG. "auto" must be resolved with
	// ProbeAccel before building the command line.
	Accel string

	// Kernel, Initrd and Append configure direct kernel boot. Initrd and
	// Append need Kernel.
	Kernel string
	Initrd string
	Append string

	// Disk is the guest's qcow2 overlay (see CreateOverlay); optional.
	Disk string

	// Floppy is a raw 1.44 MB image for drive A:, read-only (the guest's
	// identity floppy, core/identity); optional.
	Floppy string

	// DiskInterface is "ide" (default) or "virtio".
	DiskInterface string

	// NetArgs are raw arguments from the network plugin. They must define
	// the backend "-netdev TYPE,id=net0,..." and nothing that attaches a
	// device to it: the core adds "-device NICModel,netdev=net0,mac=MAC" so
	// that MAC assignment stays in one place. Empty means no network.
	NetArgs []string

	// NICModel is one of NICModels; "e1000" when empty.
	NICModel string

	// MAC is the guest NIC's address (see sdk.MAC); required with NetArgs.
	MAC net.HardwareAddr

	// VGA is "std" (default), "cirrus" or "none".
	VGA string

	// Audio is "none" (default), "sb16", "ac97" or "hda".
	Audio string

	// Pointer is "ps2" (default: only the PS/2 mouse) or "tablet" (a USB
	// tablet too, for absolute pointer events).
	Pointer string

	// QMPSocket is the core's QMP unix socket; optional.
	QMPSocket string

	// InputQMPSocket is a second QMP unix socket reserved for the input
	// plugin, so it never competes with the core for the single client
	// slot QEMU allows per monitor socket; optional.
	InputQMPSocket string

	// VNC is "unix:/abs/path" or "127.0.0.1:N" (N = display number, port
	// 5900+N); optional. Other hosts are refused so that a guest display is
	// never exposed beyond the host.
	VNC string

	// SerialLog receives the first serial port (ttyS0), appended across
	// restarts; optional.
	SerialLog string

	// ConsoleSocket exposes the second serial port (ttyS1) as a unix socket
	// server for interactive consoles; optional.
	ConsoleSocket string

	// PIDFile is written by QEMU with its pid; optional.
	PIDFile string

	// ExtraArgs are raw arguments from display/audio plugins, appended last.
	ExtraArgs []string

	// XDisplay, when set (":N"), gives the guest QEMU's GTK window, full
	// screen and without menus, instead of the headless display: a stream
	// plugin that captures a whole X screen (Sunshine) runs that display.
	// The runtime sets DISPLAY to it. VNC stays as it is.
	XDisplay string
}

// Program returns the emulator binary to execute.
func (m Machine) Program() string {
	if m.Binary == "" {
		return DefaultBinary
	}
	return m.Binary
}

// machineTypeRE accepts QEMU machine type names such as "pc", "q35" or
// "pc-i440fx-7.2"; anything else could smuggle extra -machine options.
var machineTypeRE = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]*$`)

// CheckMachineName says whether name can be a QEMU machine type at all (not
// whether this QEMU has it: MachineTypes lists those).
func CheckMachineName(name string) error {
	if !machineTypeRE.MatchString(name) {
		return fmt.Errorf("machine type %.40q is not a valid QEMU machine name (lower-case letters, digits, '.', '_' and '-'; options such as \",accel=\" are not taken)", name)
	}
	return nil
}

// CheckOptionPath says whether p can go into a QEMU option value
// (file=..., path=...): QEMU's option syntax splits at commas.
func CheckOptionPath(p string) error {
	if strings.ContainsAny(p, ",\n") {
		return fmt.Errorf("path %q contains a comma or newline, which QEMU option syntax cannot take", p)
	}
	return nil
}

// xDisplayRE accepts a local X display only: a remote one would put the
// guest's screen and keyboard on the network.
var xDisplayRE = regexp.MustCompile(`^:[0-9]{1,4}$`)

// guestNameRE keeps names safe for -name (no commas: QEMU option syntax) and
// for the process title.
var guestNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)

// forbiddenArgs would break how the runtime supervises QEMU: it must stay in
// the foreground, headless, with the serial ports the core configured.
var forbiddenArgs = map[string]string{
	"-daemonize": "the runtime supervises QEMU in the foreground",
	"-display":   "the core picks QEMU's display (none, or D-Bus p2p beside VNC); use VNC for a display",
	"-nographic": "it redirects serial and monitor to stdio",
}

// Args returns QEMU's argv for m without the binary: defaults filled in,
// then checked, then written out. The output depends only on m, so equal
// machines give equal command lines.
func (m Machine) Args() ([]string, error) {
	m = m.WithDefaults()
	if err := m.Validate(); err != nil {
		return nil, err
	}
	return m.argv(), nil
}

// WithDefaults is m with every empty optional field at its default.
func (m Machine) WithDefaults() Machine {
	m.Machine = or(m.Machine, "pc")
	if m.CPUs == 0 {
		m.CPUs = 1
	}
	m.DiskInterface = or(m.DiskInterface, "ide")
	m.NICModel = or(m.NICModel, "e1000")
	m.VGA = or(m.VGA, "std")
	m.Audio = or(m.Audio, "none")
	m.Pointer = or(m.Pointer, "ps2")
	return m
}

// Validate says everything wrong with m (after WithDefaults) at once.
func (m Machine) Validate() error {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }

	if !guestNameRE.MatchString(m.Name) {
		bad("name %q: must be non-empty and use only letters, digits, '.', '_' and '-'", m.Name)
	}
	if err := CheckMachineName(m.Machine); err != nil {
		bad("%w", err)
	}
	if m.CPUs < 1 || m.CPUs > 255 {
		bad("cpus %d: must be between 1 and 255", m.CPUs)
	}
	if m.MemoryMiB < 16 {
		bad("memory %d MiB: must be at least 16 MiB", m.MemoryMiB)
	}
	switch m.Accel {
	case AccelKVM, AccelTCG:
	case "":
		bad("accel is empty: must be %q or %q (resolve \"auto\" with ProbeAccel first)", AccelKVM, AccelTCG)
	default:
		bad("unknown accel %q: must be %q or %q (resolve \"auto\" with ProbeAccel first)", m.Accel, AccelKVM, AccelTCG)
	}

	checkPath := func(what, p string) {
		if p == "" {
			return
		}
		if err := checkAbsPath(p); err != nil {
			bad("%s: %w", what, err)
		}
	}
	checkSocket := func(what, p string) {
		if p == "" {
			return
		}
		if err := checkAbsPath(p); err != nil {
			bad("%s: %w", what, err)
			return
		}
		if len(p) > maxUnixPath {
			bad("%s %q: %d bytes is longer than the %d a unix socket path can have", what, p, len(p), maxUnixPath)
		}
	}
	checkPath("kernel", m.Kernel)
	checkPath("initrd", m.Initrd)
	checkPath("disk", m.Disk)
	checkPath("floppy", m.Floppy)
	checkPath("serial log", m.SerialLog)
	checkPath("pid file", m.PIDFile)
	checkSocket("QMP socket", m.QMPSocket)
	checkSocket("input QMP socket", m.InputQMPSocket)
	checkSocket("console socket", m.ConsoleSocket)
	if m.Kernel == "" && (m.Initrd != "" || m.Append != "") {
		bad("initrd and append need a kernel")
	}

	if !slices.Contains(DiskInterfaces, m.DiskInterface) {
		bad("unknown disk interface %q: must be one of %s", m.DiskInterface, strings.Join(DiskInterfaces, ", "))
	}
	if !slices.Contains(NICModels, m.NICModel) {
		bad("unknown NIC model %q: must be one of %s", m.NICModel, strings.Join(NICModels, ", "))
	}
	if !slices.Contains(VGAModels, m.VGA) {
		bad("unknown vga %q: must be one of %s", m.VGA, strings.Join(VGAModels, ", "))
	}
	if !slices.Contains(AudioModels, m.Audio) {
		bad("unknown audio %q: must be one of %s", m.Audio, strings.Join(AudioModels, ", "))
	}

	if !slices.Contains(PointerModels, m.Pointer) {
		bad("unknown pointer %q: must be one of %s", m.Pointer, strings.Join(PointerModels, ", "))
	}

	if m.XDisplay != "" && !xDisplayRE.MatchString(m.XDisplay) {
		bad("x display %q: only a local display \":N\" is accepted", m.XDisplay)
	}

	if m.VNC != "" {
		if _, err := vncOption(m.VNC); err != nil {
			bad("vnc: %w", err)
		}
	}

	if len(m.NetArgs) > 0 {
		if err := checkNetArgs(m.NetArgs); err != nil {
			bad("network plugin args: %w", err)
		}
		if len(m.MAC) != 6 {
			bad("mac %q: a guest with a network needs a 6-byte MAC", m.MAC.String())
		}
	}
	for _, set := range []struct {
		what string
		args []string
	}{{"network plugin args", m.NetArgs}, {"extra args", m.ExtraArgs}} {
		for _, a := range set.args {
			if why, ok := forbiddenArgs[normalizeFlag(a)]; ok {
				bad("%s: %s is not allowed: %s", set.what, a, why)
			}
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("invalid QEMU machine %q: %w", m.Name, errors.Join(errs...))
	}
	return nil
}

// argv writes out a defaulted, valid machine.
func (m Machine) argv() []string {
	machineType, cpus, diskIf, nicModel, vga, audio, pointer := m.Machine, m.CPUs, m.DiskInterface, m.NICModel, m.VGA, m.Audio, m.Pointer
	vncArg := ""
	if m.VNC != "" {
		vncArg, _ = vncOption(m.VNC) // checked by Validate
	}
	args := []string{
		"-name", m.Name + ",process=" + m.Name,
		"-nodefaults",
		"-no-user-config",
		"-machine", machineType,
		"-accel", m.Accel,
		"-smp", strconv.Itoa(cpus),
		"-m", strconv.Itoa(m.MemoryMiB),
	}
	if m.XDisplay != "" {
		// The window is a display listener with GTK's own 30 ms refresh,
		// so VNC viewers beside it keep the short polling interval that
		// the D-Bus display gives headless guests (below).
		args = append(args, "-display", "gtk,full-screen=on,show-menubar=off,show-tabs=off,zoom-to-fit=on,window-close=off", "-vga", vga)
		if vncArg != "" {
			args = append(args, "-vnc", vncArg)
		}
	} else if vncArg != "" {
		// QEMU's VNC server looks for screen changes on a timer that backs
		// off while the screen is static, by 50 ms per idle look up to 3 s:
		// after half a second of stillness a change waits up to ~250 ms to
		// be seen, after a few seconds up to 3 s. QEMU runs that timer at
		// the shortest interval any display listener asks for, and the
		// D-Bus display's listener asks for the 30 ms default always. In
		// p2p mode it needs no bus and listens nowhere (clients could only
		// be handed to it over QMP), so all it adds is that steady 30 ms.
		// Measured: docs/benchmarks.md, "Streaming".
		args = append(args, "-display", "dbus,p2p=yes", "-vga", vga, "-vnc", vncArg)
	} else {
		args = append(args, "-display", "none", "-vga", vga)
	}
	if m.Kernel != "" {
		args = append(args, "-kernel", m.Kernel)
		if m.Initrd != "" {
			args = append(args, "-initrd", m.Initrd)
		}
		if m.Append != "" {
			args = append(args, "-append", m.Append)
		}
	}
	if m.Disk != "" {
		// The format is explicit because overlays are always qcow2 and
		// letting QEMU probe formats is both slower and a known security
		// hazard with raw images.
		args = append(args, "-drive", "file="+m.Disk+",format=qcow2,if="+diskIf)
	}
	if m.Floppy != "" {
		// Read-only: nothing the guest does reaches loco's file, and
		// savevm skips the drive (a raw image holds no snapshot).
		args = append(args, "-drive", "file="+m.Floppy+",format=raw,if=floppy,readonly=on")
	}

	if len(m.NetArgs) == 0 {
		args = append(args, "-nic", "none")
	} else {
		args = append(args, m.NetArgs...)
		args = append(args, "-device", nicModel+",netdev="+sdk.NetdevID+",mac="+m.MAC.String())
	}

	if audio != "none" {
		if !definesID(m.ExtraArgs, "-audiodev", sdk.AudiodevID) {
			args = append(args, "-audiodev", "none,id="+sdk.AudiodevID)
		}
		switch audio {
		case "sb16":
			args = append(args, "-device", "sb16,audiodev="+sdk.AudiodevID)
		case "ac97":
			args = append(args, "-device", "AC97,audiodev="+sdk.AudiodevID)
		case "hda":
			args = append(args, "-device", "intel-hda", "-device", "hda-duplex,audiodev="+sdk.AudiodevID)
		}
	}

	if pointer == "tablet" {
		args = append(args, "-usb", "-device", "usb-tablet")
	}

	if m.SerialLog != "" {
		args = append(args,
			"-chardev", "file,id=serial0,path="+m.SerialLog+",append=on",
			"-serial", "chardev:serial0")
	} else if m.ConsoleSocket != "" {
		// Keep the console on ttyS1 whether or not a log is configured,
		// so guest images can hard-code console=ttyS1.
		args = append(args, "-serial", "null")
	}
	if m.ConsoleSocket != "" {
		args = append(args,
			"-chardev", "socket,id=serial1,path="+m.ConsoleSocket+",server=on,wait=off",
			"-serial", "chardev:serial1")
	}

	if m.QMPSocket != "" {
		args = append(args,
			"-chardev", "socket,id=qmp0,path="+m.QMPSocket+",server=on,wait=off",
			"-mon", "chardev=qmp0,mode=control")
	}
	if m.InputQMPSocket != "" {
		args = append(args,
			"-chardev", "socket,id=qmp1,path="+m.InputQMPSocket+",server=on,wait=off",
			"-mon", "chardev=qmp1,mode=control")
	}
	if m.PIDFile != "" {
		args = append(args, "-pidfile", m.PIDFile)
	}
	args = append(args, m.ExtraArgs...)
	return args
}

// checkAbsPath rejects relative paths (QEMU would resolve them against its
// own working directory) and commas (QEMU's option syntax would split them;
// escaping is not applied uniformly across options, so we refuse instead).
func checkAbsPath(p string) error {
	if !filepath.IsAbs(p) {
		return fmt.Errorf("path %q is relative; an absolute path is required", p)
	}
	return CheckOptionPath(p)
}

// vncOption validates a VNC endpoint and returns the -vnc value.
func vncOption(v string) (string, error) {
	if strings.Contains(v, ",") {
		return "", fmt.Errorf("%q: options are not allowed, only an endpoint", v)
	}
	if p, ok := strings.CutPrefix(v, "unix:"); ok {
		if err := checkAbsPath(p); err != nil {
			return "", err
		}
		if len(p) > maxUnixPath {
			return "", fmt.Errorf("socket %q: %d bytes is longer than the %d a unix socket path can have", p, len(p), maxUnixPath)
		}
		return v, nil
	}
	host, display, ok := strings.Cut(v, ":")
	if !ok {
		return "", fmt.Errorf("%q: must be \"unix:/path\" or \"127.0.0.1:N\"", v)
	}
	if host != "127.0.0.1" {
		return "", fmt.Errorf("%q: host %q refused; VNC may only listen on 127.0.0.1 or a unix socket", v, host)
	}
	n, err := strconv.Atoi(display)
	if err != nil || n < 0 || n > 65535-5900 {
		return "", fmt.Errorf("%q: display %q must be a number from 0 to %d", v, display, 65535-5900)
	}
	return v, nil
}

// checkNetArgs enforces the network plugin contract: a backend with id net0
// and no frontend of its own bound to it.
func checkNetArgs(args []string) error {
	if !definesID(args, "-netdev", sdk.NetdevID) {
		return fmt.Errorf("%q define no \"-netdev TYPE,id=%s,...\"", args, sdk.NetdevID)
	}
	for i := 0; i+1 < len(args); i++ {
		switch normalizeFlag(args[i]) {
		case "-nic", "-net":
			return fmt.Errorf("%s is not allowed: only -netdev backends; the core adds the NIC", args[i])
		case "-device":
			if v, ok := optValue(args[i+1], "netdev"); ok && v == sdk.NetdevID {
				return fmt.Errorf("-device %s attaches to %s; the core adds that NIC with the guest MAC", args[i+1], sdk.NetdevID)
			}
		}
	}
	return nil
}

// definesID reports whether args contain flag with an option value whose id
// is id, e.g. "-netdev dgram,id=net0,...".
func definesID(args []string, flag, id string) bool {
	for i := 0; i+1 < len(args); i++ {
		if normalizeFlag(args[i]) != flag {
			continue
		}
		if v, ok := optValue(args[i+1], "id"); ok && v == id {
			return true
		}
	}
	return false
}

// normalizeFlag maps QEMU's accepted "--flag" spelling to "-flag".
func normalizeFlag(a string) string {
	if strings.HasPrefix(a, "--") {
		return a[1:]
	}
	return a
}

// optValue returns the value of key in a QEMU option string such as
// "dgram,id=net0,local.type=unix". A doubled comma is QEMU's escape for a
// literal comma and does not split.
func optValue(opts, key string) (string, bool) {
	var parts []string
	var cur strings.Builder
	for i := 0; i < len(opts); i++ {
		if opts[i] == ',' {
			if i+1 < len(opts) && opts[i+1] == ',' {
				cur.WriteByte(',')
				i++
				continue
			}
			parts = append(parts, cur.String())
			cur.Reset()
			continue
		}
		cur.WriteByte(opts[i])
	}
	parts = append(parts, cur.String())
	for _, p := range parts {
		if k, v, ok := strings.Cut(p, "="); ok && k == key {
			return v, true
		}
	}
	return "", false
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
