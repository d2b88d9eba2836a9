package qemu

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/locolan/loco/sdk"
)

var testMAC = net.HardwareAddr{0x52, 0x11, 0x22, 0x00, 0x00, 0x01}

func baseMachine() Machine {
	return Machine{Name: "g1", MemoryMiB: 64, Accel: AccelTCG}
}

func TestArgsExact(t *testing.T) {
	tests := []struct {
		name string
		m    func() Machine
		want []string
	}{
		{
			name: "minimal",
			m:    baseMachine,
			want: []string{
				"-name", "g1,process=g1", "-nodefaults", "-no-user-config",
				"-machine", "pc", "-accel", "tcg", "-smp", "1", "-m", "64",
				"-display", "none", "-vga", "std", "-nic", "none",
			},
		},
		{
			name: "everything",
			m: func() Machine {
				return Machine{
					Binary: "/usr/bin/qemu-system-x86_64", Name: "web-1", Machine: "q35",
					CPUs: 2, MemoryMiB: 256, Accel: AccelKVM,
					Kernel: "/k/vmlinuz", Initrd: "/k/initrd", Append: "console=ttyS0 quiet",
					Disk: "/g/disk.qcow2", DiskInterface: "virtio",
					NetArgs:  []string{"-netdev", "dgram,id=net0,local.type=unix,local.path=/n/a"},
					NICModel: "virtio-net-pci", MAC: testMAC,
					VGA: "cirrus", Audio: "hda",
					QMPSocket: "/r/qmp.sock", InputQMPSocket: "/r/input.sock",
					VNC: "unix:/r/vnc.sock", SerialLog: "/r/serial.log",
					ConsoleSocket: "/r/console.sock", PIDFile: "/r/qemu.pid",
					ExtraArgs: []string{"-rtc", "base=localtime"},
				}
			},
			want: []string{
				"-name", "web-1,process=web-1", "-nodefaults", "-no-user-config",
				"-machine", "q35", "-accel", "kvm", "-smp", "2", "-m", "256",
				"-display", "dbus,p2p=yes", "-vga", "cirrus", "-vnc", "unix:/r/vnc.sock",
				"-kernel", "/k/vmlinuz", "-initrd", "/k/initrd", "-append", "console=ttyS0 quiet",
				"-drive", "file=/g/disk.qcow2,format=qcow2,if=virtio",
				"-netdev", "dgram,id=net0,local.type=unix,local.path=/n/a",
				"-device", "virtio-net-pci,netdev=net0,mac=52:11:22:00:00:01",
				"-audiodev", "none,id=snd0", "-device", "intel-hda", "-device", "hda-duplex,audiodev=snd0",
				"-chardev", "file,id=serial0,path=/r/serial.log,append=on", "-serial", "chardev:serial0",
				"-chardev", "socket,id=serial1,path=/r/console.sock,server=on,wait=off", "-serial", "chardev:serial1",
				"-chardev", "socket,id=qmp0,path=/r/qmp.sock,server=on,wait=off", "-mon", "chardev=qmp0,mode=control",
				"-chardev", "socket,id=qmp1,path=/r/input.sock,server=on,wait=off", "-mon", "chardev=qmp1,mode=control",
				"-pidfile", "/r/qemu.pid",
				"-rtc", "base=localtime",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := tt.m()
			got, err := m.Args()
			if err != nil {
				t.Fatalf("Args: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Args mismatch\n got: %q\nwant: %q", got, tt.want)
			}
			again, _ := m.Args()
			if !reflect.DeepEqual(got, again) {
				t.Errorf("Args not deterministic:\n%q\n%q", got, again)
			}
		})
	}
}

