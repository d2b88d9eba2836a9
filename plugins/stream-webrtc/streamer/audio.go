package streamer

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/pion/webrtc/v4/pkg/media"
	"golang.org/x/sys/unix"

	"github.com/locolan/loco/plugins/stream-webrtc/gst"
	"github.com/locolan/loco/sdk"
)

// Guest sound reaches the plugin through QEMU's "wav" audiodev writing into
// a FIFO in the guest's state directory. Of the audio backends Debian's
// QEMU 7.2 has, it is the only one that needs neither a sound server nor a
// display (-display is the core's), and QEMU paces it in real time itself.
//
// The plugin opens the FIFO read-write: opening never blocks, QEMU's open
// for writing finds a reader at once, and a guest restart (QEMU closing and
// reopening its end) is not an end of file. A QEMU whose writes find no
// reader (the plugin is restarting) gets EPIPE, which it logs and survives.
// The plugin must keep reading at all times, or QEMU would block once the
// pipe is full: drain does, and drops what no viewer wants.
const (
	audioRate     = 48000
	audioChannels = 2
	audioFrame    = 2 * audioChannels // bytes per S16LE frame
	wavHeaderLen  = 44
)

// audioArgs is the QEMU audiodev for a guest; it replaces the core's silent
// backend for the guest's sound card (sdk.AudiodevID).
func audioArgs(fifo string) ([]string, error) {
	if strings.ContainsAny(fifo, ",\n") {
		return nil, fmt.Errorf("audio FIFO path %q contains a comma or newline, which QEMU option syntax cannot take", fifo)
	}
	return []string{"-audiodev", fmt.Sprintf("wav,id=%s,path=%s,out.frequency=%d,out.channels=%d,out.format=s16", sdk.AudiodevID,
		fifo, audioRate, audioChannels)}, nil
}

// ensureFIFO makes path a FIFO, keeping one that is already there (a
// restarted plugin finds the one a running QEMU still writes to).
func ensureFIFO(path string) error {
	st, err := os.Lstat(path)
	if err == nil {
		if st.Mode()&fs.ModeNamedPipe != 0 {
			return nil
		}
		return fmt.Errorf("%s exists and is not a FIFO", path)
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if err := syscall.Mkfifo(path, 0o600); err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("creating the audio FIFO %s: %w", path, err)
	}
	return nil
}

// drain reads the FIFO until ctx ends and hands whole PCM frames, with the
// WAV headers QEMU writes at each open removed, to sink.
func drain(ctx context.Context, path string, sink func([]byte)) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("opening the audio FIFO: %w", err)
	}
	// Slack for a reader that is briefly descheduled: 64 KiB is 0.3 s of
	// 48 kHz stereo; ask for 1 MiB (the unprivileged maximum by default).
	unix.FcntlInt(f.Fd(), unix.F_SETPIPE_SZ, 1<<20)
	stop := context.AfterFunc(ctx, func() { f.Close() })
	defer stop()
	defer f.Close()
	var ws wavStripper
	buf := make([]byte, 16384)
	for {
		n, err := f.Read(buf)
		if n > 0 {
			if pcm := ws.write(buf[:n]); len(pcm) > 0 {
				sink(pcm)
			}
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("reading the audio FIFO: %w", err)
		}
	}
}

// wavStripper removes the 44-byte WAV headers from QEMU's wav output and
// keeps the PCM frame-aligned. QEMU writes a header each time it opens the
// file (guest start, restart) and whole frames otherwise; the header is 11
// frames long, so headers start frame-aligned too.
type wavStripper struct {
	pending []byte // a tail shorter than a frame or a possible header start
}

var riff = []byte("RIFF")

func (w *wavStripper) write(b []byte) []byte {
	data := append(w.pending, b...)
	w.pending = nil
	out := make([]byte, 0, len(data))
	for len(data) > 0 {
		i := bytes.Index(data, riff)
		for i >= 0 && i%audioFrame != 0 {
			j := bytes.Index(data[i+1:], riff)
			if j < 0 {
				i = -1
				break
			}
			i += 1 + j
		}
		if i < 0 {
			// Keep back a partial frame. "RIFF" is exactly one frame and
			// starts aligned, so a header split across reads always begins
			// in this tail.
			keep := len(data) % audioFrame
			out = append(out, data[:len(data)-keep]...)
			w.pending = append([]byte(nil), data[len(data)-keep:]...)
			return out
		}
		out = append(out, data[:i]...)
		if len(data)-i < wavHeaderLen {
			w.pending = append([]byte(nil), data[i:]...)
			return out
		}
		if string(data[i+8:i+12]) == "WAVE" {
			data = data[i+wavHeaderLen:]
		} else {
			// Samples that happen to spell RIFF: keep them.
			out = append(out, data[i:i+audioFrame]...)
			data = data[i+audioFrame:]
		}
	}
	return out
}

// mkdirFIFO creates the guest's state directory if need be, and the FIFO.
func mkdirFIFO(dir, fifo string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("creating %s: %w", dir, err)
	}
	return ensureFIFO(fifo)
}

// startAudio drains the guest's audio FIFO for as long as the guest is
// attached, encoding to Opus while anyone watches and dropping the sound
// otherwise.
func (g *guest) startAudio(fifo string) {
	go func() {
		var pl *gst.Pipeline
		var lastWanted time.Time
		closePL := func() {
			if pl != nil {
				pl.Close()
				pl = nil
			}
		}
		defer closePL()
		sink := func(pcm []byte) {
			if g.viewerCount() > 0 {
				lastWanted = time.Now()
			}
			if time.Since(lastWanted) > linger {
				closePL()
				return
			}
			if pl == nil {
				var err error
				if pl, err = g.startAudioPipeline(); err != nil {
					logger.Error("audio pipeline", "guest", g.in.Name, "err", err)
					return
				}
			}
			if err := pl.Push(pcm); err != nil {
				logger.Warn("audio pipeline refused sound; restarting it", "guest", g.in.Name, "err", err)
				closePL()
			}
		}
		for g.ctx.Err() == nil {
			if err := drain(g.ctx, fifo, sink); err != nil {
				logger.Error("guest audio", "guest", g.in.Name, "err", err)
				select {
				case <-g.ctx.Done():
				case <-time.After(time.Second):
				}
			}
		}
	}()
}

func (g *guest) startAudioPipeline() (*gst.Pipeline, error) {
	pl, err := gst.Launch(audioPipeline())
	if err != nil {
		return nil, err
	}
	if err := pl.Start(); err != nil {
		pl.Close()
		return nil, err
	}
	go func() {
		var lastPTS time.Duration = -1
		for {
			s, err := pl.Pull(500 * time.Millisecond)
			if err != nil {
				return // closed
			}
			if s == nil {
				continue
			}
			dur := 20 * time.Millisecond
			if lastPTS >= 0 && s.PTS > lastPTS && s.PTS-lastPTS < time.Second {
				dur = s.PTS - lastPTS
			}
			lastPTS = s.PTS
			if err := g.audio.WriteSample(media.Sample{Data: s.Data, Duration: dur}); err != nil {
				logger.Debug("writing to the audio track", "guest", g.in.Name, "err", err)
			}
		}
	}()
	logger.Info("audio encoder started", "guest", g.in.Name)
	return pl, nil
}
