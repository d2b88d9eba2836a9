package cluster

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/locolan/loco/core/plan"
	"github.com/locolan/loco/core/qemu"
	"github.com/locolan/loco/core/runtime/process"
	"github.com/locolan/loco/sdk/qmp"
)

// Snapshots. A snapshot NAME of a cluster is, per guest, an internal qcow2
// snapshot tagged NAME in that guest's own overlay (RAM, devices and disk),
// plus a record <state_dir>/snapshots/NAME.json saying what it was saved
// against: per guest its name, MAC, hardware profile and the identity of the
// image files. A guest is only ever restored from its own overlay, so one
// guest's state can never land in another.

// Snapshot is the record of a saved snapshot.
type Snapshot struct {
	Name    string          `json:"name"`
	Cluster string          `json:"cluster"`
	Created time.Time       `json:"created"`
	Guests  []SnapshotGuest `json:"guests"`
}

// SnapshotGuest is one guest's part of a snapshot.
type SnapshotGuest struct {
	Index   int    `json:"index"`
	Name    string `json:"name"`
	MAC     string `json:"mac"`
	Overlay string `json:"overlay"`
	// Image is the identity of the files the guest booted from.
	Image []FileIdentity `json:"image"`
	// Profile is qemu.HardwareProfile of the guest's command line.
	Profile     []string      `json:"profile"`
	VMStateSize int64         `json:"vm_state_size"`
	SaveTime    time.Duration `json:"save_time_ns"`
}

// FileIdentity tells whether an image file is still the one a snapshot was
// saved against without reading all of a multi-GiB disk: its size, its
// modification time and a hash of its first and last MiB (the partition
// table, the FAT and the qcow2 header and tables live there).
type FileIdentity struct {
	Role    string    `json:"role"` // "disk", "kernel" or "initrd"
	Path    string    `json:"path"`
	Size    int64     `json:"size"`
	ModTime time.Time `json:"mod_time"`
	Sample  string    `json:"sample_sha256"`
}

const sampleBytes = 1 << 20

func identify(role, path string) (FileIdentity, error) {
	f, err := os.Open(path)
	if err != nil {
		return FileIdentity{}, fmt.Errorf("identifying the image's %s: %w", role, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return FileIdentity{}, fmt.Errorf("identifying the image's %s: %w", role, err)
	}
	h := sha256.New()
	if _, err := io.Copy(h, io.NewSectionReader(f, 0, min(st.Size(), sampleBytes))); err != nil {
		return FileIdentity{}, fmt.Errorf("identifying the image's %s %s: %w", role, path, err)
	}
	if st.Size() > sampleBytes {
		off := max(sampleBytes, st.Size()-sampleBytes)
		if _, err := io.Copy(h, io.NewSectionReader(f, off, st.Size()-off)); err != nil {
			return FileIdentity{}, fmt.Errorf("identifying the image's %s %s: %w", role, path, err)
		}
	}
	return FileIdentity{Role: role, Path: path, Size: st.Size(), ModTime: st.ModTime().UTC(), Sample: hex.EncodeToString(h.Sum(nil))}, nil
}

// imageOf identifies what a planned guest boots from: its base disk and,
// with direct kernel boot, the kernel and initrd (they are in its RAM once
// it runs, so they belong to its state as much as the disk).
func imageOf(g plan.Guest, cache map[string]FileIdentity) ([]FileIdentity, error) {
	var files []FileIdentity
	add := func(role, path string) error {
		if path == "" {
			return nil
		}
		id, ok := cache[role+"\x00"+path]
		if !ok {
			var err error
			if id, err = identify(role, path); err != nil {
				return err
			}
			cache[role+"\x00"+path] = id
		}
		files = append(files, id)
		return nil
	}
	if err := add("disk", g.BaseDisk); err != nil {
		return nil, err
	}
	for i := 0; i+1 < len(g.Args); i++ {
		switch g.Args[i] {
		case "-kernel":
			if err := add("kernel", g.Args[i+1]); err != nil {
				return nil, err
			}
		case "-initrd":
			if err := add("initrd", g.Args[i+1]); err != nil {
				return nil, err
			}
		}
	}
	return files, nil
}

func snapshotsDir(stateDir string) string { return filepath.Join(stateDir, "snapshots") }

func snapshotPath(stateDir, name string) string {
	return filepath.Join(snapshotsDir(stateDir), name+".json")
}

// ErrNoSnapshot is wrapped when a snapshot has no record.
var ErrNoSnapshot = errors.New("no such snapshot")

// ReadSnapshot reads snapshot name's record.
func ReadSnapshot(stateDir, name string) (*Snapshot, error) {
	if err := qemu.CheckSnapshotName(name); err != nil {
		return nil, err
	}
	b, err := os.ReadFile(snapshotPath(stateDir, name))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%w %q in %s (`loco snapshot list` shows the saved ones)", ErrNoSnapshot, name, snapshotsDir(stateDir))
	}
	if err != nil {
		return nil, fmt.Errorf("reading snapshot %q: %w", name, err)
	}
	var s Snapshot
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("snapshot record %s is corrupt: %w", snapshotPath(stateDir, name), err)
	}
	if s.Name != name {
		return nil, fmt.Errorf("snapshot record %s is corrupt: it names snapshot %q", snapshotPath(stateDir, name), s.Name)
	}
	return &s, nil
}

