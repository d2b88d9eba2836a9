package vxlan

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/zclconf/go-cty/cty"
)

func run(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// TestLinuxKernelVXLANInterop puts the Linux kernel's own VTEP in a
// network namespace this test creates, joined to the host by a veth pair
// it creates, and peers this plugin with it: the kernel's vx0 pings the
// segment's station across the tunnel (ARP and ICMP both ways), the
// kernel's MAC is learned behind the peer, and tcpdump on the kernel's
// side reads the datagrams as VXLAN with our VNI.
func TestLinuxKernelVXLANInterop(t *testing.T) {
	for _, tool := range []string{"ip", "ping", "tcpdump"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is needed (apt-get install iproute2 iputils-ping tcpdump; make deps does)", tool)
		}
	}
	id := os.Getpid() % 250
	ns, vh, vn := fmt.Sprintf("lvx%d", os.Getpid()), fmt.Sprintf("lvxh%d", os.Getpid()), fmt.Sprintf("lvxn%d", os.Getpid())
	hostIP, nsIP := fmt.Sprintf("10.251.%d.1", id), fmt.Sprintf("10.251.%d.2", id)
	run(t, "ip", "netns", "add", ns)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
	run(t, "ip", "link", "add", vh, "type", "veth", "peer", "name", vn)
	t.Cleanup(func() { exec.Command("ip", "link", "del", vh).Run() })
	run(t, "ip", "link", "set", vn, "netns", ns)
	run(t, "ip", "addr", "add", hostIP+"/30", "dev", vh)
	run(t, "ip", "link", "set", vh, "up")
	in := func(args ...string) string { return run(t, append([]string{"ip", "netns", "exec", ns}, args...)...) }
	in("ip", "addr", "add", nsIP+"/30", "dev", vn)
	in("ip", "link", "set", vn, "up")
	in("ip", "link", "set", "lo", "up")
	in("ip", "link", "add", "vx0", "type", "vxlan", "id", "4242", "dstport", "4789", "remote", hostIP, "local", nsIP, "dev", vn)
	in("ip", "addr", "add", "10.87.0.200/24", "dev", "vx0")
	in("ip", "link", "set", "vx0", "up")
	kmac, err := net.ParseMAC(strings.TrimSpace(in("cat", "/sys/class/net/vx0/address")))
	if err != nil {
		t.Fatal(err)
	}

	h := startHost(t, "kx", 1, map[string]cty.Value{"listen": cty.StringVal(hostIP + ":4789"),
		"peers": cty.ListVal([]cty.Value{cty.StringVal(nsIP + ":4789")}), "host_ip": cty.StringVal("10.87.0.1")})

	var dump bytes.Buffer
	td := exec.Command("ip", "netns", "exec", ns, "tcpdump", "-i", vn, "-nn", "-l", "-v", "udp", "port", "4789")
	td.Stdout, td.Stderr = &dump, &dump
	if err := td.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { td.Process.Kill(); td.Wait() })
	time.Sleep(time.Second) // tcpdump attaches

	out := in("ping", "-c", "3", "-W", "2", "10.87.0.1")
	if !strings.Contains(out, "3 received") {
		t.Fatalf("the kernel's vx0 cannot ping the station across the tunnel:\n%s", out)
	}
	t.Logf("kernel -> station: %s", out[strings.LastIndex(strings.TrimSpace(out), "\n")+1:])
	st, _ := h.p.Status(t.Context())
	if len(st.Uplinks) != 1 || !st.Uplinks[0].Reachable || !containsStr(st.Uplinks[0].MACs, kmac.String()) || st.Uplinks[0].RxFrames == 0 {
		t.Errorf("the kernel's peer in the status: %+v", st.Uplinks)
	}
	for _, bad := range []string{"vxlan_unknown_peer", "vxlan_no_i_flag", "vxlan_wrong_vni", "vxlan_short_header"} {
		if st.Drops[bad] != 0 {
			t.Errorf("the kernel's datagrams were dropped as %s: %v", bad, st.Drops)
		}
	}
	time.Sleep(500 * time.Millisecond)
	td.Process.Signal(os.Interrupt)
	td.Wait()
	d := dump.String()
	if !strings.Contains(d, "VXLAN, flags [I] (0x08), vni 4242") || !strings.Contains(d, "10.87.0.1 > 10.87.0.200: ICMP echo reply") {
		t.Errorf("tcpdump on the kernel's side:\n%s", d)
	}
}
