package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/chromedp"

	"github.com/locolan/loco/core/cluster"
	"github.com/locolan/loco/internal/testenv"
	"github.com/locolan/loco/sdk/qmp"
)

// legoLocoSpec turns configs/lego-loco.hcl into a spec for the test guest
// with as few changes as can be: the kernel and initrd join the image
// block (the disk stays var.win98_disk, defaulting to the test guest's
// blank disk; players defaults to 3), accel "auto" becomes "tcg" (KVM is broken here for Linux guests),
// the API listens on a free port and stop_grace is short. The guest block,
// the plugins and the LAN are the file's own. Every replacement must
// match, so a change to the file that this test no longer covers fails it.
func (e *e2e) legoLocoSpec(t testing.TB) string {
	t.Helper()
	src, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), "configs", "lego-loco.hcl"))
	if err != nil {
		t.Fatal(err)
	}
	s := string(src)
	for _, r := range [][2]string{
		{"    disk       = var.win98_disk\n", fmt.Sprintf("    disk       = var.win98_disk\n    kernel     = %q\n    initrd     = %q\n    append     = \"vga=0x315\"\n",
			filepath.Join(e.Guest, "vmlinuz"), filepath.Join(e.Guest, "initrd.img"))},
		{"    min_memory = 32\n", "    min_memory = 96\n"},
		// Defaults rather than --var, so the cleanup's `loco stop SPEC`
		// loads the spec too.
		{"variable \"win98_disk\" {\n", fmt.Sprintf("variable \"win98_disk\" {\n  default     = %q\n", filepath.Join(e.Guest, "base.qcow2"))},
		{"  default = 9\n", "  default = 3\n"},
		{`accel          = "auto"`, `accel          = "tcg"`},
		{`stop_grace = "60s"`, `stop_grace = "5s"`},
		{`listen = "127.0.0.1:7780"`, `listen = "127.0.0.1:0"`},
	} {
		if strings.Count(s, r[0]) != 1 {
			t.Fatalf("configs/lego-loco.hcl no longer has %q once: update this test", r[0])
		}
		s = strings.Replace(s, r[0], r[1], 1)
	}
	for _, want := range []string{`machine        = "pc"`, `nic            = "ne2k_pci"`, `vga            = "cirrus"`,
		`audio          = "sb16"`, `disk_interface = "ide"`, `memory         = 128`, `network "socket"`, `input "qmp"`, `stream "webrtc"`} {
		if !strings.Contains(s, want) {
			t.Fatalf("configs/lego-loco.hcl has no %s any more: update this test", want)
		}
	}
	path := filepath.Join(e.Dir, "lego-loco.hcl")
	if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
	e.Track(path)
	return path
}