func writeSnapshot(stateDir string, s *Snapshot) error {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	path := snapshotPath(stateDir, s.Name)
	if err := os.WriteFile(path+".tmp", b, 0o600); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return os.Rename(path+".tmp", path)
}

// lockSnapshots serialises saves and deletes of one cluster's snapshots.
func lockSnapshots(stateDir string) (unlock func(), err error) {
	if err := os.MkdirAll(snapshotsDir(stateDir), 0o700); err != nil {
		return nil, fmt.Errorf("creating %s: %w", snapshotsDir(stateDir), err)
	}
	f, err := os.OpenFile(filepath.Join(snapshotsDir(stateDir), ".lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("opening the snapshot lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("locking the snapshots: %w", err)
	}
	return func() { f.Close() }, nil
}

// SaveEvent reports progress of a save, one per guest.
type SaveEvent struct {
	Guest       string
	Saved       bool
	Err         error         // why the guest was not saved
	Took        time.Duration // the guest's save
	VMStateSize int64
}

// SaveSnapshot saves the state of every running guest of the cluster in dir
// as snapshot name, replacing one of that name. Every guest is paused first
// and resumed only once all are saved, so the snapshot is one instant of the
// whole LAN (nothing in flight between guests is half in one state and half
// in another). progress gets a line's worth per guest as it finishes.
// Guests that are not running are skipped (and reported); the record lists
// the guests saved. It fails when no guest could be saved.
func SaveSnapshot(ctx context.Context, log *slog.Logger, dir, name string, progress func(SaveEvent)) (*Snapshot, error) {
	if err := qemu.CheckSnapshotName(name); err != nil {
		return nil, err
	}
	st, err := ReadState(dir)
	if err != nil {
		return nil, fmt.Errorf("reading the cluster state in %s: %w", dir, err)
	}
	unlock, err := lockSnapshots(dir)
	if err != nil {
		return nil, err
	}
	defer unlock()

	type target struct {
		g  plan.Guest
		c  *qmp.Client
		sg SnapshotGuest
	}
	var targets []*target
	var notRunning []plan.Guest
	ids := map[string]FileIdentity{}
	defer func() {
		for _, t := range targets {
			t.c.Close()
		}
	}()
	for _, g := range st.Plan.Guests {
		if _, _, running := process.Status(g); !running {
			notRunning = append(notRunning, g)
			continue
		}
		if g.Overlay == "" {
			return nil, fmt.Errorf("guest %s has no disk overlay: a snapshot is kept in the guest's qcow2 overlay, so the image needs a disk (image { disk = ... })", g.Name)
		}
		img, err := imageOf(g, ids)
		if err != nil {
			return nil, err
		}
		c, err := qmp.Dial(ctx, g.QMPSocket)
		if err != nil {
			return nil, fmt.Errorf("connecting to guest %s: %w", g.Name, err)
		}
		targets = append(targets, &target{g: g, c: c, sg: SnapshotGuest{Index: g.Index, Name: g.Name, MAC: g.MAC,
			Overlay: g.Overlay, Image: img, Profile: qemu.HardwareProfile(g.Args)}})
	}
	if len(targets) == 0 {
		return nil, fmt.Errorf("no guest of cluster %s is running: start it with `loco run` and save again", st.Cluster)
	}

	// Pause everyone, then save, then resume everyone: resume must happen
	// whatever fails in between, and with a context of its own.
	var paused []*target
	defer func() {
		rctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		for _, t := range paused {
			if err := qemu.ResumeVM(rctx, t.c); err != nil {
				log.Error("could not resume guest after the snapshot", "guest", t.g.Name, "err", err)
			}
		}
	}()
	for _, t := range targets {
		if err := qemu.PauseVM(ctx, t.c); err != nil {
			return nil, fmt.Errorf("pausing guest %s for the snapshot: %w", t.g.Name, err)
		}
		paused = append(paused, t)
	}
	// Saving is mostly writing RAM out; a guest per core keeps the pause of
	// the whole LAN short without guests fighting over the cores.
	errs := make([]error, len(targets))
	sem := make(chan struct{}, max(1, runtime.NumCPU()))
	var wg sync.WaitGroup
	var mu sync.Mutex
	for i, t := range targets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			start := time.Now()
			err := qemu.SaveVMSnapshot(ctx, t.c, name)
			t.sg.SaveTime = time.Since(start)
			if err == nil {
				t.sg.VMStateSize = vmStateSize(ctx, t.g.Overlay, name)
			}
			errs[i] = err
			mu.Lock()
			defer mu.Unlock()
			progress(SaveEvent{Guest: t.g.Name, Saved: err == nil, Err: err, Took: t.sg.SaveTime, VMStateSize: t.sg.VMStateSize})
		}()
	}
	wg.Wait()

	snap := &Snapshot{Name: name, Cluster: st.Cluster, Created: time.Now().UTC()}
	for i, t := range targets {
		if errs[i] == nil {
			snap.Guests = append(snap.Guests, t.sg)
		}
	}
	// A guest that is not part of this save must not keep an older state of
	// the same name: restored next to the others it would be from another
	// moment of the LAN.
	for _, g := range notRunning {
		progress(SaveEvent{Guest: g.Name, Err: errors.New("not running")})
		if g.Overlay != "" {
			if _, err := os.Stat(g.Overlay); err == nil {
				if err := qemu.DeleteImageSnapshot(ctx, "", g.Overlay, name); err != nil {
					log.Warn("could not remove an older state of the snapshot", "guest", g.Name, "err", err)
				}
			}
		}
	}
	if len(snap.Guests) == 0 {
		os.Remove(snapshotPath(dir, name))
		return nil, fmt.Errorf("no guest was saved: %w", errors.Join(errs...))
	}
	if err := writeSnapshot(dir, snap); err != nil {
		return nil, err
	}
	if err := errors.Join(errs...); err != nil {
		return snap, fmt.Errorf("snapshot %q saved without some guests: %w", name, err)
	}
	return snap, nil
}

