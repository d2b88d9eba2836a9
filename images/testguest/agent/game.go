package main

import (
	"bufio"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The stand-in LAN game: the smallest thing that behaves like a DirectPlay
// lobby of Lego Loco's era, for loco's scenario runner to drive with key
// presses and watch on the screen. It only starts on a key, so the LAN
// tests' own listeners on the same ports never clash with it.
//
//	F5  host: accept players on TCP 2300 and announce the session by
//	    broadcast to UDP 47624 every second; the panel turns green with
//	    one white square per player (the host is the first)
//	F6  browse: listen on UDP 47624; the panel turns yellow once a session
//	    was heard
//	F7  join the session heard first: TCP 2300 "JOIN NAME", the host
//	    answers "WELCOME N"; the panel turns blue with N squares
//
// The panel is the framebuffer's bottom-left corner (gamePanel); it is
// redrawn twice a second, so console text that scrolls over it heals.
// Each change is also a serial line: LOCO-GAME hosting|session|joined|players.
const (
	keyF5 = 63
	keyF6 = 64
	keyF7 = 65

	gameJoinPort     = 2300
	gameAnnouncePort = 47624
	gameAnnounce     = "LOCO-GAME-SESSION "
)

// Panel geometry and colours, in framebuffer pixels; the scenario files
// (cmd/loco/testdata/scenario) check these.
const (
	panelX, panelW, panelH = 0, 240, 80 // at the bottom: y = height - panelH
	squareSize, squareStep = 20, 30     // player squares: x = 10 + i*squareStep, y = height - 50
)

var (
	colourHost   = [3]byte{0, 200, 0}
	colourBrowse = [3]byte{220, 200, 0}
	colourJoined = [3]byte{0, 0, 220}
)

type game struct {
	mu       sync.Mutex
	out      printer
	env      env
	fb       func() (*framebuffer, error)
	state    string   // "", "host", "browse", "joined"
	players  []string // host: names in join order, itself first
	joinedN  int      // client: players the host counted when we joined
	sessions []string // browse: "NAME IP" in the order heard
	drawing  bool
}

func newGame(out printer, e env, fb func() (*framebuffer, error)) *game {
	return &game{out: out, env: e, fb: fb}
}

func (g *game) key(code uint16) {
	switch code {
	case keyF5:
		go g.host()
	case keyF6:
		go g.browse()
	case keyF7:
		go g.join()
	}
}

func (g *game) name() string {
	n, _ := g.env.hostname()
	return n
}

func (g *game) host() {
	g.mu.Lock()
	if g.state == "host" {
		g.mu.Unlock()
		return
	}
	l, err := net.ListenTCP("tcp4", &net.TCPAddr{Port: gameJoinPort})
	if err != nil {
		g.mu.Unlock()
		g.out.Printf("LOCO-ERROR game: hosting on TCP %d: %v", gameJoinPort, err)
		return
	}
	g.state, g.players = "host", []string{g.name()}
	g.mu.Unlock()
	g.out.Printf("LOCO-GAME hosting name=%s port=%d", g.name(), gameJoinPort)
	g.startDrawing()
	go g.announce()
	for {
		c, err := l.Accept()
		if err != nil {
			g.out.Printf("LOCO-ERROR game: accept: %v", err)
			return
		}
		go g.welcome(c)
	}
}

func (g *game) announce() {
	conn, err := net.ListenUDP("udp4", nil)
	if err != nil {
		g.out.Printf("LOCO-ERROR game: announce socket: %v", err)
		return
	}
	for ; ; time.Sleep(time.Second) {
		if dst := subnetBroadcast(g.env.iface); dst != nil {
			conn.WriteToUDP([]byte(gameAnnounce+g.name()), &net.UDPAddr{IP: dst, Port: gameAnnouncePort})
		}
	}
}

func (g *game) welcome(c net.Conn) {
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	who, ok := strings.CutPrefix(strings.TrimSpace(line), "JOIN ")
	if err != nil || !ok || who == "" {
		return
	}
	g.mu.Lock()
	known := false
	for _, p := range g.players {
		known = known || p == who
	}
	if !known {
		g.players = append(g.players, who)
	}
	n, names := len(g.players), strings.Join(g.players, ",")
	g.mu.Unlock()
	fmt.Fprintf(c, "WELCOME %d\n", n)
	g.out.Printf("LOCO-GAME players=%d names=%s", n, names)
	g.draw()
}

func (g *game) browse() {
	g.mu.Lock()
	if g.state != "" {
		g.mu.Unlock()
		return
	}
	g.state = "browse"
	g.mu.Unlock()
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{Port: gameAnnouncePort})
	if err != nil {
		g.out.Printf("LOCO-ERROR game: browsing on UDP %d: %v", gameAnnouncePort, err)
		return
	}
	g.out.Printf("LOCO-GAME browsing port=%d", gameAnnouncePort)
	g.startDrawing()
	buf := make([]byte, 256)
	for {
		n, from, err := conn.ReadFromUDP(buf)
		if err != nil {
			return
		}
		host, ok := strings.CutPrefix(string(buf[:n]), gameAnnounce)
		if !ok {
			continue
		}
		s := host + " " + from.IP.String()
		g.mu.Lock()
		fresh := true
		for _, k := range g.sessions {
			fresh = fresh && k != s
		}
		if fresh {
			g.sessions = append(g.sessions, s)
		}
		g.mu.Unlock()
		if fresh {
			g.out.Printf("LOCO-GAME session host=%s ip=%s", host, from.IP)
			g.draw()
		}
	}
}

