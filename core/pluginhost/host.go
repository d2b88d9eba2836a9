package pluginhost

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/hashicorp/go-plugin"
	"github.com/zclconf/go-cty/cty"

	"github.com/locolan/loco/sdk"
	"github.com/locolan/loco/sdk/backoff"
)

// Host runs plugins. Close it to stop them all.
type Host struct {
	log *slog.Logger
	// KillTimeout bounds a plugin's graceful exit before it is SIGKILLed.
	KillTimeout time.Duration
	// StartTimeout bounds the go-plugin handshake.
	StartTimeout time.Duration
	// Dirs are searched for plugins; nil means SearchDirs().
	Dirs []string

	spawn chan func()
	mu    sync.Mutex
	live  []*Plugin
	once  sync.Once
	// sockRoot holds the plugins' sockets (sockets.go).
	sockRoot string
}

// New starts a host.
func New(log *slog.Logger) *Host {
	h := &Host{log: log, KillTimeout: 5 * time.Second, StartTimeout: 15 * time.Second, spawn: make(chan func())}
	go h.spawnLoop()
	sweepSocketDirs()
	return h
}

// spawnLoop starts every plugin from one locked OS thread. Pdeathsig fires
// when the thread that forked the child dies, not the process; Go may retire
// an idle thread, so an unlocked fork could kill plugins at random. This
// thread lives exactly as long as the host.
func (h *Host) spawnLoop() {
	runtime.LockOSThread()
	for f := range h.spawn {
		f()
	}
}

func (h *Host) onSpawnThread(f func()) {
	done := make(chan struct{})
	h.spawn <- func() { f(); close(done) }
	<-done
}

// Close stops every plugin, each bounded by KillTimeout.
func (h *Host) Close() {
	h.once.Do(func() {
		h.mu.Lock()
		live := h.live
		h.live = nil
		h.mu.Unlock()
		var wg sync.WaitGroup
		for _, p := range live {
			wg.Add(1)
			go func() { defer wg.Done(); p.Stop() }()
		}
		wg.Wait()
		close(h.spawn)
		h.mu.Lock()
		if h.sockRoot != "" {
			os.RemoveAll(h.sockRoot)
		}
		h.mu.Unlock()
	})
}

// Plugin is a running plugin. It survives crashes of its process: calls go
// to whichever process currently serves it.
type Plugin struct {
	host      *Host
	Candidate Candidate
	pinSHA    string
	log       *slog.Logger

	mu         sync.Mutex
	client     *plugin.Client
	sockDir    string // the current process's socket directory
	rpc        plugin.ClientProtocol
	sdk        *sdk.Client
	info       sdk.Info
	apiVersion int
	schema     *sdk.Schema
	configured bool
	config     cty.Value
	configTy   cty.Type
	cluster    sdk.Cluster
	attached   map[uint32]attachment
	restarts   int
	stopped    bool
	stop       chan struct{}
	exited     chan struct{}
}

type attachment struct {
	in     sdk.Instance
	args   []string
	window sdk.Window // a stream plugin's window for the guest, if it asks for one
}

// ErrIncompatible marks a plugin that speaks no API version loco speaks.
var ErrIncompatible = errors.New("incompatible plugin API version")

// Start launches a plugin and checks that it is what its file name says.
// pinSHA is the sha256 the binary must have, or "".
func (h *Host) Start(ctx context.Context, cand Candidate, pinSHA string) (*Plugin, error) {
	p := &Plugin{host: h, Candidate: cand, pinSHA: pinSHA, log: h.log.With("plugin", cand.ID()),
		attached: map[uint32]attachment{}, stop: make(chan struct{})}
	if err := p.launch(ctx); err != nil {
		return nil, err
	}
	h.mu.Lock()
	h.live = append(h.live, p)
	h.mu.Unlock()
	go p.watch()
	return p, nil
}