func vmStateSize(ctx context.Context, overlay, tag string) int64 {
	snaps, err := qemu.ImageSnapshots(ctx, "", overlay)
	if err != nil {
		return 0
	}
	for _, s := range snaps {
		if s.Name == tag {
			return s.VMStateSize
		}
	}
	return 0
}

// SnapshotSummary is a line of `loco snapshot list`.
type SnapshotSummary struct {
	Name    string    `json:"name"`
	Created time.Time `json:"created"`
	// Guests are the guests saved; Present those whose overlay still has
	// the state.
	Guests  []string `json:"guests"`
	Present int      `json:"present"`
	// Bytes is the RAM and device state kept in the overlays; the disk
	// blocks the guests wrote before the save are shared with the overlay.
	Bytes int64  `json:"bytes"`
	Base  string `json:"base"` // the base disk, or kernel, it was saved against
	Err   string `json:"error,omitempty"`
}

// ListSnapshots lists the cluster's snapshots, newest first.
func ListSnapshots(ctx context.Context, dir string) ([]SnapshotSummary, error) {
	files, err := filepath.Glob(filepath.Join(snapshotsDir(dir), "*.json"))
	if err != nil {
		return nil, err
	}
	var out []SnapshotSummary
	cache := map[string][]qemu.ImageSnapshot{}
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".json")
		s, err := ReadSnapshot(dir, name)
		if err != nil {
			out = append(out, SnapshotSummary{Name: name, Err: err.Error()})
			continue
		}
		sum := SnapshotSummary{Name: s.Name, Created: s.Created}
		for _, g := range s.Guests {
			sum.Guests = append(sum.Guests, g.Name)
			if sum.Base == "" && len(g.Image) > 0 {
				sum.Base = g.Image[0].Path
			}
			snaps, ok := cache[g.Overlay]
			if !ok {
				snaps, _ = qemu.ImageSnapshots(ctx, "", g.Overlay)
				cache[g.Overlay] = snaps
			}
			for _, is := range snaps {
				if is.Name == s.Name && is.VMStateSize > 0 {
					sum.Present++
					sum.Bytes += is.VMStateSize
				}
			}
		}
		out = append(out, sum)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Created.After(out[j].Created) })
	return out, nil
}

