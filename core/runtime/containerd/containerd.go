// Package containerd is the runtime driver that runs each guest's QEMU as a
// containerd task: one container per guest, labelled with its cluster, index
// and state directory, from loco's skeleton image with the host's /usr
// bound read-only. Tasks live in containerd's shims, so they outlive both
// loco and a containerd restart; the driver finds them again by container ID
// and the guest's name over QMP.
package containerd

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	containerd "github.com/containerd/containerd"
	"github.com/containerd/containerd/cio"
	"github.com/containerd/containerd/errdefs"
	"github.com/containerd/containerd/namespaces"
	"github.com/containerd/containerd/oci"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/locolan/loco/core/plan"
	"github.com/locolan/loco/core/qemu"
	"github.com/locolan/loco/core/runtime"
	"github.com/locolan/loco/core/spec"
	"github.com/locolan/loco/internal/proc"
	"github.com/locolan/loco/sdk/qmp"
)

// Defaults of the runtime block's attributes.
const (
	DefaultAddress     = spec.DefaultContainerdAddress
	DefaultNamespace   = spec.DefaultContainerdNamespace
	DefaultSnapshotter = "overlayfs"
)

// Labels on every guest container.
const (
	LabelCluster = "loco.cluster"
	LabelIndex   = "loco.index"
	LabelGuest   = "loco.guest"
	LabelDir     = "loco.dir"
	labelStarted = "loco.started"
)

// Config says which containerd to use and how.
type Config struct {
	Address     string // containerd's gRPC socket
	Namespace   string // containerd namespace the guests live in
	Snapshotter string
	Cluster     string // for the containers' labels
}

func (c Config) withDefaults() Config {
	if c.Address == "" {
		c.Address = DefaultAddress
	}
	if c.Namespace == "" {
		c.Namespace = DefaultNamespace
	}
	if c.Snapshotter == "" {
		c.Snapshotter = DefaultSnapshotter
	}
	return c
}

// Driver runs guests as containerd tasks.
type Driver struct {
	Log *slog.Logger
	Config
	// QEMUImg makes the overlays, on the host; "" for "qemu-img".
	QEMUImg string
	// ReadyTimeout bounds how long a new QEMU gets to open its QMP socket.
	ReadyTimeout time.Duration

	mu     sync.Mutex
	client *containerd.Client
	image  containerd.Image
}

// New makes a containerd driver. It connects on first use.
func New(log *slog.Logger, cfg Config) *Driver {
	return &Driver{Log: log, Config: cfg.withDefaults(), QEMUImg: "qemu-img", ReadyTimeout: 20 * time.Second}
}

var _ runtime.Runtime = (*Driver)(nil)

// ErrNotRunning says nothing answers on the containerd socket.
var ErrNotRunning = errors.New("containerd is not running")

// Check says whether containerd answers on address, in words an operator
// can act on: no daemon (and how to start one), or no access to its socket.
func Check(ctx context.Context, address string) error {
	if address == "" {
		address = DefaultAddress
	}
	how := "start it with `systemctl start containerd`, or run `containerd --config FILE` as root, " +
		"or point runtime \"containerd\" { address = ... } at the socket it listens on"
	st, err := os.Stat(address)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return fmt.Errorf("%w: no socket at %s: %s", ErrNotRunning, address, how)
	case errors.Is(err, os.ErrPermission):
		return fmt.Errorf("cannot reach containerd's socket %s: permission denied: run loco as root or give your user access to that directory: %w", address, err)
	case err != nil:
		return fmt.Errorf("checking containerd's socket %s: %w", address, err)
	case st.Mode()&os.ModeSocket == 0:
		return fmt.Errorf("%s is not a socket (runtime \"containerd\" address)", address)
	}
	var dialer net.Dialer
	dctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	conn, err := dialer.DialContext(dctx, "unix", address)
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Errorf("%w: %s is left from a containerd that has stopped: %s", ErrNotRunning, address, how)
	case errors.Is(err, syscall.EACCES):
		return fmt.Errorf("cannot connect to containerd at %s: permission denied: run loco as root or give your user access to the socket: %w", address, err)
	case err != nil:
		return fmt.Errorf("connecting to containerd at %s: %w", address, err)
	}
	conn.Close()
	return nil
}

