// Package sunshine is the stream plugin "sunshine": per guest one Sunshine
// host that Moonlight clients (TVs, phones, handhelds) pair with. Sunshine
// captures a whole X screen, not a window, so each guest gets an X display
// of its own (Xvfb) that QEMU's GTK window fills (the core starts QEMU on
// it: sdk.StreamWindows). The plugin writes each instance's sunshine.conf
// and apps.json with its own port family, starts and supervises Xvfb and
// Sunshine, forwards PIN pairing to Sunshine's API and reports its health
// from that API. Media goes from Sunshine to Moonlight, not through loco.
package sunshine

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/zclconf/go-cty/cty"

	"github.com/locolan/loco/sdk"
)

// Defaults of the block.
const (
	defaultBinary      = "sunshine"
	defaultBasePort    = 47989 // Sunshine's own default
	defaultDisplayBase = 40
	defaultScreen      = "800x600" // Windows 98's usual mode: QEMU's window fills it 1:1
)

// installHint is what `loco validate` says when Sunshine is missing.
const installHint = "Sunshine is not packaged in Debian. Install LizardByte's build for Debian 12 " +
	"(the sunshine-debian-bookworm-amd64.deb of a release at github.com/LizardByte/Sunshine/releases) " +
	"with apt-get install ./sunshine-debian-bookworm-amd64.deb, or point binary = \"/path/to/sunshine\" at one."

// qemuGTK is the module Debian's QEMU loads for -display gtk.
var qemuGTK = "/usr/lib/x86_64-linux-gnu/qemu/ui-gtk.so"

// Plugin is the stream plugin "sunshine"; New makes one.
type Plugin struct {
	mu      sync.Mutex
	binary  string
	address string
	screen  string
	plans   map[uint32]guestPlan
	running map[uint32]*instance
}

// instance is one guest's running Xvfb and Sunshine.
type instance struct {
	plan     guestPlan
	xvfb     *proc
	sunshine *proc
	api      *api
}

var (
	_ sdk.Stream          = (*Plugin)(nil)
	_ sdk.StreamEndpoints = (*Plugin)(nil)
	_ sdk.StreamPairing   = (*Plugin)(nil)
	_ sdk.StreamWindows   = (*Plugin)(nil)
)

// New returns an unconfigured plugin.
func New() *Plugin { return &Plugin{} }

func (p *Plugin) Info() sdk.Info {
	return sdk.Info{Name: "sunshine", Kind: sdk.KindStream, Version: "1.0.0", Capabilities: []string{sdk.ProtocolMoonlight}}
}

func (p *Plugin) ConfigSchema() sdk.Schema {
	return sdk.Schema{Attributes: []sdk.Attribute{
		sdk.Optional("binary", cty.String, cty.StringVal(defaultBinary), "the Sunshine program: a path, or a name looked up in PATH"),
		sdk.Optional("address", cty.String, cty.StringVal(""), "the address Moonlight clients add; empty: this host's first non-loopback IPv4"),
		sdk.Optional("base_port", cty.Number, cty.NumberIntVal(defaultBasePort), "instance 0's Sunshine port; instance i's is base_port + 100*i (each uses -5..+21 of it)"),
		sdk.Optional("display_base", cty.Number, cty.NumberIntVal(defaultDisplayBase), "instance 0's X display number; instance i's is display_base + i"),
		sdk.Optional("screen", cty.String, cty.StringVal(defaultScreen), "each X display's size, WIDTHxHEIGHT; QEMU's window fills it"),
	}}
}

var screenRE = regexp.MustCompile(`^([1-9][0-9]{2,3})x([1-9][0-9]{2,3})$`)