// DeleteSnapshot removes snapshot name: its state from every guest's overlay
// (over QMP for a running guest, whose image QEMU holds) and its record.
func DeleteSnapshot(ctx context.Context, log *slog.Logger, dir, name string) error {
	if err := qemu.CheckSnapshotName(name); err != nil {
		return err
	}
	st, err := ReadState(dir)
	if err != nil {
		return fmt.Errorf("reading the cluster state in %s: %w", dir, err)
	}
	unlock, err := lockSnapshots(dir)
	if err != nil {
		return err
	}
	defer unlock()
	_, recErr := os.Stat(snapshotPath(dir, name))
	found := recErr == nil
	var errs []error
	for _, g := range st.Plan.Guests {
		if g.Overlay == "" {
			continue
		}
		if _, err := os.Stat(g.Overlay); err != nil {
			continue
		}
		snaps, err := qemu.ImageSnapshots(ctx, "", g.Overlay)
		if err != nil {
			errs = append(errs, fmt.Errorf("guest %s: %w", g.Name, err))
			continue
		}
		if !slices.ContainsFunc(snaps, func(s qemu.ImageSnapshot) bool { return s.Name == name }) {
			continue
		}
		found = true
		if _, _, running := process.Status(g); running {
			c, err := qmp.Dial(ctx, g.QMPSocket)
			if err != nil {
				errs = append(errs, fmt.Errorf("deleting snapshot %q of running guest %s: %w", name, g.Name, err))
				continue
			}
			err = qemu.DeleteVMSnapshot(ctx, c, name)
			c.Close()
			if err != nil {
				errs = append(errs, fmt.Errorf("deleting snapshot %q of guest %s: %w", name, g.Name, err))
			}
			continue
		}
		if err := qemu.DeleteImageSnapshot(ctx, "", g.Overlay, name); err != nil {
			errs = append(errs, fmt.Errorf("guest %s: %w", g.Name, err))
		}
	}
	if !found {
		return fmt.Errorf("%w %q in %s", ErrNoSnapshot, name, snapshotsDir(dir))
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	if err := os.Remove(snapshotPath(dir, name)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("removing the record of snapshot %q: %w", name, err)
	}
	log.Info("snapshot deleted", "snapshot", name)
	return nil
}