func (p *Plugin) launch(ctx context.Context) error {
	cand := p.Candidate
	var secure *plugin.SecureConfig
	if p.pinSHA != "" {
		sum, err := fileSHA256(cand.Path)
		if err != nil {
			return fmt.Errorf("checking the pinned sha256 of %s: %w", cand.Path, err)
		}
		if sum != p.pinSHA {
			return fmt.Errorf("plugin %s does not match its pin: the file's sha256 is %s, the spec pins %s", cand.Path, sum, p.pinSHA)
		}
		want, _ := hex.DecodeString(p.pinSHA)
		// go-plugin checks again right before exec, narrowing the window
		// in which the file could be swapped.
		secure = &plugin.SecureConfig{Checksum: want, Hash: sha256.New()}
	}
	sockDir, err := p.host.launchSocketDir(cand.ID())
	if err != nil {
		return err
	}
	cmd := exec.Command(cand.Path)
	// go-plugin adds the environment after this.
	cmd.Env = []string{plugin.EnvUnixSocketDir + "=" + sockDir}
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stdout := &firstBytes{}
	client := plugin.NewClient(&plugin.ClientConfig{
		HandshakeConfig:  sdk.Handshake,
		VersionedPlugins: sdk.PluginSets(),
		Cmd:              cmd,
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		AutoMTLS:         true,
		Managed:          true,
		SecureConfig:     secure,
		StartTimeout:     p.host.StartTimeout,
		Logger:           hclogFor(p.host.log, cand.ID()),
		SyncStdout:       stdout,
	})
	failed := func() {
		client.Kill()
		os.RemoveAll(sockDir)
	}
	var rpc plugin.ClientProtocol
	p.host.onSpawnThread(func() { rpc, err = client.Client() })
	if err != nil {
		failed()
		return explainStartError(cand, err)
	}
	raw, err := rpc.Dispense(sdk.PluginName)
	if err != nil {
		failed()
		return fmt.Errorf("plugin %s: opening its service: %w", cand.Path, err)
	}
	sc := raw.(*sdk.Client)
	callCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	info, err := sc.Info(callCtx)
	if err != nil {
		failed()
		return fmt.Errorf("plugin %s: %w", cand.Path, err)
	}
	if info.Kind != cand.Kind || info.Name != cand.Name {
		failed()
		return fmt.Errorf("plugin %s says it is the %s plugin %q, but its file name says %s %q", cand.Path, info.Kind, info.Name, cand.Kind, cand.Name)
	}
	exited := make(chan struct{})
	go func() {
		// go-plugin learns of the exit from its own wait on the process;
		// polling its flag turns that into a channel.
		for !client.Exited() {
			time.Sleep(50 * time.Millisecond)
		}
		close(exited)
	}()
	p.mu.Lock()
	p.client, p.rpc, p.sdk, p.info, p.apiVersion, p.exited, p.sockDir = client, rpc, sc, info, client.NegotiatedVersion(), exited, sockDir
	p.mu.Unlock()
	p.log.Debug("plugin started", "path", cand.Path, "pid", p.PID(), "version", info.Version, "api", p.apiVersion)
	return nil
}

var versionMismatch = regexp.MustCompile(`incompatible API version with plugin\. Plugin version: (\d+), Client versions: \[([\d ]*)\]`)

// explainStartError turns go-plugin's startup errors into sentences about
// the plugin.
func explainStartError(c Candidate, err error) error {
	msg := err.Error()
	if m := versionMismatch.FindStringSubmatch(msg); m != nil {
		return fmt.Errorf("%w: plugin %s speaks plugin API version %s; this loco speaks %s", ErrIncompatible, c.Path, m[1], m[2])
	}
	if r := regexp.MustCompile(`Unrecognized remote plugin message: ?(.*)`).FindStringSubmatch(msg); r != nil {
		return fmt.Errorf("plugin %s wrote %q to stdout before the plugin handshake: plugins must log to stderr only (stdout carries the handshake)", c.Path, firstLine(r[1]))
	}
	return fmt.Errorf("starting plugin %s: %w", c.Path, err)
}

func firstLine(s string) string {
	for i, r := range s {
		if r == '\n' {
			return s[:i]
		}
	}
	return s
}

