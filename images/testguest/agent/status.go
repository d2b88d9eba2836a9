//go:build linux

package main

import (
	"fmt"
	"net"
	"os"
	"sort"
	"strings"
	"sync"
	"time"
)

// The status line: the top row of the VGA console shows the guest's name,
// its address, the LAN peers it heard from and a clock ticking each second,
// so that a dashboard of nine guests shows nine different live screens, and
// the damage a stream has to send is one small row a second. Peers are
// found the way LAN games find each other: every guest broadcasts a hello
// on beaconPort every beaconEvery and lists whom it heard within peerTTL.
// `loco.status=off` on the kernel command line turns both off, for tests
// that need a screen that never changes.
const (
	beaconPort  = 4243
	beaconEvery = 3 * time.Second
	peerTTL     = 10 * time.Second
	helloPrefix = "LOCO-HELLO "
)

// statusEnabled reads the kernel command line.
func statusEnabled() bool {
	b, err := os.ReadFile("/proc/cmdline")
	return err != nil || !strings.Contains(" "+string(b)+" ", " loco.status=off ")
}

type peerBook struct {
	mu    sync.Mutex
	heard map[string]time.Time // "name ip" -> last hello
}

func (p *peerBook) add(who string, at time.Time) {
	p.mu.Lock()
	p.heard[who] = at
	p.mu.Unlock()
}

// names lists the peers heard within peerTTL, sorted, without self.
func (p *peerBook) names(self string, now time.Time) []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []string
	for who, at := range p.heard {
		if now.Sub(at) > peerTTL {
			delete(p.heard, who)
			continue
		}
		if name, _, _ := strings.Cut(who, " "); name != self {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out
}

// statusLine is the text of the top row, cols wide.
func statusLine(name, ip string, peers []string, now time.Time, cols int) string {
	p := "none yet"
	if len(peers) > 0 {
		p = strings.Join(peers, " ")
	}
	s := fmt.Sprintf(" %s  %s  peers: %s", name, ip, p)
	clock := now.Format("15:04:05") + " "
	if pad := cols - len(clock) - len(s); pad > 0 {
		s += strings.Repeat(" ", pad)
	} else if len(s) >= cols-len(clock) && cols > len(clock) {
		s = s[:cols-len(clock)-1] + " "
	}
	return s + clock
}

// Layout of the status screen on a console of at least bannerMinRows by
// bannerMinCols: the status row, the name and the clock in big letters, and
// below them the scroll region where the shell's text goes. A smaller
// console (80x25 text mode) gets the status row only.
const (
	bannerMinRows, bannerMinCols = 30, 96
	nameRow, clockRow            = 3, 11
)

// startStatus runs the beacon and redraws the status screen once a second.
func startStatus(tty *os.File, e env) {
	book := &peerBook{heard: map[string]time.Time{}}
	go beacon(e, book)
	cols, rows := consoleSize()
	banner := rows >= bannerMinRows && cols >= bannerMinCols
	top := 2
	if banner {
		top = clockRow + 8
	}
	// The shell's output scrolls below the status screen and never over it.
	tty.WriteString(fmt.Sprintf("\x1b[%d;%dr\x1b[%d;1H", top, rows, top))
	go func() {
		for {
			now := time.Now()
			name, _ := e.hostname()
			ip, err := e.ipv4(e.iface)
			if err != nil || ip == "" {
				ip = "no address"
			}
			var b strings.Builder
			// Save the cursor, draw, restore: the shell's echo carries on
			// where it was. Rewriting unchanged cells changes no pixel, so
			// only the clock's digits reach a stream.
			b.WriteString("\x1b7\x1b[1;1H\x1b[7m" + statusLine(name, ip, book.names(name, now), now, cols) + "\x1b[0m")
			if banner {
				for y, row := range bigText(name, cols) {
					fmt.Fprintf(&b, "\x1b[%d;1H%s\x1b[K", nameRow+y, cellsToANSI(row))
				}
				for y, row := range bigText(now.Format("15:04:05"), cols) {
					fmt.Fprintf(&b, "\x1b[%d;1H%s\x1b[K", clockRow+y, cellsToANSI(row))
				}
			}
			b.WriteString("\x1b8")
			tty.WriteString(b.String())
			time.Sleep(time.Until(now.Truncate(time.Second).Add(time.Second)))
		}
	}()
}

// consoleSize is the VGA console's size in characters: the framebuffer's
// pixels in 8x16 cells, or VGA text mode's 80x25 without one.
func consoleSize() (cols, rows int) {
	b, err := os.ReadFile("/sys/class/graphics/fb0/virtual_size")
	if err == nil {
		var w, h int
		if _, err := fmt.Sscanf(strings.TrimSpace(string(b)), "%d,%d", &w, &h); err == nil && w >= 8*40 && h >= 16*25 {
			return w / 8, h / 16
		}
	}
	return 80, 25
}

// beacon sends a hello to the LAN's broadcast address and reads others'.
func beacon(e env, book *peerBook) {
	var conn *net.UDPConn
	for {
		var err error
		if conn, err = net.ListenUDP("udp4", &net.UDPAddr{Port: beaconPort}); err == nil {
			break
		}
		time.Sleep(beaconEvery)
	}
	go func() {
		buf := make([]byte, 256)
		for {
			n, from, err := conn.ReadFromUDP(buf)
			if err != nil {
				return
			}
			if name, ok := strings.CutPrefix(string(buf[:n]), helloPrefix); ok {
				book.add(name+" "+from.IP.String(), time.Now())
			}
		}
	}()
	for ; ; time.Sleep(beaconEvery) {
		// The subnet's broadcast address: the guest has no default route,
		// so 255.255.255.255 would not be routed. None yet: DHCP is still
		// running, or the link is down.
		if dst := subnetBroadcast(e.iface); dst != nil {
			name, _ := e.hostname()
			conn.WriteToUDP([]byte(helloPrefix+name), &net.UDPAddr{IP: dst, Port: beaconPort})
		}
	}
}

func subnetBroadcast(iface string) net.IP {
	ifc, err := net.InterfaceByName(iface)
	if err != nil {
		return nil
	}
	addrs, err := ifc.Addrs()
	if err != nil {
		return nil
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil {
			b := make(net.IP, 4)
			for i := range b {
				b[i] = n.IP.To4()[i] | ^n.Mask[len(n.Mask)-4+i]
			}
			return b
		}
	}
	return nil
}
