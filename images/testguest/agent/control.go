//go:build linux

package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sort"
	"strings"
	"time"
)

// The control protocol: the host writes one command per line; the agent
// answers each non-empty line with exactly one line starting with "OK " or
// "ERR ". Empty lines get no answer, so a host can send "\n" to terminate
// whatever a previous, disconnected client left half-written.

const (
	maxLineLen = 4096
	// diskMarker starts the sector that disk-write leaves on the guest disk.
	diskMarker = "LOCOMARK:"
	sectorSize = 512
)

// env is everything the handlers touch outside the agent, so tests can
// substitute temporary files for devices.
type env struct {
	diskPaths []string // first existing one is "the disk"
	netDir    string   // /sys/class/net
	iface     string
	hostname  func() (string, error)
	ipv4      func(iface string) (string, error)
}

func defaultEnv() env {
	return env{
		diskPaths: []string{"/dev/sda", "/dev/vda", "/dev/hda"},
		netDir:    "/sys/class/net",
		iface:     "eth0",
		hostname:  os.Hostname,
		ipv4:      interfaceIPv4,
	}
}

// handler gets the text after the command word and returns the reply text
// that follows "OK "; an error becomes "ERR <error>".
type handler func(args string) (string, error)

type agent struct {
	env      env
	handlers map[string]handler
	net      *netState
}

func newAgent(e env) *agent {
	a := &agent{env: e, net: newNetState()}
	a.handlers = map[string]handler{
		"ping":       func(string) (string, error) { return "pong", nil },
		"echo":       func(args string) (string, error) { return args, nil },
		"help":       a.help,
		"info":       a.info,
		"disk-write": a.diskWrite,
		"disk-read":  a.diskRead,
		"clock":      func(string) (string, error) { return clock.report(), nil },
	}
	for name, h := range a.netHandlers() {
		a.handlers[name] = h
	}
	return a
}

// dispatch turns one command line into one reply line (without newline).
func (a *agent) dispatch(line string) string {
	cmd, args, _ := strings.Cut(strings.TrimSpace(line), " ")
	h, ok := a.handlers[cmd]
	if !ok {
		return oneLine(fmt.Sprintf("ERR unknown command %q", cmd))
	}
	reply, err := h(strings.TrimSpace(args))
	if err != nil {
		return oneLine("ERR " + err.Error())
	}
	return oneLine("OK " + reply)
}

// oneLine keeps a reply on one line whatever a handler or error returned,
// because the host matches replies to commands line by line.
func oneLine(s string) string {
	return strings.NewReplacer("\r", " ", "\n", " ").Replace(s)
}

func (a *agent) help(string) (string, error) {
	names := make([]string, 0, len(a.handlers))
	for n := range a.handlers {
		names = append(names, n)
	}
	sort.Strings(names)
	return strings.Join(names, " "), nil
}

func (a *agent) info(string) (string, error) {
	name, err := a.env.hostname()
	if err != nil || name == "" {
		name = "none"
	}
	mac := "none"
	if b, err := os.ReadFile(a.env.netDir + "/" + a.env.iface + "/address"); err == nil {
		if m := strings.TrimSpace(string(b)); m != "" {
			mac = m
		}
	}
	ip, err := a.env.ipv4(a.env.iface)
	if err != nil || ip == "" {
		ip = "none"
	}
	return fmt.Sprintf("name=%s mac=%s ip=%s", name, mac, ip), nil
}

func (a *agent) findDisk() (string, error) {
	for _, p := range a.env.diskPaths {
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("no disk among %s", strings.Join(a.env.diskPaths, " "))
}

func (a *agent) diskWrite(text string) (string, error) {
	if text == "" {
		return "", errors.New("usage: disk-write TEXT")
	}
	sector := diskMarker + text + "\n"
	if len(sector) > sectorSize {
		return "", fmt.Errorf("text too long: %d bytes, max %d", len(text), sectorSize-len(diskMarker)-1)
	}
	path, err := a.findDisk()
	if err != nil {
		return "", err
	}
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return "", fmt.Errorf("open %s: %w", path, err)
	}
	defer f.Close()
	if _, err := f.WriteAt([]byte(sector), 0); err != nil {
		return "", fmt.Errorf("write %s: %w", path, err)
	}
	// The host checks the disk image after killing QEMU, so the data must
	// have left the guest's page cache before we claim success.
	if err := f.Sync(); err != nil {
		return "", fmt.Errorf("fsync %s: %w", path, err)
	}
	return "written " + path, nil
}

