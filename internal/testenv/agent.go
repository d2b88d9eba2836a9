package testenv

import (
	"bufio"
	"fmt"
	"net"
	"strings"
	"sync/atomic"
	"time"
)

var nonces atomic.Int64

// SyncAgent gets in step with the test guest's agent (images/testguest) on
// its console socket: what is sent before the agent has opened its serial
// port is lost, and an earlier client may have left half a line behind, so
// it repeats "echo NONCE" until the nonce comes back. It returns that reply:
// a repeated echo can be answered late, so callers skip further copies.
func SyncAgent(c net.Conn, r *bufio.Reader, timeout time.Duration) (string, error) {
	nonce := fmt.Sprintf("SYNC-%d-%d", time.Now().UnixNano(), nonces.Add(1))
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		fmt.Fprintf(c, "\necho %s\n", nonce)
		c.SetReadDeadline(time.Now().Add(time.Second))
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				break // nothing yet: ask again
			}
			if strings.TrimSpace(line) == "OK "+nonce {
				return "OK " + nonce, nil
			}
		}
	}
	return "", fmt.Errorf("the agent did not answer echo within %s", timeout)
}

// AskAgent dials the agent's console socket, gets in step, sends one command
// and returns its reply line ("OK ..." or "ERR ...").
func AskAgent(sock, command string, replyTimeout time.Duration) (string, error) {
	c, err := net.DialTimeout("unix", sock, 5*time.Second)
	if err != nil {
		return "", fmt.Errorf("dialling the agent: %w", err)
	}
	defer c.Close()
	r := bufio.NewReader(c)
	synced, err := SyncAgent(c, r, time.Minute)
	if err != nil {
		return "", err
	}
	c.SetDeadline(time.Now().Add(replyTimeout))
	if _, err := fmt.Fprintf(c, "%s\n", command); err != nil {
		return "", fmt.Errorf("sending %q: %w", command, err)
	}
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return "", fmt.Errorf("reading the reply to %q: %w", command, err)
		}
		line = strings.TrimSpace(line)
		if line == synced {
			continue // the answer to a repeated echo
		}
		if strings.HasPrefix(line, "OK") || strings.HasPrefix(line, "ERR") {
			return line, nil
		}
	}
}