// connect returns the driver's client, dialling the first time.
func (d *Driver) connect(ctx context.Context) (*containerd.Client, context.Context, error) {
	ctx = namespaces.WithNamespace(ctx, d.Namespace)
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.client != nil {
		return d.client, ctx, nil
	}
	if err := Check(ctx, d.Address); err != nil {
		return nil, ctx, err
	}
	c, err := containerd.New(d.Address, containerd.WithDefaultNamespace(d.Namespace), containerd.WithTimeout(5*time.Second))
	if err != nil {
		return nil, ctx, fmt.Errorf("connecting to containerd at %s: %w", d.Address, err)
	}
	d.client = c
	return c, ctx, nil
}

// Close drops the connection to containerd; guests keep running.
func (d *Driver) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.client == nil {
		return nil
	}
	err := d.client.Close()
	d.client, d.image = nil, nil
	return err
}

// EnsureImage imports loco's image into the namespace and unpacks it for the
// snapshotter, unless that is done already. It returns the image.
func (d *Driver) EnsureImage(ctx context.Context) (containerd.Image, error) {
	c, ctx, err := d.connect(ctx)
	if err != nil {
		return nil, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.image != nil {
		return d.image, nil
	}
	archive, want, err := skeleton()
	if err != nil {
		return nil, err
	}
	img, err := c.GetImage(ctx, ImageName)
	if err != nil || img.Target().Digest.String() != want {
		if err != nil && !errdefs.IsNotFound(err) {
			return nil, fmt.Errorf("looking up image %s: %w", ImageName, err)
		}
		imgs, err := c.Import(ctx, bytes.NewReader(archive))
		if err != nil {
			return nil, fmt.Errorf("importing image %s into containerd: %w", ImageName, err)
		}
		if len(imgs) != 1 {
			return nil, fmt.Errorf("importing image %s: containerd made %d images of it", ImageName, len(imgs))
		}
		img = containerd.NewImage(c, imgs[0])
		d.Log.Info("imported the guest image into containerd", "image", ImageName, "digest", want, "namespace", d.Namespace)
	}
	ok, err := img.IsUnpacked(ctx, d.Snapshotter)
	if err != nil {
		return nil, fmt.Errorf("checking image %s on snapshotter %s: %w", ImageName, d.Snapshotter, err)
	}
	if !ok {
		if err := img.Unpack(ctx, d.Snapshotter); err != nil {
			return nil, fmt.Errorf("unpacking image %s for snapshotter %s: %w", ImageName, d.Snapshotter, err)
		}
	}
	d.image = img
	return img, nil
}

// ContainerID is the guest's container: its name and a hash of its
// directory, so two clusters that both have a guest "demo-0" never share one.
func ContainerID(pg plan.Guest) string {
	h := sha256.Sum256([]byte(pg.Dir))
	return pg.Name + "-" + hex.EncodeToString(h[:4])
}

type guest struct {
	id         string
	qmp        string
	pid        int
	started    time.Time
	reattached bool
	exited     chan struct{}
	mu         sync.Mutex
	reason     string
}

func (g *guest) PID() int                { return g.pid }
func (g *guest) Started() time.Time      { return g.started }
func (g *guest) Exited() <-chan struct{} { return g.exited }
func (g *guest) Reattached() bool        { return g.reattached }
func (g *guest) ExitReason() string      { g.mu.Lock(); defer g.mu.Unlock(); return g.reason }

// Start boots the guest in a new container.
func (d *Driver) Start(ctx context.Context, pg plan.Guest) (runtime.Guest, error) {
	c, nctx, err := d.connect(ctx)
	if err != nil {
		return nil, fmt.Errorf("starting guest %s: %w", pg.Name, err)
	}
	img, err := d.EnsureImage(ctx)
	if err != nil {
		return nil, fmt.Errorf("starting guest %s: %w", pg.Name, err)
	}
	if err := os.MkdirAll(pg.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("creating the directory of guest %s: %w", pg.Name, err)
	}
	if pg.Overlay != "" {
		created, err := qemu.EnsureOverlay(ctx, d.QEMUImg, pg.BaseDisk, pg.Overlay)
		if err != nil {
			return nil, fmt.Errorf("preparing the disk of guest %s: %w", pg.Name, err)
		}
		if created {
			d.Log.Info("created disk overlay", "guest", pg.Name, "overlay", pg.Overlay, "base", pg.BaseDisk)
		}
	}
	// Sockets left by a guest that died would make QEMU fail to bind.
	for _, s := range []string{pg.QMPSocket, pg.InputQMPSocket, pg.ConsoleSocket, strings.TrimPrefix(pg.VNC, "unix:")} {
		if err := os.Remove(s); err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("removing stale socket %s: %w", s, err)
		}
	}
	id := ContainerID(pg)
	if err := d.removeStale(nctx, c, id); err != nil {
		return nil, fmt.Errorf("starting guest %s: %w", pg.Name, err)
	}
	logPath := filepath.Join(pg.Dir, "qemu.log")
	if err := appendLine(logPath, fmt.Sprintf("--- %s starting %s (containerd %s/%s)", time.Now().Format(time.RFC3339), pg.Name, d.Namespace, id)); err != nil {
		return nil, err
	}
	started := time.Now()
	labels := map[string]string{LabelCluster: d.Cluster, LabelIndex: strconv.Itoa(pg.Index), LabelGuest: pg.Name,
		LabelDir: pg.Dir, labelStarted: started.Format(time.RFC3339Nano)}
	ctr, err := c.NewContainer(nctx, id,
		containerd.WithImage(img),
		containerd.WithSnapshotter(d.Snapshotter),
		containerd.WithNewSnapshot(id, img),
		containerd.WithNewSpec(d.specOpts(pg)...),
		containerd.WithContainerLabels(labels))
	if err != nil {
		return nil, fmt.Errorf("creating the container of guest %s: %w", pg.Name, err)
	}
	task, err := ctr.NewTask(nctx, cio.LogFile(logPath))
	if err != nil {
		ctr.Delete(context.WithoutCancel(nctx), containerd.WithSnapshotCleanup)
		return nil, fmt.Errorf("creating the task of guest %s: %w%s", pg.Name, err, logTail(logPath))
	}
	// Wait before Start: an exit between the two would otherwise be missed.
	exitCh, err := task.Wait(context.WithoutCancel(nctx))
	if err != nil {
		task.Delete(context.WithoutCancel(nctx), containerd.WithProcessKill)
		ctr.Delete(context.WithoutCancel(nctx), containerd.WithSnapshotCleanup)
		return nil, fmt.Errorf("watching the task of guest %s: %w", pg.Name, err)
	}
	if err := task.Start(nctx); err != nil {
		task.Delete(context.WithoutCancel(nctx), containerd.WithProcessKill)
		ctr.Delete(context.WithoutCancel(nctx), containerd.WithSnapshotCleanup)
		return nil, fmt.Errorf("starting the task of guest %s: %w%s", pg.Name, err, logTail(logPath))
	}
	g := &guest{id: id, qmp: pg.QMPSocket, pid: int(task.Pid()), started: started, exited: make(chan struct{})}
	go d.watch(g, ctr, exitCh)
	if err := d.waitQMP(ctx, pg, g); err != nil {
		task.Kill(context.WithoutCancel(nctx), syscall.SIGKILL)
		<-g.exited
		return nil, fmt.Errorf("guest %s did not come up: %w%s", pg.Name, err, logTail(logPath))
	}
	d.Log.Info("guest started", "guest", pg.Name, "pid", g.pid, "container", id, "namespace", d.Namespace)
	return g, nil
}