// TestArgsFragments checks the argv fragments each option contributes.
func TestArgsFragments(t *testing.T) {
	tests := []struct {
		name    string
		edit    func(*Machine)
		want    [][]string // contiguous runs that must appear
		notWant []string   // single args that must not appear
	}{
		{"default binary", func(m *Machine) {}, nil, []string{"-daemonize", "-audiodev"}},
		{"vga none", func(m *Machine) { m.VGA = "none" }, [][]string{{"-vga", "none"}}, nil},
		{"vga cirrus", func(m *Machine) { m.VGA = "cirrus" }, [][]string{{"-vga", "cirrus"}}, nil},
		{"audio sb16", func(m *Machine) { m.Audio = "sb16" },
			[][]string{{"-audiodev", "none,id=snd0", "-device", "sb16,audiodev=snd0"}}, nil},
		{"audio ac97", func(m *Machine) { m.Audio = "ac97" },
			[][]string{{"-audiodev", "none,id=snd0", "-device", "AC97,audiodev=snd0"}}, nil},
		{"audio hda", func(m *Machine) { m.Audio = "hda" },
			[][]string{{"-audiodev", "none,id=snd0", "-device", "intel-hda", "-device", "hda-duplex,audiodev=snd0"}}, nil},
		{"audio backend from plugin", func(m *Machine) {
			m.Audio = "ac97"
			m.ExtraArgs = []string{"-audiodev", "wav,id=snd0,path=/r/out.wav"}
		}, [][]string{{"-device", "AC97,audiodev=snd0"}, {"-audiodev", "wav,id=snd0,path=/r/out.wav"}},
			[]string{"none,id=snd0"}},
		{"ide disk by default", func(m *Machine) { m.Disk = "/g/d.qcow2" },
			[][]string{{"-drive", "file=/g/d.qcow2,format=qcow2,if=ide"}}, nil},
		{"identity floppy", func(m *Machine) { m.Floppy = "/g/identity.img" },
			[][]string{{"-drive", "file=/g/identity.img,format=raw,if=floppy,readonly=on"}}, nil},
		{"default NIC model", func(m *Machine) {
			m.NetArgs = []string{"--netdev", "socket,id=net0,listen=127.0.0.1:1234"}
			m.MAC = testMAC
		}, [][]string{{"-device", "e1000,netdev=net0,mac=52:11:22:00:00:01"}}, []string{"-nic"}},
		{"escaped comma in netdev", func(m *Machine) {
			m.NetArgs = []string{"-netdev", "dgram,local.path=/a,,b,id=net0"}
			m.MAC = testMAC
		}, [][]string{{"-device", "e1000,netdev=net0,mac=52:11:22:00:00:01"}}, nil},
		{"console stays ttyS1 without serial log", func(m *Machine) { m.ConsoleSocket = "/r/c.sock" },
			[][]string{{"-serial", "null", "-chardev", "socket,id=serial1,path=/r/c.sock,server=on,wait=off", "-serial", "chardev:serial1"}}, nil},
		{"serial log alone", func(m *Machine) { m.SerialLog = "/r/s.log" },
			[][]string{{"-chardev", "file,id=serial0,path=/r/s.log,append=on", "-serial", "chardev:serial0"}}, []string{"null"}},
		{"vnc tcp", func(m *Machine) { m.VNC = "127.0.0.1:7" }, [][]string{{"-vnc", "127.0.0.1:7"}}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := baseMachine()
			tt.edit(&m)
			got, err := m.Args()
			if err != nil {
				t.Fatalf("Args: %v", err)
			}
			for _, run := range tt.want {
				if !containsRun(got, run) {
					t.Errorf("Args lacks %q\n got: %q", run, got)
				}
			}
			for _, a := range tt.notWant {
				if slices.Contains(got, a) {
					t.Errorf("Args contains %q\n got: %q", a, got)
				}
			}
			if m.Program() != DefaultBinary {
				t.Errorf("Program() = %q, want %q", m.Program(), DefaultBinary)
			}
		})
	}
}

func containsRun(args, run []string) bool {
	for i := 0; i+len(run) <= len(args); i++ {
		if slices.Equal(args[i:i+len(run)], run) {
			return true
		}
	}
	return false
}