// firstBytes keeps a little of what a plugin writes to stdout after the
// handshake, so a misbehaving plugin is visible without flooding the log.
type firstBytes struct {
	mu  sync.Mutex
	buf []byte
}

func (f *firstBytes) Write(b []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if room := 4096 - len(f.buf); room > 0 {
		f.buf = append(f.buf, b[:min(room, len(b))]...)
	}
	return len(b), nil
}

func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// Info is what the plugin said about itself.
func (p *Plugin) Info() sdk.Info { p.mu.Lock(); defer p.mu.Unlock(); return p.info }

// APIVersion is the negotiated plugin API version.
func (p *Plugin) APIVersion() int { p.mu.Lock(); defer p.mu.Unlock(); return p.apiVersion }

// Restarts counts how often the plugin was restarted after a crash.
func (p *Plugin) Restarts() int { p.mu.Lock(); defer p.mu.Unlock(); return p.restarts }

// PID is the current plugin process, or 0.
func (p *Plugin) PID() int {
	p.mu.Lock()
	c := p.client
	p.mu.Unlock()
	if c == nil {
		return 0
	}
	if rc := c.ReattachConfig(); rc != nil {
		return rc.Pid
	}
	return 0
}

// Client is the protocol client of the current plugin process. Calls that
// fail while the plugin restarts should be retried by the caller.
func (p *Plugin) Client() *sdk.Client { p.mu.Lock(); defer p.mu.Unlock(); return p.sdk }

// Schema is the plugin's configuration schema (asked once).
func (p *Plugin) Schema(ctx context.Context) (sdk.Schema, error) {
	p.mu.Lock()
	if p.schema != nil {
		s := *p.schema
		p.mu.Unlock()
		return s, nil
	}
	c := p.sdk
	p.mu.Unlock()
	s, err := c.ConfigSchema(ctx)
	if err != nil {
		return sdk.Schema{}, fmt.Errorf("plugin %s: %w", p.Candidate.ID(), err)
	}
	p.mu.Lock()
	p.schema = &s
	p.mu.Unlock()
	return s, nil
}

// Configure sends the plugin its decoded block. When the plugin accepts it,
// the host remembers it and sends it again after a restart.
func (p *Plugin) Configure(ctx context.Context, cfg cty.Value, cluster sdk.Cluster) ([]sdk.Problem, error) {
	s, err := p.Schema(ctx)
	if err != nil {
		return nil, err
	}
	ty := s.ImpliedType()
	problems, err := p.Client().Configure(ctx, cfg, ty, cluster)
	if err != nil {
		return nil, fmt.Errorf("plugin %s: %w", p.Candidate.ID(), err)
	}
	for _, pr := range problems {
		if !pr.Warning {
			return problems, nil
		}
	}
	p.mu.Lock()
	p.configured, p.config, p.configTy, p.cluster = true, cfg, ty, cluster
	p.mu.Unlock()
	return problems, nil
}

// Attach asks the plugin for an instance's QEMU arguments and remembers the
// instance, to attach it again after a restart.
func (p *Plugin) Attach(ctx context.Context, in sdk.Instance) ([]string, error) {
	var (
		args []string
		win  sdk.Window
		err  error
	)
	if p.Candidate.Kind == sdk.KindStream {
		args, win, err = p.Client().AttachStream(ctx, in)
	} else {
		args, err = p.Client().Attach(ctx, p.Candidate.Kind, in)
	}
	if err != nil {
		return nil, err
	}
	p.mu.Lock()
	p.attached[in.Index] = attachment{in: in, args: args, window: win}
	p.mu.Unlock()
	return args, nil
}

// Window is the window a stream plugin asked for at the instance's Attach
// (zero when none).
func (p *Plugin) Window(index uint32) sdk.Window {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.attached[index].window
}

// Stop ends the plugin: gracefully if it lets go within KillTimeout, else
// with SIGKILL.
func (p *Plugin) Stop() {
	p.mu.Lock()
	if p.stopped {
		p.mu.Unlock()
		return
	}
	p.stopped = true
	close(p.stop)
	c, dir := p.client, p.sockDir
	p.mu.Unlock()
	p.host.kill(c)
	os.RemoveAll(dir)
}

