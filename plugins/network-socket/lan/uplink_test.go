package lan

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/locolan/loco/sdk"
)

// recvUplink collects what the switch forwards to u until none comes for
// quiet, leaving out the station's probes.
func recvUplink(u *Uplink, station mac) [][]byte {
	var out [][]byte
	for {
		ctx, cancel := context.WithTimeout(context.Background(), quiet)
		f, err := u.Recv(ctx)
		cancel()
		if err != nil {
			return out
		}
		if mac(f[6:12]) != station {
			out = append(out, f)
		}
	}
}

// TestUplinkIsAPortThatIsNotAGuest checks what a plugin carrying the LAN
// further relies on: floods reach the uplink, frames from it reach the
// guests, addresses behind it are learned both ways, it is no guest in the
// status, and capture tells its frames from the guests'.
func TestUplinkIsAPortThatIsNotAGuest(t *testing.T) {
	seg, g := startLAN(t, 2, defaultRaw())
	st := seg.sw.stationMAC
	u := seg.AddUplink("test")
	capAll, stopCap := seg.sw.subscribe(sdk.CaptureRequest{})
	defer stopCap()
	remote := mac{0x52, 0x99, 0x99, 0, 0, 7} // a guest on the far side

	bcast := frame(broadcastMAC, g[0].mac, 0x0800, bytes.Repeat([]byte{1}, 46))
	g[0].send(bcast)
	if got := recvUplink(u, st); containsFrame(got, bcast) != 1 {
		t.Fatalf("uplink got %d frames, want guest 0's broadcast once", len(got))
	}
	g[1].drain(quiet, st)

	fromFar := frame(broadcastMAC, remote, 0x8137, bytes.Repeat([]byte{2}, 46))
	u.Send(fromFar)
	for i, x := range g {
		if got := x.drain(quiet, st); containsFrame(got, fromFar) != 1 {
			t.Errorf("guest %d got %d frames, want the uplink's broadcast once", i, len(got))
		}
	}
	if got := recvUplink(u, st); len(got) != 0 {
		t.Errorf("the uplink's own broadcast came back to it (%d frames)", len(got))
	}

	// remote is learned behind the uplink: guest 0's unicast to it goes
	// there alone.
	toFar := frame(remote, g[0].mac, 0x0800, bytes.Repeat([]byte{3}, 46))
	g[0].send(toFar)
	if got := recvUplink(u, st); containsFrame(got, toFar) != 1 {
		t.Errorf("uplink got %d frames, want guest 0's unicast to the far side", len(got))
	}
	if got := g[1].drain(quiet, st); len(got) != 0 {
		t.Errorf("guest 1 saw %d frames of a unicast learned behind the uplink", len(got))
	}
	// And guest 1 (learned on its port) gets the far side's unicast alone.
	g[1].send(frame(broadcastMAC, g[1].mac, 0x0800, make([]byte, 46)))
	recvUplink(u, st)
	g[0].drain(quiet, st)
	toNear := frame(g[1].mac, remote, 0x0800, bytes.Repeat([]byte{4}, 46))
	u.Send(toNear)
	if got := g[1].drain(quiet, st); containsFrame(got, toNear) != 1 {
		t.Errorf("guest 1 got %d frames, want the far side's unicast", len(got))
	}
	if got := g[0].drain(quiet, st); len(got) != 0 {
		t.Errorf("guest 0 saw %d frames of a unicast for guest 1", len(got))
	}

	if n := len(seg.Status().Ports); n != 2 {
		t.Errorf("status has %d ports, want the 2 guests", n)
	}
	var fromUplink, fromGuests int
	for done := false; !done; {
		select {
		case f := <-capAll.ch:
			switch {
			case mac(f.Data[6:12]) == remote && f.FromHost:
				fromUplink++
			case mac(f.Data[6:12]) == remote:
				t.Errorf("a frame from the uplink captured as guest %d's", f.Ingress)
			case !f.FromHost:
				fromGuests++
			}
		case <-time.After(quiet):
			done = true
		}
	}
	if fromUplink != 2 || fromGuests != 3 {
		t.Errorf("capture: %d frames from the uplink, %d from guests; want 2 and 3", fromUplink, fromGuests)
	}

	seg.Close()
	if _, err := u.Recv(context.Background()); err == nil {
		t.Error("Recv on a closed segment returned a frame")
	}
}
