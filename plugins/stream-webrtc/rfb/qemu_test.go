package rfb_test

import (
	"context"
	"encoding/binary"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/locolan/loco/internal/testenv"
	"github.com/locolan/loco/plugins/stream-webrtc/rfb"
)

// TestCaptureDepthsAgreeOnQEMU holds the two capture depths against a real
// QEMU display: SeaBIOS's screen of a diskless PC (text on black), grabbed
// over two connections at once, one at 32 and one at 16 bits, must be the
// same picture pixel for pixel once the 32-bit one is rounded to 565.
// QEMU converts the pixels itself, so this checks that loco asks for the
// format it decodes.
func TestCaptureDepthsAgreeOnQEMU(t *testing.T) {
	if _, err := exec.LookPath("qemu-system-x86_64"); err != nil {
		t.Fatal("qemu-system-x86_64 is not installed: make test installs it (APT_PACKAGES)")
	}
	sock := filepath.Join(testenv.ShortTempDir(t), "vnc.sock")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	qemu := exec.CommandContext(ctx, "qemu-system-x86_64", "-nodefaults", "-machine", "pc", "-accel", "tcg",
		"-m", "32", "-vga", "std", "-display", "none", "-vnc", "unix:"+sock)
	if err := qemu.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cancel(); qemu.Wait() }()

	// Each round dials both depths afresh, so each starts with the whole
	// screen; SeaBIOS may print between the two grabs, so rounds repeat
	// until a lit picture agrees.
	grab := func(depth rfb.Depth) *rfb.Capture {
		c, err := rfb.DialCapture(ctx, "unix", sock, depth)
		if err != nil {
			return nil
		}
		next(t, c)
		c.Close()
		return c
	}
	var lit, diff int
	var size rfb.Size
	took := testenv.WaitFor(t, "the two depths to show the same lit picture", 60*time.Second, func() bool {
		c32, c16 := grab(rfb.BGRx), grab(rfb.RGB565)
		if c32 == nil || c16 == nil || c32.Size() != c16.Size() {
			return false
		}
		lit, diff, size = 0, 0, c32.Size()
		for y := 0; y < size.H; y++ {
			for x := 0; x < size.W; x++ {
				p32 := binary.LittleEndian.Uint32(c32.Pixels()[(y*size.W+x)*4:])
				p16 := binary.LittleEndian.Uint16(c16.Pixels()[(y*size.W+x)*2:])
				if p32&0xffffff != 0 {
					lit++
				}
				if to565(p32) != p16 {
					diff++
				}
			}
		}
		return lit > 100 && diff == 0
	})
	t.Logf("%v: %d lit pixels, identical at both depths, after %v", size, lit, took)
}