func TestArgsErrors(t *testing.T) {
	long := "/" + strings.Repeat("x", 110)
	tests := []struct {
		name string
		edit func(*Machine)
		want []string // substrings of the error
	}{
		{"empty name", func(m *Machine) { m.Name = "" }, []string{"name"}},
		{"name with comma", func(m *Machine) { m.Name = "a,b" }, []string{`name "a,b"`}},
		{"tiny memory", func(m *Machine) { m.MemoryMiB = 8 }, []string{"memory 8 MiB", "at least 16"}},
		{"no memory", func(m *Machine) { m.MemoryMiB = 0 }, []string{"memory 0 MiB"}},
		{"no accel", func(m *Machine) { m.Accel = "" }, []string{"accel is empty"}},
		{"auto accel", func(m *Machine) { m.Accel = "auto" }, []string{`unknown accel "auto"`, "ProbeAccel"}},
		{"bad cpus", func(m *Machine) { m.CPUs = -1 }, []string{"cpus -1"}},
		{"bad machine type", func(m *Machine) { m.Machine = "pc,accel=kvm" }, []string{"machine type"}},
		{"unknown NIC", func(m *Machine) {
			m.NICModel = "e1000e"
			m.NetArgs = []string{"-netdev", "user,id=net0"}
			m.MAC = testMAC
		}, []string{`unknown NIC model "e1000e"`, "rtl8139"}},
		{"unknown vga", func(m *Machine) { m.VGA = "qxl" }, []string{`unknown vga "qxl"`}},
		{"unknown audio", func(m *Machine) { m.Audio = "pcspk" }, []string{`unknown audio "pcspk"`}},
		{"unknown disk interface", func(m *Machine) { m.Disk = "/d"; m.DiskInterface = "scsi" }, []string{`unknown disk interface "scsi"`}},
		{"relative kernel", func(m *Machine) { m.Kernel = "vmlinuz" }, []string{"kernel", "relative"}},
		{"relative disk", func(m *Machine) { m.Disk = "d.qcow2" }, []string{"disk", "relative"}},
		{"relative floppy", func(m *Machine) { m.Floppy = "id.img" }, []string{"floppy", "relative"}},
		{"relative pid file", func(m *Machine) { m.PIDFile = "q.pid" }, []string{"pid file", "relative"}},
		{"relative qmp", func(m *Machine) { m.QMPSocket = "q.sock" }, []string{"QMP socket", "relative"}},
		{"long socket", func(m *Machine) { m.ConsoleSocket = long }, []string{"console socket", "longer than"}},
		{"comma in path", func(m *Machine) { m.SerialLog = "/a,b/log" }, []string{"serial log", "comma"}},
		{"initrd without kernel", func(m *Machine) { m.Initrd = "/i" }, []string{"need a kernel"}},
		{"vnc any host", func(m *Machine) { m.VNC = "0.0.0.0:1" }, []string{`host "0.0.0.0" refused`}},
		{"vnc localhost name", func(m *Machine) { m.VNC = "localhost:1" }, []string{`host "localhost" refused`}},
		{"vnc bad display", func(m *Machine) { m.VNC = "127.0.0.1:x" }, []string{`display "x"`}},
		{"vnc options", func(m *Machine) { m.VNC = "127.0.0.1:1,password=on" }, []string{"options are not allowed"}},
		{"vnc relative unix", func(m *Machine) { m.VNC = "unix:vnc.sock" }, []string{"vnc", "relative"}},
		{"netdev without net0", func(m *Machine) {
			m.NetArgs = []string{"-netdev", "user,id=lan"}
			m.MAC = testMAC
		}, []string{"id=net0"}},
		{"plugin attaches NIC", func(m *Machine) {
			m.NetArgs = []string{"-netdev", "user,id=net0", "-device", "e1000,netdev=net0"}
			m.MAC = testMAC
		}, []string{"the core adds that NIC"}},
		{"plugin uses -nic", func(m *Machine) {
			m.NetArgs = []string{"-netdev", "user,id=net0", "-nic", "user"}
			m.MAC = testMAC
		}, []string{"-nic is not allowed"}},
		{"network without MAC", func(m *Machine) { m.NetArgs = []string{"-netdev", "user,id=net0"} }, []string{"6-byte MAC"}},
		{"daemonize", func(m *Machine) { m.ExtraArgs = []string{"-daemonize"} }, []string{"-daemonize is not allowed"}},
		{"display", func(m *Machine) { m.ExtraArgs = []string{"--display", "gtk"} }, []string{"--display is not allowed"}},
		{"several problems reported together", func(m *Machine) { m.MemoryMiB = 1; m.VGA = "qxl" },
			[]string{"memory 1 MiB", `unknown vga "qxl"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := baseMachine()
			tt.edit(&m)
			args, err := m.Args()
			if err == nil {
				t.Fatalf("Args succeeded with %q, want an error", args)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

// TestArgsAcceptedByQEMU starts every option value's command line for real
// (paused with -S, TCG), on both PC chipsets, and checks it over QMP. This
// is what proves the fragments match what QEMU 7.2 accepts.
func TestArgsAcceptedByQEMU(t *testing.T) {
	kernel := testKernel(t)
	images := t.TempDir()
	base := filepath.Join(images, "base.raw")
	if out, err := runTool(context.Background(), DefaultQEMUImg, "create", "-q", "-f", "raw", base, "16M"); err != nil {
		t.Fatalf("creating base image: %v %s", err, out)
	}
	initrd := filepath.Join(images, "initrd")
	if err := os.WriteFile(initrd, []byte("not really an initrd"), 0o644); err != nil {
		t.Fatal(err)
	}
	vncDisplay := freeVNCDisplay(t)

	type variant struct {
		name string
		edit func(m *Machine, dir string)
	}
	variants := []variant{
		{"minimal", func(m *Machine, dir string) {
			*m = Machine{Name: m.Name, Machine: m.Machine, MemoryMiB: 32, Accel: AccelTCG, QMPSocket: m.QMPSocket}
		}},
		{"full", func(m *Machine, dir string) {}},
		{"console without serial log", func(m *Machine, dir string) { m.SerialLog = "" }},
		{"vnc tcp", func(m *Machine, dir string) { m.VNC = "127.0.0.1:" + strconv.Itoa(vncDisplay) }},
		{"two cpus", func(m *Machine, dir string) { m.CPUs = 2 }},
		{"floppy", func(m *Machine, dir string) {
			m.Floppy = filepath.Join(dir, "identity.img")
			if err := os.WriteFile(m.Floppy, make([]byte, 1474560), 0o600); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, nic := range NICModels {
		variants = append(variants, variant{"nic " + nic, func(m *Machine, dir string) { m.NICModel = nic }})
	}
	for _, vga := range VGAModels {
		variants = append(variants, variant{"vga " + vga, func(m *Machine, dir string) { m.VGA = vga }})
	}
	for _, audio := range AudioModels {
		variants = append(variants, variant{"audio " + audio, func(m *Machine, dir string) { m.Audio = audio }})
	}
	for _, di := range DiskInterfaces {
		variants = append(variants, variant{"disk " + di, func(m *Machine, dir string) { m.DiskInterface = di }})
	}
	for _, p := range PointerModels {
		variants = append(variants, variant{"pointer " + p, func(m *Machine, dir string) { m.Pointer = p }})
	}

	for _, machineType := range []string{"pc", "q35"} {
		for i, v := range variants {
			t.Run(machineType+"/"+v.name, func(t *testing.T) {
				dir := shortDir(t)
				overlay := filepath.Join(dir, "disk.qcow2")
				if err := CreateOverlay(context.Background(), "", base, overlay); err != nil {
					t.Fatal(err)
				}
				name := fmt.Sprintf("t%s-%d", machineType, i)
				m := Machine{
					Name: name, Machine: machineType, MemoryMiB: 64, Accel: AccelTCG,
					Kernel: kernel, Initrd: initrd, Append: "console=ttyS0",
					Disk: overlay,
					NetArgs: []string{"-netdev", "dgram,id=net0,local.type=unix,local.path=" + dir + "/n.sock," +
						"remote.type=unix,remote.path=" + dir + "/peer.sock"},
					NICModel: "rtl8139", MAC: sdk.MAC("test", i),
					VGA: "std", Audio: "hda",
					QMPSocket: dir + "/qmp.sock", InputQMPSocket: dir + "/in.sock",
					VNC: "unix:" + dir + "/vnc.sock", SerialLog: dir + "/serial.log",
					ConsoleSocket: dir + "/con.sock", PIDFile: dir + "/qemu.pid",
				}
				v.edit(&m, dir)
				m.ExtraArgs = append(m.ExtraArgs, "-S")
				args, err := m.Args()
				if err != nil {
					t.Fatalf("Args: %v", err)
				}
				p := startQEMU(t, m.Program(), args)
				c := dialQMP(t, p, m.QMPSocket)
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				defer cancel()

				if got, err := c.Name(ctx); err != nil || got != name {
					t.Errorf("Name() = %q, %v; want %q", got, err, name)
				}
				if got, err := c.Status(ctx); err != nil || got != "prelaunch" {
					t.Errorf("Status() = %q, %v; want prelaunch", got, err)
				}
				if len(m.NetArgs) > 0 {
					// The NIC must carry the planned MAC: that is what DHCP
					// reservations and guest identity hang on.
					var network string
					if err := c.Run(ctx, "human-monitor-command", map[string]string{"command-line": "info network"}, &network); err != nil {
						t.Errorf("info network: %v", err)
					} else if want := "macaddr=" + m.MAC.String(); !strings.Contains(network, want) {
						t.Errorf("info network lacks %s:\n%s", want, network)
					}
				}
				if m.InputQMPSocket != "" {
					in := dialQMP(t, p, m.InputQMPSocket)
					if _, err := in.Status(ctx); err != nil {
						t.Errorf("input QMP socket: %v", err)
					}
					in.Close()
				}
				if m.PIDFile != "" {
					data, err := os.ReadFile(m.PIDFile)
					if err != nil || strings.TrimSpace(string(data)) != strconv.Itoa(p.cmd.Process.Pid) {
						t.Errorf("pid file = %q, %v; want %d", data, err, p.cmd.Process.Pid)
					}
				}
				if m.SerialLog != "" {
					if _, err := os.Stat(m.SerialLog); err != nil {
						t.Errorf("serial log not created: %v", err)
					}
				}
				if err := c.Quit(ctx); err != nil {
					t.Fatalf("Quit: %v", err)
				}
				p.wait(t, 20*time.Second)
				if t.Failed() {
					t.Logf("argv: %q\nstderr:\n%s", args, p.stderr.String())
				}
			})
		}
	}
}

// freeVNCDisplay finds a display number whose port is free right now.
func freeVNCDisplay(t *testing.T) int {
	t.Helper()
	for d := 77; d < 1000; d++ {
		l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(5900+d))
		if err == nil {
			l.Close()
			return d
		}
	}
	t.Fatal("no free VNC port between 5977 and 6899")
	return 0
}

// TestDefaultsThenValidate: Args is WithDefaults, Validate, argv; the
// defaults are visible on their own, and Validate reports every problem of
// the defaulted machine at once.
func TestDefaultsThenValidate(t *testing.T) {
	d := Machine{}.WithDefaults()
	if d.Machine != "pc" || d.CPUs != 1 || d.DiskInterface != "ide" || d.NICModel != "e1000" || d.VGA != "std" || d.Audio != "none" || d.Pointer != "ps2" {
		t.Errorf("defaults: %+v", d)
	}
	if again := d.WithDefaults(); !reflect.DeepEqual(again, d) {
		t.Errorf("WithDefaults is not idempotent: %+v", again)
	}
	bad := Machine{Name: "g", MemoryMiB: 128, Accel: AccelTCG, NICModel: "e9999", Machine: "pc,accel=kvm"}.WithDefaults()
	err := bad.Validate()
	if err == nil || !strings.Contains(err.Error(), `"e9999"`) || !strings.Contains(err.Error(), "not a valid QEMU machine name") {
		t.Errorf("Validate: %v", err)
	}
	good := Machine{Name: "g", MemoryMiB: 128, Accel: AccelTCG}
	args, err := good.Args()
	if err != nil || good.WithDefaults().Validate() != nil || !reflect.DeepEqual(args, good.WithDefaults().argv()) {
		t.Errorf("Args is not argv of the defaulted machine: %v %v", args, err)
	}
}