// removeStale deletes a container left by a guest that is no longer
// running (its QEMU died while nobody watched). A running one is an error.
func (d *Driver) removeStale(ctx context.Context, c *containerd.Client, id string) error {
	ctr, err := c.LoadContainer(ctx, id)
	if errdefs.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("looking up container %s: %w", id, err)
	}
	if task, err := ctr.Task(ctx, nil); err == nil {
		st, err := task.Status(ctx)
		if err == nil && st.Status == containerd.Running {
			return fmt.Errorf("container %s already runs a task (pid %d)", id, task.Pid())
		}
		if _, err := task.Delete(ctx, containerd.WithProcessKill); err != nil && !errdefs.IsNotFound(err) {
			return fmt.Errorf("deleting the old task of container %s: %w", id, err)
		}
	}
	if err := ctr.Delete(ctx, containerd.WithSnapshotCleanup); err != nil && !errdefs.IsNotFound(err) {
		return fmt.Errorf("deleting old container %s: %w", id, err)
	}
	d.Log.Info("removed the container of a guest that had died", "container", id)
	return nil
}

// specOpts make the guest's OCI spec: QEMU with the plan's argv, the host's
// /usr read-only, the guest's directory read-write at the same path (so the
// argv needs no rewriting), every other host path the argv names bound too,
// and no host network: guests reach the LAN through unix sockets.
func (d *Driver) specOpts(pg plan.Guest) []oci.SpecOpts {
	mounts := []specs.Mount{{Destination: "/usr", Type: "bind", Source: "/usr", Options: []string{"rbind", "ro", "nosuid", "nodev"}}}
	for _, m := range hostMounts(pg) {
		opts := []string{"rbind", "nosuid", "nodev"}
		if m.rw {
			opts = append(opts, "rw")
		} else {
			opts = append(opts, "ro")
		}
		mounts = append(mounts, specs.Mount{Destination: m.path, Type: "bind", Source: m.path, Options: opts})
	}
	opts := []oci.SpecOpts{
		oci.WithDefaultPathEnv,
		oci.WithProcessArgs(append([]string{pg.Program}, pg.Args...)...),
		oci.WithProcessCwd(pg.Dir),
		oci.WithHostname(pg.Name),
		oci.WithRootFSReadonly(),
		oci.WithMounts(mounts),
	}
	// Only when it is there: the device must exist to be added. It also
	// adds the cgroup rule, without which opening it fails with EPERM.
	if st, err := os.Stat("/dev/kvm"); err == nil && st.Mode()&os.ModeDevice != 0 {
		opts = append(opts, oci.WithLinuxDevice("/dev/kvm", "rwm"))
	}
	return opts
}