// TestLegoLocoProfile boots three test guests on the hardware of
// configs/lego-loco.hcl (i440FX "pc", ne2k_pci, Cirrus 5446, IDE, PS/2,
// sb16) with every plugin that file names, and checks what a Linux guest
// can show of it: the devices on QEMU's PCI bus and in its device tree,
// the guest kernel's drivers for the NIC and the disk, the LAN over
// ne2k_pci (ping, broadcast, raw IPX, NetBEUI), the dashboard's stream at
// the Cirrus display's sizes through a mode change, relative PS/2 mouse
// motion through the dashboard's pointer lock, and the stream's audio
// track from the sb16. The test guest's Debian amd64 kernel has no ISA
// bus, so no driver binds the sb16: that the card plays sound is left to
// Windows 98 (images/win98/README.md).
func TestLegoLocoProfile(t *testing.T) {
	if testing.Short() {
		t.Skip("boots three guests and a browser")
	}
	e := newE2E(t)
	spec := e.legoLocoSpec(t)
	const cl = "lego-loco"
	e.MustRun("run", "--detach", spec)
	ips := []string{"10.87.0.10", "10.87.0.11", "10.87.0.12"}
	dhcpRe := regexp.MustCompile(`LOCO-DHCP name=\S+ ip=(\S+)`)
	for i := range ips {
		e.WaitReady(cl, i, 1)
		if got := e.waitSerial(t, cl, i, dhcpRe, 1)[1]; got != ips[i] {
			t.Fatalf("guest %d leased %s, want %s", i, got, ips[i])
		}
	}
	g := &lanGuests{e: e, cluster: cl, mu: make([]sync.Mutex, 3)}

	t.Run("QEMU has the profile's devices", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		c, err := qmp.Dial(ctx, filepath.Join(e.GuestDir(cl, 0), "qmp.sock"))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		var tree string
		if err := c.Run(ctx, "human-monitor-command", map[string]string{"command-line": "info qtree"}, &tree); err != nil {
			t.Fatal(err)
		}
		var machine string
		if err := c.Run(ctx, "human-monitor-command", map[string]string{"command-line": "info pci"}, &machine); err != nil {
			t.Fatal(err)
		}
		for _, want := range []struct{ where, text, what string }{
			{tree, "dev: i440FX-pcihost", "the i440FX host bridge of machine pc"},
			{tree, "dev: ne2k_pci", "the ne2k_pci NIC"},
			{tree, "dev: cirrus-vga", "the Cirrus 5446 display"},
			{tree, "dev: sb16", "the ISA Sound Blaster 16"},
			{tree, "dev: piix3-ide", "the PIIX3 IDE controller"},
			{tree, "dev: i8042", "the PS/2 controller"},
			{machine, "Ethernet controller: PCI device 10ec:8029", "the RTL-8029 (ne2k_pci) on the PCI bus"},
			{machine, "VGA controller: PCI device 1013:00b8", "the CL-GD5446 on the PCI bus"},
		} {
			if !strings.Contains(want.where, want.text) {
				t.Errorf("QEMU lacks %s (%q)", want.what, want.text)
			}
		}
		if t.Failed() {
			t.Logf("info pci:\n%s", machine)
		}
	})

	t.Run("the guest kernel drives the NIC, the disk and the mouse", func(t *testing.T) {
		log := e.serialLog(cl, 0)
		for _, want := range []struct{ text, what string }{
			{"RealTek RTL-8029", "ne2k-pci bound to the ne2k_pci NIC"},
			{"ata_piix", "ata_piix bound to the IDE controller"},
			{"[sda]", "the IDE disk as sda"},
			{"ImExPS/2", "psmouse bound to the PS/2 mouse"},
		} {
			if !strings.Contains(log, want.text) {
				t.Errorf("serial log has no %q: %s missing", want.text, want.what)
			}
		}
		// A no-op on the guest's side, logged so the report says so.
		if strings.Contains(log, "sb16") || strings.Contains(log, "Sound Blaster") {
			t.Logf("the guest kernel mentions the sb16")
		} else {
			t.Logf("as expected, no driver in the guest for the ISA sb16 (Debian's amd64 kernel has no ISA bus)")
		}
		if r := g.must(t, 0, "disk-write legoloco"); !strings.Contains(r, "/dev/sda") {
			t.Errorf("disk-write went to %q, want the IDE disk /dev/sda", r)
		}
	})

	macs := make([]string, 3)
	for i := range macs {
		macs[i] = strings.TrimPrefix(strings.Fields(g.must(t, i, "info"))[1], "mac=")
	}
	each(t, 3, func(i int) error {
		for _, c := range []string{"raw-listen", "udp-listen 47624"} {
			if r, err := g.cmd(i, c); err != nil || !strings.HasPrefix(r, "OK") {
				return fmt.Errorf("guest %d %s: %s %v", i, c, r, err)
			}
		}
		return nil
	})
	t.Run("the LAN over ne2k_pci", func(t *testing.T) {
		if err := g.allPairsPing(ips, 3, 3*time.Second); err != nil {
			t.Fatal(err)
		}
		text := fmt.Sprintf("bcast-%d", time.Now().UnixNano())
		g.must(t, 0, "udp-send 255.255.255.255 47624 "+text)
		for i := 1; i < 3; i++ {
			waitCount(t, fmt.Sprintf("guest %d to get the broadcast", i), func() int { return strings.Count(g.must(t, i, "udp-recv 47624"), "="+text) }, 1)
		}
		for _, tc := range []struct{ name, send, recv string }{
			{"IPX, EtherType 0x8137", "0x8137", "0x8137"},
			{"NetBEUI on 802.2 LLC", "llc:f0", "802.3"},
		} {
			text := fmt.Sprintf("frame-%d", time.Now().UnixNano())
			g.must(t, 1, fmt.Sprintf("raw-send %s broadcast %s", tc.send, text))
			for _, i := range []int{0, 2} {
				waitCount(t, fmt.Sprintf("%s: guest %d to get the frame", tc.name, i), func() int { return strings.Count(g.must(t, i, "raw-recv "+tc.recv), macs[1]+"="+text) }, 1)
			}
		}
		st := e.lanStatus(t, cl)
		for _, gs := range st.Ports {
			t.Logf("LAN: %s %s rx=%d tx=%d by type %v", gs.Name, gs.MAC, gs.RxFrames, gs.TxFrames, gs.FramesByEtherType)
		}
	})

	base, tok, err := cluster.APIEndpoint(filepath.Join(e.StateDir, cl))
	if err != nil {
		t.Fatal(err)
	}
	ctx := startChromium(t)
	if err := chromedp.Do(ctx, chromedp.Navigate(base+"/?token="+tok)); err != nil {
		t.Fatal(err)
	}
	pageWait(t, ctx, "three live tiles", fmt.Sprintf(allLive, 3), 2*time.Minute)
	rect := pageEval[struct{ X, Y float64 }](t, ctx,
		`(() => { const r = document.querySelector('.tile[data-index="0"]').getBoundingClientRect(); return {X: r.x + r.width/2, Y: r.y + r.height/2}; })()`)
	if err := chromedp.Do(ctx, chromedp.MouseClickXY(rect.X, rect.Y)); err != nil {
		t.Fatal(err)
	}
	pageWait(t, ctx, "tile 0 focused", `loco.focused && loco.focused.index === 0`, 10*time.Second)

	t.Run("the stream at the Cirrus sizes through a mode change", func(t *testing.T) {
		pageWait(t, ctx, "tile 0 plays the full 800x600 stream", `loco.focused.shown === 'full' && loco.focused.video.videoWidth === 800 && loco.focused.video.videoHeight === 600`, time.Minute)
		pageEval[bool](t, ctx, `window.sizes = []; loco.focused.video.addEventListener('resize', (ev) => sizes.push([ev.target.videoWidth, ev.target.videoHeight])); true`)
		// A reset is the mode change every Windows 98 restart makes: the
		// BIOS's 720x400 text mode, then the driver's 800x600.
		qctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		c, err := qmp.Dial(qctx, filepath.Join(e.GuestDir(cl, 0), "qmp.sock"))
		if err != nil {
			t.Fatal(err)
		}
		err = c.Run(qctx, "system_reset", nil, nil)
		c.Close()
		if err != nil {
			t.Fatal(err)
		}
		e.WaitReady(cl, 0, 2)
		pageWait(t, ctx, "the stream back at 800x600 after a smaller mode", `sizes.some(([w, h]) => w !== 800) && sizes.length > 0 && sizes[sizes.length-1][0] === 800 && sizes[sizes.length-1][1] === 600`, time.Minute)
		t.Logf("sizes the focused tile played through the reset: %v", pageEval[[][2]int](t, ctx, `sizes`))
		var st []streamStat
		apiGet(t, base, tok, "/api/streams", &st)
		for _, s := range st {
			t.Logf("%s %s: %dx%d", s.Name, s.Variant, s.Width, s.Height)
		}
	})

	t.Run("the stream carries the sb16's audio track", func(t *testing.T) {
		n := pageEval[int](t, ctx, `loco.focused.stream.pc.getReceivers().filter((r) => r.track && r.track.kind === 'audio').length`)
		if n != 1 {
			t.Errorf("the focused tile's connection has %d audio tracks, want 1", n)
		}
	})

	t.Run("relative PS/2 mouse through the dashboard's pointer lock", func(t *testing.T) {
		pageWait(t, ctx, "the input WebSocket of tile 0 opens", `loco.focused.inputState === 'input ready'`, 30*time.Second)
		pageWait(t, ctx, "the lock button shows", `!loco.focused.lockBtn.hidden`, 10*time.Second)
		lr := pageEval[struct{ X, Y float64 }](t, ctx,
			`(() => { const r = loco.focused.lockBtn.getBoundingClientRect(); return {X: r.x + r.width/2, Y: r.y + r.height/2}; })()`)
		if err := chromedp.Do(ctx, chromedp.MouseClickXY(lr.X, lr.Y)); err != nil {
			t.Fatal(err)
		}
		pageWait(t, ctx, "pointer lock on the focused tile", `document.pointerLockElement === loco.focused.surface`, 10*time.Second)
		pageEval[bool](t, ctx, `window.moves = []; document.addEventListener('mousemove', (ev) => moves.push([ev.movementX, ev.movementY])); true`)
		before := strings.Count(e.serialLog(cl, 0), "type=2 code=0 ")
		move := func(k int) {
			// Back and forth, so the pointer never leaves the page.
			x, y := lr.X+float64(10*(k%5)), lr.Y+float64(5*(k%5))
			if err := chromedp.Do(ctx, chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
				_, err := cdp.Call(ctx, tg, input.DispatchMouseEvent, input.DispatchMouseEventParams{Type: input.DispatchMouseEventTypeMouseMoved, X: x, Y: y})
				return err
			})); err != nil {
				t.Fatal(err)
			}
		}
		// Moves go on until the guest saw some: the first ones after the
		// lock may come before the page's handler is in place.
		deadline := time.Now().Add(20 * time.Second)
		for k := 1; strings.Count(e.serialLog(cl, 0), "type=2 code=0 ") <= before; k++ {
			if time.Now().After(deadline) {
				t.Fatalf("no relative X motion (EV_REL REL_X) reached guest 0; the page saw movements %v; serial tail:\n%s", pageEval[[][2]int](t, ctx, `moves`), e.serialTail(cl, 0, 10))
			}
			move(k)
			time.Sleep(200 * time.Millisecond)
		}
		t.Logf("relative motion events in guest 0: %d", strings.Count(e.serialLog(cl, 0), "type=2 code=0 ")-before)
	})
	t.Logf("dashboard: %s", pageShot(t, ctx, "lego-loco-profile.png"))
}