func (a *agent) diskRead(string) (string, error) {
	path, err := a.findDisk()
	if err != nil {
		return "", err
	}
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("open %s: %w", path, err)
	}
	defer f.Close()
	buf := make([]byte, sectorSize)
	n, err := f.ReadAt(buf, 0)
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("read %s: %w", path, err)
	}
	return parseMarker(buf[:n])
}

// parseMarker extracts TEXT from a sector written by disk-write.
func parseMarker(sector []byte) (string, error) {
	rest, ok := bytes.CutPrefix(sector, []byte(diskMarker))
	if !ok {
		return "", errors.New("no marker")
	}
	if i := bytes.IndexAny(rest, "\n\x00"); i >= 0 {
		rest = rest[:i]
	}
	return string(rest), nil
}

// serve answers commands from rw until reading fails.
func (a *agent) serve(rw io.ReadWriter) error {
	r := bufio.NewReaderSize(rw, maxLineLen)
	for {
		line, err := readLine(r)
		if errors.Is(err, errLineTooLong) {
			if _, werr := io.WriteString(rw, "ERR line too long\n"); werr != nil {
				return fmt.Errorf("write reply: %w", werr)
			}
			continue
		}
		if err != nil {
			return err
		}
		if strings.TrimSpace(line) == "" {
			continue
		}
		if _, err := io.WriteString(rw, a.dispatch(line)+"\n"); err != nil {
			return fmt.Errorf("write reply: %w", err)
		}
	}
}

var errLineTooLong = errors.New("line too long")

// readLine returns one line without its "\n" or "\r\n". An over-long line is
// consumed up to its newline and reported as errLineTooLong, so the stream
// stays in step with the host.
func readLine(r *bufio.Reader) (string, error) {
	line, err := r.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) {
		for errors.Is(err, bufio.ErrBufferFull) {
			_, err = r.ReadSlice('\n')
		}
		if err != nil {
			return "", err
		}
		return "", errLineTooLong
	}
	if err != nil {
		return "", err
	}
	return strings.TrimRight(string(line), "\r\n"), nil
}

// serveControl keeps the control port open forever. The host connects and
// disconnects its end at will, and a serial port reports no such thing, but
// any error is still retried instead of giving up. A guest started without a
// second serial port still has a /dev/ttyS1 that fails with EIO; that error
// is reported once and then retried quietly, more and more slowly, so the
// consoles stay readable.
func serveControl(path string, a *agent, out printer) {
	const minDelay, maxDelay = time.Second, 16 * time.Second
	delay := minDelay
	last := ""
	for {
		err := serveControlOnce(path, a, out)
		if msg := err.Error(); msg != last {
			out.Printf("LOCO-ERROR agent control %s: %v", path, err)
			last, delay = msg, minDelay
		} else if delay < maxDelay {
			delay *= 2
		}
		time.Sleep(delay)
	}
}

func serveControlOnce(path string, a *agent, out printer) error {
	f, err := os.OpenFile(path, os.O_RDWR|noctty, 0)
	if err != nil {
		return fmt.Errorf("open: %w", err)
	}
	defer f.Close()
	if err := makeRaw(f); err != nil {
		return fmt.Errorf("set raw mode: %w", err)
	}
	out.Printf("LOCO-AGENT control %s ready", path)
	return a.serve(f)
}

// interfaceIPv4 returns the first IPv4 address of iface, "" if it has none.
func interfaceIPv4(iface string) (string, error) {
	ifc, err := net.InterfaceByName(iface)
	if err != nil {
		return "", fmt.Errorf("interface %s: %w", iface, err)
	}
	addrs, err := ifc.Addrs()
	if err != nil {
		return "", fmt.Errorf("addresses of %s: %w", iface, err)
	}
	for _, ad := range addrs {
		if ipn, ok := ad.(*net.IPNet); ok && ipn.IP.To4() != nil {
			return ipn.IP.String(), nil
		}
	}
	return "", nil
}