func (g *game) join() {
	g.mu.Lock()
	if len(g.sessions) == 0 || g.state == "joined" {
		g.mu.Unlock()
		g.out.Printf("LOCO-ERROR game: no session to join (press F6 first and wait for one)")
		return
	}
	host, ip, _ := strings.Cut(g.sessions[0], " ")
	g.mu.Unlock()
	c, err := net.DialTimeout("tcp4", net.JoinHostPort(ip, strconv.Itoa(gameJoinPort)), 10*time.Second)
	if err != nil {
		g.out.Printf("LOCO-ERROR game: joining %s: %v", host, err)
		return
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(c, "JOIN %s\n", g.name())
	line, err := bufio.NewReader(c).ReadString('\n')
	var n int
	if _, serr := fmt.Sscanf(line, "WELCOME %d", &n); err != nil || serr != nil {
		g.out.Printf("LOCO-ERROR game: %s answered %q: %v", host, line, err)
		return
	}
	g.mu.Lock()
	g.state, g.joinedN = "joined", n
	g.mu.Unlock()
	g.out.Printf("LOCO-GAME joined host=%s players=%d", host, n)
	g.draw()
}

func (g *game) startDrawing() {
	g.mu.Lock()
	start := !g.drawing
	g.drawing = true
	g.mu.Unlock()
	if start {
		go func() {
			for ; ; time.Sleep(500 * time.Millisecond) {
				g.draw()
			}
		}()
	}
}

// draw paints the panel for the current state.
func (g *game) draw() {
	fb, err := g.fb()
	if err != nil {
		return // reported once by whoever mapped it first
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	var c [3]byte
	squares := 0
	switch g.state {
	case "host":
		c, squares = colourHost, len(g.players)
	case "browse":
		if len(g.sessions) == 0 {
			return
		}
		c = colourBrowse
	case "joined":
		c, squares = colourJoined, g.joinedN
	default:
		return
	}
	y0 := fb.h - panelH
	fb.fill(panelX, y0, panelW, panelH, c)
	for i := 0; i < squares && 10+i*squareStep+squareSize <= panelW; i++ {
		fb.fill(10+i*squareStep, fb.h-50, squareSize, squareSize, [3]byte{255, 255, 255})
	}
}

// fill paints a rectangle in an RGB colour; vesafb's 24 and 32 bpp modes
// keep blue in the lowest byte.
func (fb *framebuffer) fill(x, y, w, h int, rgb [3]byte) {
	if x < 0 || y < 0 || x+w > fb.w || y+h > fb.h {
		return
	}
	row := make([]byte, w*fb.px)
	for i := 0; i+2 < len(row); i += fb.px {
		row[i], row[i+1], row[i+2] = rgb[2], rgb[1], rgb[0]
	}
	for yy := y; yy < y+h; yy++ {
		copy(fb.mem[yy*fb.stride+x*fb.px:], row)
	}
}
