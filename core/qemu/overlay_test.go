package qemu

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// makeBase creates a 32 MiB image of the given format with recognisable
// content, so tests can tell whether it was modified.
func makeBase(t *testing.T, dir, format string) string {
	t.Helper()
	p := filepath.Join(dir, "base."+format)
	if _, err := runTool(context.Background(), DefaultQEMUImg, "create", "-q", "-f", format, p, "32M"); err != nil {
		t.Fatalf("creating base: %v", err)
	}
	return p
}

func TestImageInfo(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	tests := []struct {
		format string
	}{{"raw"}, {"qcow2"}}
	for _, tt := range tests {
		t.Run(tt.format, func(t *testing.T) {
			base := makeBase(t, dir, tt.format)
			info, err := ImageInfo(ctx, "", base)
			if err != nil {
				t.Fatal(err)
			}
			want := Image{Format: tt.format, VirtualSize: 32 << 20}
			if info != want {
				t.Errorf("ImageInfo = %+v, want %+v", info, want)
			}
		})
	}
	t.Run("missing file", func(t *testing.T) {
		_, err := ImageInfo(ctx, "", filepath.Join(dir, "nope"))
		if err == nil {
			t.Fatal("ImageInfo of a missing file succeeded")
		}
	})
}

func TestCreateOverlay(t *testing.T) {
	ctx := context.Background()
	for _, format := range []string{"raw", "qcow2"} {
		t.Run(format, func(t *testing.T) {
			dir := t.TempDir()
			base := makeBase(t, dir, format)
			before, _ := os.ReadFile(base)
			stBefore, _ := os.Stat(base)

			// A relative base must still be recorded absolutely.
			t.Chdir(dir)
			overlay := filepath.Join(dir, "guest.qcow2")
			if err := CreateOverlay(ctx, "", filepath.Base(base), overlay); err != nil {
				t.Fatal(err)
			}
			info, err := ImageInfo(ctx, "", overlay)
			if err != nil {
				t.Fatal(err)
			}
			want := Image{Format: "qcow2", VirtualSize: 32 << 20, BackingFile: base, FullBackingFile: base, BackingFormat: format}
			if info != want {
				t.Errorf("overlay info = %+v, want %+v", info, want)
			}

			// Existing overlays are refused and left intact.
			ovBefore, _ := os.ReadFile(overlay)
			err = CreateOverlay(ctx, "", base, overlay)
			if !errors.Is(err, ErrOverlayExists) {
				t.Errorf("second CreateOverlay: %v, want ErrOverlayExists", err)
			}
			if ovAfter, _ := os.ReadFile(overlay); !bytes.Equal(ovBefore, ovAfter) {
				t.Error("refused CreateOverlay modified the existing overlay")
			}

			after, _ := os.ReadFile(base)
			stAfter, _ := os.Stat(base)
			if !bytes.Equal(before, after) || !stAfter.ModTime().Equal(stBefore.ModTime()) {
				t.Error("CreateOverlay modified the base image")
			}
		})
	}
}

func TestCreateOverlayFailureLeavesNothing(t *testing.T) {
	dir := t.TempDir()
	overlay := filepath.Join(dir, "guest.qcow2")
	err := CreateOverlay(context.Background(), "", filepath.Join(dir, "missing.raw"), overlay)
	if err == nil {
		t.Fatal("CreateOverlay on a missing base succeeded")
	}
	if _, serr := os.Stat(overlay); !errors.Is(serr, os.ErrNotExist) {
		t.Errorf("failed CreateOverlay left %s behind (stat: %v)", overlay, serr)
	}
}

func TestEnsureOverlay(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	base := makeBase(t, dir, "raw")
	other := filepath.Join(dir, "other.raw")
	if _, err := runTool(ctx, DefaultQEMUImg, "create", "-q", "-f", "raw", other, "1M"); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "base-link.raw")
	if err := os.Symlink(base, link); err != nil {
		t.Fatal(err)
	}
	plain := filepath.Join(dir, "plain.qcow2")
	if _, err := runTool(ctx, DefaultQEMUImg, "create", "-q", "-f", "qcow2", plain, "1M"); err != nil {
		t.Fatal(err)
	}
	notImage := filepath.Join(dir, "junk")
	if err := os.WriteFile(notImage, []byte("junk"), 0o644); err != nil {
		t.Fatal(err)
	}

	overlay := filepath.Join(dir, "guest.qcow2")
	tests := []struct {
		name        string
		base        string
		overlay     string
		wantCreated bool
		wantErr     error
	}{
		{"creates", base, overlay, true, nil},
		{"reuses", base, overlay, false, nil},
		{"reuses via symlinked base", link, overlay, false, nil},
		{"refuses other base", other, overlay, false, ErrOverlayMismatch},
		{"refuses overlay without backing file", base, plain, false, ErrOverlayMismatch},
		{"refuses non-qcow2 file", base, notImage, false, ErrOverlayMismatch},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			created, err := EnsureOverlay(ctx, "", tt.base, tt.overlay)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("EnsureOverlay: %v, want %v", err, tt.wantErr)
			}
			if created != tt.wantCreated {
				t.Errorf("created = %v, want %v", created, tt.wantCreated)
			}
		})
	}
}

func TestCreateOverlayHonoursContext(t *testing.T) {
	dir := t.TempDir()
	base := makeBase(t, dir, "raw")
	ctx, cancel := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel()
	if err := CreateOverlay(ctx, "", base, filepath.Join(dir, "o.qcow2")); err == nil {
		t.Fatal("CreateOverlay with an expired context succeeded")
	}
}