func (p *Plugin) Configure(_ context.Context, cfg sdk.Config, cluster sdk.Cluster) error {
	var c struct {
		Binary      string `cty:"binary"`
		Address     string `cty:"address"`
		BasePort    int    `cty:"base_port"`
		DisplayBase int    `cty:"display_base"`
		Screen      string `cty:"screen"`
	}
	if err := cfg.Decode(&c); err != nil {
		return err
	}
	var errs []error
	attr := func(name, summary, detail string) {
		errs = append(errs, &sdk.AttrError{Path: []string{name}, Summary: summary, Detail: detail})
	}
	bin, err := exec.LookPath(c.Binary)
	if err != nil {
		attr("binary", "Sunshine is not installed", fmt.Sprintf("%q: %v. %s", c.Binary, err, installHint))
	}
	n := len(cluster.Instances)
	if last := c.BasePort + portStride*max(n-1, 0) + portHigh; c.BasePort+portLow < 1024 || last > 65535 {
		attr("base_port", "Port family out of range", fmt.Sprintf("base_port = %d: %d instances need ports %d..%d; keep them within 1024..65535", c.BasePort, n, c.BasePort+portLow, last))
	}
	if c.DisplayBase < 1 || c.DisplayBase+n > 9999 {
		attr("display_base", "X display out of range", fmt.Sprintf("display_base = %d: displays :%d..:%d must lie within :1..:9999", c.DisplayBase, c.DisplayBase, c.DisplayBase+n-1))
	}
	if !screenRE.MatchString(c.Screen) {
		attr("screen", "Invalid screen size", fmt.Sprintf("screen = %q: write WIDTHxHEIGHT, e.g. \"800x600\"", c.Screen))
	}
	if _, err := exec.LookPath("Xvfb"); err != nil {
		errs = append(errs, fmt.Errorf("Xvfb is not installed (each guest gets an X display of its own): apt-get install xvfb"))
	}
	if _, err := os.Stat(qemuGTK); err != nil {
		errs = append(errs, fmt.Errorf("QEMU's GTK display is not installed (%s; the guest's window on its X display): apt-get install qemu-system-gui", qemuGTK))
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	addr := c.Address
	if addr == "" {
		addr = hostAddress()
	}
	plans := map[uint32]guestPlan{}
	for _, in := range cluster.Instances {
		plans[in.Index] = planFor(in, c.BasePort, c.DisplayBase)
	}
	p.mu.Lock()
	old := p.running
	p.binary, p.address, p.screen, p.plans, p.running = bin, addr, c.Screen, plans, map[uint32]*instance{}
	p.mu.Unlock()
	for _, r := range old {
		r.stop()
	}
	sdk.Logger().Info("configured", "guests", n, "address", addr, "binary", bin)
	return nil
}

func planFor(in sdk.Instance, basePort, displayBase int) guestPlan {
	return guestPlan{Index: in.Index, Name: in.Name, Display: fmt.Sprintf(":%d", displayBase+int(in.Index)),
		BasePort: basePort + portStride*int(in.Index), Dir: filepath.Join(in.StateDir, "sunshine")}
}

// hostAddress is this host's first non-loopback IPv4 address, what a
// Moonlight client on the LAN reaches it at.
func hostAddress() string {
	addrs, _ := net.InterfaceAddrs()
	for _, a := range addrs {
		if ip, ok := a.(*net.IPNet); ok && ip.IP.To4() != nil && !ip.IP.IsLoopback() {
			return ip.IP.String()
		}
	}
	return "127.0.0.1"
}

// Attach brings the guest's X display and Sunshine up before QEMU starts
// (its window needs the display). It adds no QEMU arguments: Window says
// which display, and the core chooses QEMU's display.
func (p *Plugin) Attach(ctx context.Context, in sdk.Instance) ([]string, error) {
	p.mu.Lock()
	g, ok := p.plans[in.Index]
	r := p.running[in.Index]
	bin, screen := p.binary, p.screen
	p.mu.Unlock()
	if !ok {
		if p.plans == nil {
			return nil, fmt.Errorf("the sunshine plugin is not configured yet: %w", sdk.ErrNotReady)
		}
		return nil, fmt.Errorf("instance %d: %w", in.Index, sdk.ErrNoInstance)
	}
	if r != nil {
		return nil, nil
	}
	r, err := startInstance(ctx, g, bin, screen)
	if err != nil {
		return nil, fmt.Errorf("bringing up %s's Sunshine host: %w", in.Name, err)
	}
	p.mu.Lock()
	p.running[in.Index] = r
	p.mu.Unlock()
	return nil, nil
}

// Window: QEMU's window goes on the guest's own X display.
func (p *Plugin) Window(_ context.Context, in sdk.Instance) (sdk.Window, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	g, ok := p.plans[in.Index]
	if !ok {
		return sdk.Window{}, fmt.Errorf("instance %d: %w", in.Index, sdk.ErrNoInstance)
	}
	return sdk.Window{XDisplay: g.Display}, nil
}

func startInstance(ctx context.Context, g guestPlan, bin, screen string) (*instance, error) {
	user, pass, err := writeFiles(g)
	if err != nil {
		return nil, err
	}
	r := &instance{plan: g}
	r.xvfb = &proc{name: "Xvfb " + g.Display, log: g.xvfbLog(),
		// No TCP, no reset when the last client leaves (QEMU restarting
		// must find the same display); an access list of nobody but local
		// users of the socket.
		argv: []string{"Xvfb", g.Display, "-screen", "0", screen + "x24", "-nolisten", "tcp", "-noreset"}}
	r.xvfb.run()
	if err := waitX(ctx, g.displayNum(), 10*time.Second); err != nil {
		r.xvfb.stop()
		return nil, fmt.Errorf("Xvfb %s did not come up (see %s): %w", g.Display, g.xvfbLog(), err)
	}
	// Sunshine keeps its web UI and API credentials in its state file;
	// --creds sets them and exits.
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	creds := exec.CommandContext(cctx, bin, g.conf(), "--creds", user, pass)
	if out, err := creds.CombinedOutput(); err != nil {
		r.xvfb.stop()
		return nil, fmt.Errorf("setting Sunshine's API credentials (%s --creds): %w: %.300s", bin, err, out)
	}
	r.sunshine = &proc{name: "sunshine " + g.Name, log: g.log() + ".out", argv: []string{bin, g.conf()},
		env: []string{"DISPLAY=" + g.Display}}
	r.sunshine.run()
	if r.api, err = newAPI(g, user, pass); err != nil {
		r.stop()
		return nil, err
	}
	sdk.Logger().Info("Sunshine host started", "guest", g.Name, "display", g.Display, "port", g.BasePort)
	return r, nil
}

// waitX waits until the X server of display n accepts connections.
func waitX(ctx context.Context, n string, limit time.Duration) error {
	sock := "/tmp/.X11-unix/X" + n
	deadline := time.Now().Add(limit)
	for {
		var d net.Dialer
		c, err := d.DialContext(ctx, "unix", sock)
		if err == nil {
			c.Close()
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("%s: %w", sock, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (r *instance) stop() {
	if r.sunshine != nil {
		r.sunshine.stop()
	}
	r.xvfb.stop()
}

func (p *Plugin) instance(i uint32) (*instance, string, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.plans == nil {
		return nil, "", fmt.Errorf("the sunshine plugin is not configured yet: %w", sdk.ErrNotReady)
	}
	if _, ok := p.plans[i]; !ok {
		return nil, "", fmt.Errorf("instance %d: %w", i, sdk.ErrNoInstance)
	}
	r := p.running[i]
	if r == nil {
		return nil, "", fmt.Errorf("instance %d is not attached: %w", i, sdk.ErrNotReady)
	}
	return r, p.address, nil
}

// Endpoints: the Moonlight host, with its health from Sunshine's API.
func (p *Plugin) Endpoints(ctx context.Context, i uint32) ([]sdk.Endpoint, error) {
	r, addr, err := p.instance(i)
	if err != nil {
		return nil, err
	}
	ep := sdk.Endpoint{Protocol: sdk.ProtocolMoonlight, Address: addr, Port: r.plan.BasePort, Pairing: true}
	hctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	st, err := r.api.health(hctx)
	if err != nil {
		_, starts, last := r.sunshine.status()
		ep.Status = fmt.Sprintf("%v (started %d times, last exit: %s)", err, starts, orNone(last))
	} else {
		ep.Healthy, ep.Status = true, st
	}
	return []sdk.Endpoint{ep}, nil
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

// Pair forwards the PIN Moonlight shows to the guest's Sunshine.
func (p *Plugin) Pair(ctx context.Context, req sdk.PairRequest) error {
	r, _, err := p.instance(req.Instance)
	if err != nil {
		return err
	}
	name := strings.TrimSpace(req.ClientName)
	if name == "" {
		name = "moonlight"
	}
	return r.api.pair(ctx, req.PIN, name)
}

func (p *Plugin) Offer(context.Context, sdk.OfferRequest) (string, string, error) {
	return "", "", fmt.Errorf("stream \"sunshine\" streams to Moonlight clients, not browsers: %w", sdk.ErrNoWHEP)
}

func (p *Plugin) Hangup(context.Context, string) error {
	return fmt.Errorf("stream \"sunshine\" has no WHEP sessions: %w", sdk.ErrNoWHEP)
}

// Stats: Sunshine's API has no encoder statistics to relay.
func (p *Plugin) Stats(context.Context) ([]sdk.StreamStats, error) {
	return nil, fmt.Errorf("Sunshine reports no encoder statistics through its API: %w", sdk.ErrUnsupported)
}
