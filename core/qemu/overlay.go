package qemu

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// DefaultQEMUImg is the image tool used when a qemuImg argument is empty.
const DefaultQEMUImg = "qemu-img"

// ErrOverlayExists is wrapped by CreateOverlay when the overlay file already
// exists; test with errors.Is.
var ErrOverlayExists = errors.New("overlay already exists")

// ErrOverlayMismatch is wrapped by EnsureOverlay when an existing overlay is
// not a qcow2 image backed by the requested base.
var ErrOverlayMismatch = errors.New("existing overlay does not match base")

// Image is what qemu-img reports about a disk image.
type Image struct {
	// Format is the image format, e.g. "qcow2" or "raw".
	Format string
	// VirtualSize is the guest-visible size in bytes.
	VirtualSize int64
	// BackingFile is the backing file as recorded in the image; empty when
	// the image has none.
	BackingFile string
	// FullBackingFile is BackingFile resolved relative to the image.
	FullBackingFile string
	// BackingFormat is the recorded format of the backing file, if any.
	BackingFormat string
}

// ImageInfo runs "qemu-img info" on path.
func ImageInfo(ctx context.Context, qemuImg, path string) (Image, error) {
	// -U (force-share) lets us inspect images a running guest holds the
	// write lock on, e.g. when the runtime checks an overlay it reattaches.
	out, err := runTool(ctx, or(qemuImg, DefaultQEMUImg), "info", "-U", "--output=json", path)
	if err != nil {
		return Image{}, fmt.Errorf("inspecting disk image %s: %w", path, err)
	}
	var raw struct {
		Format          string `json:"format"`
		VirtualSize     int64  `json:"virtual-size"`
		BackingFile     string `json:"backing-filename"`
		FullBackingFile string `json:"full-backing-filename"`
		BackingFormat   string `json:"backing-filename-format"`
	}
	if err := json.Unmarshal(out, &raw); err != nil {
		return Image{}, fmt.Errorf("inspecting disk image %s: decoding qemu-img output: %w", path, err)
	}
	return Image(raw), nil
}

// CreateOverlay creates overlay as a new qcow2 image backed by base. The
// base's format is detected and recorded so QEMU never has to probe it, and
// its absolute path is recorded so the overlay works from any directory.
// The base is only read. If overlay already exists, the error wraps
// ErrOverlayExists and the existing file is left alone.
func CreateOverlay(ctx context.Context, qemuImg, base, overlay string) error {
	absBase, err := filepath.Abs(base)
	if err != nil {
		return fmt.Errorf("creating overlay %s: resolving base %s: %w", overlay, base, err)
	}
	info, err := ImageInfo(ctx, qemuImg, absBase)
	if err != nil {
		return fmt.Errorf("creating overlay %s: %w", overlay, err)
	}
	// Claim the name with O_EXCL first: qemu-img create silently truncates
	// existing files, and a stat-then-create check would race.
	f, err := os.OpenFile(overlay, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if errors.Is(err, os.ErrExist) {
		return fmt.Errorf("creating overlay %s: %w", overlay, ErrOverlayExists)
	}
	if err != nil {
		return fmt.Errorf("creating overlay %s: %w", overlay, err)
	}
	if err := f.Close(); err != nil {
		os.Remove(overlay)
		return fmt.Errorf("creating overlay %s: %w", overlay, err)
	}
	if _, err := runTool(ctx, or(qemuImg, DefaultQEMUImg),
		"create", "-q", "-f", "qcow2", "-F", info.Format, "-b", absBase, overlay); err != nil {
		os.Remove(overlay)
		return fmt.Errorf("creating overlay %s on %s: %w", overlay, absBase, err)
	}
	return nil
}

// EnsureOverlay makes overlay a qcow2 image backed by base: it creates it
// when missing and reuses it, keeping the guest's disk state, when it already
// exists with base as backing file. An overlay with another backing file is
// never reused or replaced; the error then wraps ErrOverlayMismatch. created
// reports whether a new overlay was made.
func EnsureOverlay(ctx context.Context, qemuImg, base, overlay string) (created bool, err error) {
	err = CreateOverlay(ctx, qemuImg, base, overlay)
	if err == nil {
		return true, nil
	}
	if !errors.Is(err, ErrOverlayExists) {
		return false, err
	}
	info, err := ImageInfo(ctx, qemuImg, overlay)
	if err != nil {
		return false, fmt.Errorf("checking existing overlay: %w", err)
	}
	if info.Format != "qcow2" {
		return false, fmt.Errorf("existing overlay %s is %s, not qcow2: %w", overlay, info.Format, ErrOverlayMismatch)
	}
	backing := info.FullBackingFile
	if backing == "" {
		backing = info.BackingFile
	}
	if backing == "" {
		return false, fmt.Errorf("existing overlay %s has no backing file, want %s: %w", overlay, base, ErrOverlayMismatch)
	}
	same, err := sameFile(backing, base)
	if err != nil {
		return false, fmt.Errorf("comparing backing file %s of existing overlay %s with base %s: %w", backing, overlay, base, err)
	}
	if !same {
		return false, fmt.Errorf("existing overlay %s is backed by %s, want %s; delete it to start from the new base: %w",
			overlay, backing, base, ErrOverlayMismatch)
	}
	return false, nil
}

// sameFile compares by inode so that symlinked or differently spelled paths
// to the same base still match. A vanished backing file is a mismatch, not an
// error: the overlay is unusable either way.
func sameFile(a, b string) (bool, error) {
	sb, err := os.Stat(b)
	if err != nil {
		return false, err
	}
	sa, err := os.Stat(a)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return os.SameFile(sa, sb), nil
}

// runTool runs a short-lived helper and folds its stderr into the error,
// since that is where qemu-img explains what went wrong.
func runTool(ctx context.Context, name string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		if msg := strings.TrimSpace(stderr.String()); msg != "" {
			return nil, fmt.Errorf("%s %s: %w: %s", name, args[0], err, msg)
		}
		return nil, fmt.Errorf("%s %s: %w", name, args[0], err)
	}
	return stdout.Bytes(), nil
}