func (h *Host) kill(c *plugin.Client) {
	if c == nil {
		return
	}
	pid := 0
	if rc := c.ReattachConfig(); rc != nil {
		pid = rc.Pid
	}
	done := make(chan struct{})
	go func() { c.Kill(); close(done) }()
	select {
	case <-done:
	case <-time.After(h.KillTimeout):
		if pid > 0 {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		<-done
	}
}

// Backoff between restarts of a crashing plugin: the first restart is
// immediate, then it doubles up to the cap. A plugin that stays up for
// healthyAfter starts from the beginning again.
const (
	firstBackoff = 250 * time.Millisecond
	maxBackoff   = 10 * time.Second
	healthyAfter = 30 * time.Second
	pingEvery    = 2 * time.Second
)

// watch restarts the plugin whenever its process dies or stops answering.
func (p *Plugin) watch() {
	backoff := &backoff.Backoff{First: firstBackoff, Max: maxBackoff, Immediate: true}
	for {
		p.mu.Lock()
		exited, rpc := p.exited, p.rpc
		p.mu.Unlock()
		started := time.Now()
		ping := time.NewTicker(pingEvery)
		reason := ""
		for reason == "" {
			select {
			case <-p.stop:
				ping.Stop()
				return
			case <-exited:
				reason = "plugin process exited"
			case <-ping.C:
				if err := rpc.Ping(); err != nil {
					reason = "plugin stopped answering pings: " + err.Error()
				}
			}
		}
		ping.Stop()
		if time.Since(started) > healthyAfter {
			backoff.Reset()
		}
		p.log.Warn("plugin failed; restarting", "reason", reason, "backoff", backoff.Peek())
		for {
			select {
			case <-p.stop:
				return
			case <-time.After(backoff.Next()):
			}
			p.mu.Lock()
			old, oldDir := p.client, p.sockDir
			p.mu.Unlock()
			p.host.kill(old) // reap what is left of the old process
			os.RemoveAll(oldDir)
			if err := p.restart(); err != nil {
				p.log.Error("plugin restart failed", "err", err, "next_try_in", backoff.Peek())
				continue
			}
			break
		}
	}
}

// restart launches a new process and brings it to the state the old one
// had: same configuration, same instances attached.
func (p *Plugin) restart() error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := p.launch(ctx); err != nil {
		return err
	}
	p.mu.Lock()
	p.restarts++
	configured, cfg, ty, cluster := p.configured, p.config, p.configTy, p.cluster
	attached := make([]attachment, 0, len(p.attached))
	for _, a := range p.attached {
		attached = append(attached, a)
	}
	c := p.sdk
	p.mu.Unlock()
	if configured {
		problems, err := c.Configure(ctx, cfg, ty, cluster)
		if err != nil {
			return fmt.Errorf("re-sending configuration: %w", err)
		}
		for _, pr := range problems {
			if !pr.Warning {
				return fmt.Errorf("plugin rejected the configuration it accepted before: %s", pr.Summary)
			}
		}
	}
	for _, a := range attached {
		args, err := c.Attach(ctx, p.Candidate.Kind, a.in)
		if err != nil {
			return fmt.Errorf("re-attaching instance %d: %w", a.in.Index, err)
		}
		if !slices.Equal(args, a.args) {
			// The guest runs with the old arguments; only a guest restart
			// would pick these up. A plugin should derive them from state.
			p.log.Warn("plugin gave an instance new QEMU arguments after a restart", "instance", a.in.Index, "old", a.args, "new", args)
		}
	}
	p.log.Info("plugin restarted and state re-sent", "pid", p.PID(), "instances", len(attached))
	return nil
}

// socketPath is where the current plugin process listens (for tests).
func (p *Plugin) socketPath() string {
	p.mu.Lock()
	c := p.client
	p.mu.Unlock()
	if c == nil || c.ReattachConfig() == nil {
		return ""
	}
	return c.ReattachConfig().Addr.String()
}