type hostMount struct {
	path string
	rw   bool
}

// hostMounts are the host paths the guest's QEMU uses: its directory
// (read-write), the base disk (read-only), and each absolute path in the
// argv (option values such as path=/x too). A directory that holds a socket
// or a file QEMU creates is bound read-write, as a directory, so a plugin
// that re-creates its socket is still reached; other files are bound
// read-only.
func hostMounts(pg plan.Guest) []hostMount {
	var out []hostMount
	covered := func(p string) bool {
		for _, m := range out {
			if p == m.path || strings.HasPrefix(p, m.path+"/") {
				return true
			}
		}
		return p == "/usr" || strings.HasPrefix(p, "/usr/")
	}
	out = append(out, hostMount{path: filepath.Clean(pg.Dir), rw: true})
	var files []string
	var dirs []string
	for i, arg := range pg.Args {
		if i > 0 && pg.Args[i-1] == "-append" {
			continue // the guest kernel's command line: its paths are the guest's
		}
		for _, piece := range strings.Split(arg, ",") {
			if i := strings.IndexByte(piece, '='); i >= 0 {
				piece = piece[i+1:]
			}
			piece = strings.TrimPrefix(piece, "unix:")
			if !strings.HasPrefix(piece, "/") {
				continue
			}
			p := filepath.Clean(piece)
			if p == "/" || strings.HasPrefix(p, "/dev/") || strings.HasPrefix(p, "/proc/") || strings.HasPrefix(p, "/sys/") {
				continue // the container has its own
			}
			st, err := os.Stat(p)
			switch {
			case err != nil:
				// Something QEMU creates (a socket, a log): its directory.
				if _, err := os.Stat(filepath.Dir(p)); err == nil {
					dirs = append(dirs, filepath.Dir(p))
				}
			case st.Mode()&os.ModeSocket != 0, st.Mode()&os.ModeNamedPipe != 0:
				dirs = append(dirs, filepath.Dir(p))
			case st.IsDir():
				dirs = append(dirs, p)
			default:
				files = append(files, p)
			}
		}
	}
	if pg.BaseDisk != "" {
		files = append(files, filepath.Clean(pg.BaseDisk))
	}
	slices.Sort(dirs)
	for _, p := range slices.Compact(dirs) {
		if !covered(p) {
			out = append(out, hostMount{path: p, rw: true})
		}
	}
	slices.Sort(files)
	for _, p := range slices.Compact(files) {
		if !covered(p) {
			out = append(out, hostMount{path: p})
		}
	}
	return out
}

