package lan

import (
	"context"
	"strings"
	"testing"

	"github.com/locolan/loco/sdk"
	"github.com/locolan/loco/sdk/sdktest"
)

// TestConfigProblemsNameTheirAttribute runs blocks through the same gRPC
// services and HCL decoding loco uses.
func TestConfigProblemsNameTheirAttribute(t *testing.T) {
	cases := []struct {
		name, block string
		n           int
		attr, want  string // attr "": no problem
	}{
		{"empty block", ``, 3, "", ""},
		{"static guests", `dhcp = false`, 3, "", ""},
		{"everything set", "subnet = \"192.168.5.0/24\"\nhost_ip = \"192.168.5.254\"\nfirst_lease = 100\nlease_time = \"2h\"\nprobe_interval = \"500ms\"\nmac_ageing = \"1m\"\nqueue_frames = 64", 9, "", ""},
		{"not a subnet", `subnet = "lan"`, 3, "subnet", "Not a subnet"},
		{"IPv6 subnet", `subnet = "fd00::/64"`, 3, "subnet", "Not IPv4"},
		{"host bits set", `subnet = "10.0.0.1/24"`, 3, "subnet", "Host bits set"},
		{"/31", `subnet = "10.0.0.0/31"`, 3, "subnet", "Subnet too small"},
		{"leases overflow", "subnet = \"10.0.0.0/28\"\nfirst_lease = 10", 9, "first_lease", "do not fit"},
		{"leases on the switch", `first_lease = 1`, 3, "first_lease", "overlap"},
		{"host_ip outside", `host_ip = "10.1.0.1"`, 3, "host_ip", "Not a host of the subnet"},
		{"host_ip is the broadcast", `host_ip = "10.87.0.255"`, 3, "host_ip", "Not a host of the subnet"},
		{"host_ip leased", `host_ip = "10.87.0.11"`, 3, "host_ip", "guest 1's DHCP lease"},
		{"host_ip in range with DHCP off", "host_ip = \"10.87.0.11\"\ndhcp = false", 3, "", ""},
		{"bad duration", `lease_time = "forever"`, 3, "lease_time", "Not a duration"},
		{"probe too often", `probe_interval = "1ms"`, 3, "probe_interval", "Too short"},
		{"queue too short", `queue_frames = 1`, 3, "queue_frames", "Out of range"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := sdktest.Start(t, &Plugin{})
			problems, diags := sdktest.Configure(t, c, tc.block, testCluster(t, tc.n))
			if diags.HasErrors() {
				t.Fatalf("HCL: %v", diags)
			}
			if tc.attr == "" {
				if len(problems) != 0 {
					t.Fatalf("unexpected problems: %+v", problems)
				}
				return
			}
			for _, p := range problems {
				if len(p.Path) == 1 && p.Path[0] == tc.attr && strings.Contains(p.Summary+": "+p.Detail, tc.want) {
					return
				}
			}
			t.Fatalf("want a problem at %s containing %q, got %+v", tc.attr, tc.want, problems)
		})
	}
}

// TestAttachArgsAreDeterministic: a restarted plugin must hand running guests
// the arguments they already have.
func TestAttachArgsAreDeterministic(t *testing.T) {
	cl := testCluster(t, 2)
	var first [][]string
	for round := 0; round < 2; round++ {
		c := sdktest.Start(t, &Plugin{})
		if problems, diags := sdktest.Configure(t, c, ``, cl); diags.HasErrors() || len(problems) > 0 {
			t.Fatal(diags, problems)
		}
		for i, in := range cl.Instances {
			args, err := c.Attach(context.Background(), sdk.KindNetwork, in)
			if err != nil {
				t.Fatal(err)
			}
			if round == 0 {
				first = append(first, args)
				want := "dgram,id=net0,local.type=unix,local.path=" + in.StateDir + "/net.sock,remote.type=unix,remote.path=" + cl.StateDir + "/lan/" + string(rune('0'+i)) + ".sock"
				if len(args) != 2 || args[0] != "-netdev" || args[1] != want {
					t.Errorf("args %q, want -netdev %q", args, want)
				}
			} else if strings.Join(args, " ") != strings.Join(first[i], " ") {
				t.Errorf("instance %d: %q then %q", i, first[i], args)
			}
		}
		if _, err := c.LANStatus(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
}

func TestCommasInPathsAreEscapedForQEMU(t *testing.T) {
	cl := testCluster(t, 1)
	cl.Instances[0].StateDir += ",x"
	cfg, _ := ParseConfig(defaultRaw(), 1)
	seg, err := NewSegment(nil, cfg, cl)
	if err != nil {
		t.Fatal(err)
	}
	if a := seg.qemuArgs(0)[1]; !strings.Contains(a, ",,x/net.sock") {
		t.Errorf("args %q", a)
	}
}

func TestLongSocketPathIsRefused(t *testing.T) {
	cl := testCluster(t, 1)
	cl.Instances[0].StateDir = "/" + strings.Repeat("d", 120)
	cfg, _ := ParseConfig(defaultRaw(), 1)
	if _, err := NewSegment(nil, cfg, cl); err == nil || !strings.Contains(err.Error(), "shorter state_dir") {
		t.Fatalf("err = %v", err)
	}
}
