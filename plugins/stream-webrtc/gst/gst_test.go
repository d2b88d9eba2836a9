package gst

import (
	"errors"
	"strings"
	"sync"
	"testing"
	"time"
)

func need(t *testing.T, elements ...string) {
	t.Helper()
	if err := Init(); err != nil {
		t.Fatal(err)
	}
	for _, e := range elements {
		if !HasElement(e) {
			t.Fatalf("GStreamer element %s is missing (make deps installs Debian's gstreamer1.0-plugins-*)", e)
		}
	}
}

// TestEncodeForceKeyUnitAndCount runs a real x264 pipeline: frames come
// out, the first is a key frame, a forced key unit produces another one
// long before the periodic one, and the encoder time is measured at "enc".
func TestEncodeForceKeyUnitAndCount(t *testing.T) {
	need(t, "videotestsrc", "x264enc", "appsink")
	p, err := Launch(`videotestsrc is-live=true pattern=ball ! video/x-raw,width=320,height=240,framerate=30/1 ! videoconvert ! ` +
		`x264enc name=enc tune=zerolatency speed-preset=ultrafast key-int-max=1000 ! video/x-h264,profile=constrained-baseline,stream-format=byte-stream,alignment=au ! ` +
		`appsink name=out sync=false max-buffers=8`)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	var keys, frames int
	deadline := time.Now().Add(30 * time.Second)
	forced := false
	for frames < 40 {
		if time.Now().After(deadline) {
			t.Fatalf("only %d frames in 30 s", frames)
		}
		s, err := p.Pull(time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if s == nil {
			continue
		}
		frames++
		if frames == 1 && !s.Key {
			t.Error("the first frame is not a key frame")
		}
		if s.Key {
			keys++
			if !strings.Contains(string(s.Data[:min(len(s.Data), 64)]), "\x00\x00\x00\x01") {
				t.Error("key frame without an Annex B start code")
			}
		}
		if frames == 10 && !forced {
			p.ForceKeyUnit()
			forced = true
		}
	}
	if keys < 2 {
		t.Errorf("%d key frames in %d frames: the forced key unit did not produce one", keys, frames)
	}
	if total, n := p.EncodeTime(); n < 40 || total <= 0 {
		t.Errorf("encode time %v over %d frames", total, n)
	}
	if k, msg := p.Bus(0); k == BusError {
		t.Errorf("bus error: %s", msg)
	}
}

func TestPushOpus(t *testing.T) {
	need(t, "appsrc", "opusenc", "appsink")
	p, err := Launch(`appsrc name=in is-live=true do-timestamp=true format=time caps=audio/x-raw,format=S16LE,rate=48000,channels=2,layout=interleaved ! ` +
		`audioconvert ! opusenc frame-size=20 ! appsink name=out sync=false`)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	pcm := make([]byte, 48000*4/10) // 100 ms of silence
	for i := 0; i < 5; i++ {
		if err := p.Push(pcm); err != nil {
			t.Fatal(err)
		}
	}
	got := 0
	for deadline := time.Now().Add(10 * time.Second); got < 10 && time.Now().Before(deadline); {
		s, err := p.Pull(500 * time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		if s != nil {
			got++
		}
	}
	if got < 10 {
		t.Errorf("%d Opus packets for 500 ms of audio, want 25", got)
	}
}

func TestLaunchErrors(t *testing.T) {
	if _, err := Launch("nosuchelement ! fakesink"); err == nil || !strings.Contains(err.Error(), "nosuchelement") {
		t.Errorf("Launch of a missing element: %v", err)
	}
}

// TestCloseWhilePulling: Close returns and later calls fail cleanly while
// another goroutine is blocked in Pull.
func TestCloseWhilePulling(t *testing.T) {
	need(t, "videotestsrc", "appsink")
	p, err := Launch(`videotestsrc is-live=true ! video/x-raw,framerate=1/1 ! appsink name=out`)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			if _, err := p.Pull(5 * time.Second); errors.Is(err, ErrClosed) {
				return
			}
		}
	}()
	time.Sleep(300 * time.Millisecond)
	p.Close()
	wg.Wait()
	if _, err := p.Pull(time.Millisecond); !errors.Is(err, ErrClosed) {
		t.Errorf("Pull after Close: %v", err)
	}
}