// watch closes g.exited once the task is gone, and deletes its task and
// container, so nothing of a dead guest is left in containerd. If the
// connection to containerd breaks (containerd restarted), the task lives
// on in its shim: watch reloads it and waits again.
func (d *Driver) watch(g *guest, ctr containerd.Container, exitCh <-chan containerd.ExitStatus) {
	ctx := namespaces.WithNamespace(context.Background(), d.Namespace)
	reason := ""
	for reason == "" {
		st := <-exitCh
		if st.Error() == nil {
			reason = exitReason(st.ExitCode())
			break
		}
		d.Log.Warn("lost containerd while watching a guest; reconnecting", "container", g.id, "err", st.Error())
		for {
			time.Sleep(250 * time.Millisecond)
			if !proc.Alive(g.pid) {
				// QEMU is gone while containerd is away: report it now (a
				// Stop waits for it); the next Start or Find removes the
				// container if the cleanup below cannot.
				reason = "exited while containerd was unreachable"
				break
			}
			task, err := ctr.Task(ctx, nil)
			if errdefs.IsNotFound(err) {
				reason = "its containerd task is gone"
				break
			}
			if err != nil {
				continue // containerd is not back yet
			}
			ts, err := task.Status(ctx)
			if err != nil {
				continue
			}
			if ts.Status == containerd.Stopped {
				reason = exitReason(ts.ExitStatus)
				break
			}
			if exitCh, err = task.Wait(ctx); err != nil {
				continue
			}
			d.Log.Info("reconnected to containerd; guest still running", "container", g.id, "pid", g.pid)
			break
		}
	}
	wait := 30 * time.Second
	if !proc.Alive(g.pid) && ctx.Err() == nil {
		if _, err := ctr.Info(ctx); err != nil {
			wait = 2 * time.Second // containerd is away: do not hold the exit back
		}
	}
	d.cleanup(ctx, ctr, wait)
	g.mu.Lock()
	g.reason = reason
	g.mu.Unlock()
	close(g.exited)
}

func exitReason(code uint32) string {
	if code > 128 && code < 128+65 {
		return fmt.Sprintf("killed by signal %d (exit status %d)", code-128, code)
	}
	return fmt.Sprintf("exited with status %d", code)
}

// cleanup deletes a stopped task and its container with its snapshot.
func (d *Driver) cleanup(ctx context.Context, ctr containerd.Container, wait time.Duration) {
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	for {
		err := d.deleteContainer(ctx, ctr)
		if err == nil {
			return
		}
		if ctx.Err() != nil {
			d.Log.Warn("could not delete the container of a stopped guest", "container", ctr.ID(), "err", err)
			return
		}
		time.Sleep(250 * time.Millisecond)
	}
}

func (d *Driver) deleteContainer(ctx context.Context, ctr containerd.Container) error {
	if task, err := ctr.Task(ctx, nil); err == nil {
		if _, err := task.Delete(ctx); err != nil && !errdefs.IsNotFound(err) {
			return err
		}
	} else if !errdefs.IsNotFound(err) {
		return err
	}
	if err := ctr.Delete(ctx, containerd.WithSnapshotCleanup); err != nil && !errdefs.IsNotFound(err) {
		return err
	}
	return nil
}

// removeDead deletes the container of a guest whose QEMU died while no
// loco watched it, so that a stop leaves nothing behind either way.
func (d *Driver) removeDead(ctx context.Context, ctr containerd.Container) error {
	if err := d.deleteContainer(ctx, ctr); err != nil {
		return fmt.Errorf("deleting the container of a guest that had died, %s: %w", ctr.ID(), err)
	}
	d.Log.Info("removed the container of a guest that had died", "container", ctr.ID())
	return nil
}

// waitQMP waits until the guest's QMP answers with the guest's name: then
// QEMU has parsed its command line and opened every socket.
func (d *Driver) waitQMP(ctx context.Context, pg plan.Guest, g *guest) error {
	ctx, cancel := context.WithTimeout(ctx, d.ReadyTimeout)
	defer cancel()
	var lastErr error
	for {
		select {
		case <-g.exited:
			return fmt.Errorf("QEMU exited: %s", g.ExitReason())
		case <-ctx.Done():
			return fmt.Errorf("QMP did not answer within %v: %w", d.ReadyTimeout, errors.Join(ctx.Err(), lastErr))
		case <-time.After(50 * time.Millisecond):
		}
		if err := checkIdentity(ctx, pg); err != nil {
			lastErr = err
			continue
		}
		return nil
	}
}

func checkIdentity(ctx context.Context, pg plan.Guest) error {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	c, err := qmp.Dial(ctx, pg.QMPSocket)
	if err != nil {
		return err
	}
	defer c.Close()
	name, err := c.Name(ctx)
	if err != nil {
		return err
	}
	if name != pg.Name {
		return fmt.Errorf("the QEMU on %s is guest %q, not %q", pg.QMPSocket, name, pg.Name)
	}
	return nil
}

// Find reattaches to the guest's running task: its container must carry
// the guest's labels and its QMP must answer with the guest's name.
func (d *Driver) Find(ctx context.Context, pg plan.Guest) (runtime.Guest, bool, error) {
	c, nctx, err := d.connect(ctx)
	if err != nil {
		return nil, false, fmt.Errorf("looking for guest %s: %w", pg.Name, err)
	}
	id := ContainerID(pg)
	ctr, err := c.LoadContainer(nctx, id)
	if errdefs.IsNotFound(err) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("looking up container %s: %w", id, err)
	}
	labels, err := ctr.Labels(nctx)
	if err != nil {
		return nil, false, fmt.Errorf("reading the labels of container %s: %w", id, err)
	}
	if labels[LabelGuest] != pg.Name || labels[LabelDir] != pg.Dir {
		return nil, false, nil
	}
	// No IO: re-attaching to a file:// log URI fails (containerd #6422),
	// and the shim keeps writing the log anyway.
	task, err := ctr.Task(nctx, nil)
	if errdefs.IsNotFound(err) {
		return nil, false, d.removeDead(nctx, ctr)
	}
	if err != nil {
		return nil, false, fmt.Errorf("loading the task of container %s: %w", id, err)
	}
	st, err := task.Status(nctx)
	if err != nil {
		return nil, false, fmt.Errorf("reading the status of container %s: %w", id, err)
	}
	if st.Status == containerd.Stopped {
		return nil, false, d.removeDead(nctx, ctr)
	}
	if st.Status != containerd.Running {
		return nil, false, nil
	}
	if err := checkIdentity(ctx, pg); err != nil {
		d.Log.Warn("the guest's container runs but its QMP does not confirm it; not reattaching",
			"guest", pg.Name, "container", id, "err", err)
		return nil, false, nil
	}
	if spec, err := ctr.Spec(nctx); err == nil && spec.Process != nil && !slices.Equal(spec.Process.Args[1:], pg.Args) {
		d.Log.Warn("running guest was started with another command line; restart it to apply the new spec", "guest", pg.Name)
	}
	exitCh, err := task.Wait(context.WithoutCancel(nctx))
	if err != nil {
		return nil, false, fmt.Errorf("watching the task of container %s: %w", id, err)
	}
	started, _ := time.Parse(time.RFC3339Nano, labels[labelStarted])
	g := &guest{id: id, qmp: pg.QMPSocket, pid: int(task.Pid()), started: started, reattached: true, exited: make(chan struct{})}
	go d.watch(g, ctr, exitCh)
	d.Log.Info("reattached to running guest", "guest", pg.Name, "pid", g.pid, "container", id)
	return g, true, nil
}

// Stop powers the guest down: power button, grace, quit, then SIGKILL
// through containerd (or directly, if containerd is away). It returns once
// the task and its container are deleted.
func (d *Driver) Stop(ctx context.Context, rg runtime.Guest, grace time.Duration) error {
	g := rg.(*guest)
	step := func(name string, f func(c *qmp.Client) error) {
		cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		defer cancel()
		c, err := qmp.Dial(cctx, g.qmp)
		if err != nil {
			d.Log.Debug("QMP not reachable for "+name, "container", g.id, "err", err)
			return
		}
		defer c.Close()
		if err := f(c); err != nil {
			d.Log.Debug(name+" failed", "container", g.id, "err", err)
		}
	}
	wait := func(t time.Duration) bool {
		select {
		case <-g.exited:
			return true
		case <-time.After(t):
			return false
		case <-ctx.Done():
			return false
		}
	}
	if grace > 0 {
		step("system_powerdown", func(c *qmp.Client) error { return c.Powerdown(ctx) })
		if wait(grace) {
			return nil
		}
	}
	step("quit", func(c *qmp.Client) error { return c.Quit(ctx) })
	if wait(5 * time.Second) {
		return nil
	}
	d.Log.Warn("guest ignored quit; killing it", "container", g.id, "pid", g.pid)
	killed := false
	if c, nctx, err := d.connect(ctx); err == nil {
		if ctr, err := c.LoadContainer(nctx, g.id); err == nil {
			if task, err := ctr.Task(nctx, nil); err == nil && task.Kill(nctx, syscall.SIGKILL) == nil {
				killed = true
			}
		}
	}
	if !killed {
		_ = syscall.Kill(g.pid, syscall.SIGKILL)
	}
	// The watcher deletes task and container before it reports the exit.
	select {
	case <-g.exited:
		return nil
	case <-time.After(40 * time.Second):
		return fmt.Errorf("guest %s (pid %d) is still there after SIGKILL", g.id, g.pid)
	}
}

// Destroy deletes the guest's overlay, and a leftover container of it.
func (d *Driver) Destroy(ctx context.Context, pg plan.Guest) error {
	c, nctx, err := d.connect(ctx)
	if err != nil {
		return fmt.Errorf("destroying guest %s: %w", pg.Name, err)
	}
	id := ContainerID(pg)
	if ctr, err := c.LoadContainer(nctx, id); err == nil {
		if task, err := ctr.Task(nctx, nil); err == nil {
			if st, err := task.Status(nctx); err == nil && st.Status == containerd.Running {
				return fmt.Errorf("guest %s is running (container %s, pid %d): stop it first", pg.Name, id, task.Pid())
			}
		}
		if err := d.deleteContainer(nctx, ctr); err != nil {
			return fmt.Errorf("deleting container %s: %w", id, err)
		}
	} else if !errdefs.IsNotFound(err) {
		return fmt.Errorf("looking up container %s: %w", id, err)
	}
	if pg.Overlay == "" {
		return nil
	}
	if err := os.Remove(pg.Overlay); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("removing the overlay of guest %s: %w", pg.Name, err)
	}
	d.Log.Info("removed disk overlay", "guest", pg.Name, "overlay", pg.Overlay)
	return nil
}

// GuestStatus is a guest as containerd sees it, for `loco status`.
type GuestStatus struct {
	Container string
	PID       int
	Started   time.Time
	Running   bool
	Image     string // name@digest of the container's image
}

// Status asks containerd about a guest without reattaching.
func (d *Driver) Status(ctx context.Context, pg plan.Guest) (GuestStatus, error) {
	gs := GuestStatus{Container: ContainerID(pg)}
	c, nctx, err := d.connect(ctx)
	if err != nil {
		return gs, err
	}
	ctr, err := c.LoadContainer(nctx, gs.Container)
	if errdefs.IsNotFound(err) {
		return gs, nil
	}
	if err != nil {
		return gs, fmt.Errorf("looking up container %s: %w", gs.Container, err)
	}
	info, err := ctr.Info(nctx)
	if err != nil {
		return gs, fmt.Errorf("reading container %s: %w", gs.Container, err)
	}
	if info.Labels[LabelDir] != pg.Dir {
		return GuestStatus{Container: gs.Container}, nil
	}
	gs.Started, _ = time.Parse(time.RFC3339Nano, info.Labels[labelStarted])
	if img, err := ctr.Image(nctx); err == nil {
		gs.Image = img.Name() + "@" + img.Target().Digest.String()
	}
	task, err := ctr.Task(nctx, nil)
	if err != nil {
		return gs, nil
	}
	gs.PID = int(task.Pid())
	if st, err := task.Status(nctx); err == nil && st.Status == containerd.Running && proc.Alive(gs.PID) {
		gs.Running = true
	}
	return gs, nil
}

func appendLine(path, line string) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("opening %s: %w", path, err)
	}
	defer f.Close()
	if _, err := fmt.Fprintln(f, line); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}

func logTail(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.Size() > 2048 {
		f.Seek(-2048, io.SeekEnd)
	}
	b, _ := io.ReadAll(f)
	s := strings.TrimSpace(string(b))
	if s == "" {
		return ""
	}
	return "\nQEMU said:\n" + s
}
