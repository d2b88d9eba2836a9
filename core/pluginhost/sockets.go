package pluginhost

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/locolan/loco/internal/proc"
)

// Every plugin process listens on a go-plugin unix socket. go-plugin puts it
// in the temp directory and removes it only when the plugin exits cleanly;
// a SIGKILLed plugin or loco left one behind each time. So each host gets a
// directory of its own, loco-plugin-sockets-<pid>-*, and each launch a
// directory in it (PLUGIN_UNIX_SOCKET_DIR): removed when that process is
// gone, when the host closes, and, after loco itself died, by the next host
// that finds the PID in the name dead.
const socketDirPrefix = "loco-plugin-sockets-"

// socketRoot is the host's socket directory, made at the first launch.
func (h *Host) socketRoot() (string, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.sockRoot != "" {
		return h.sockRoot, nil
	}
	dir, err := os.MkdirTemp("", socketDirPrefix+strconv.Itoa(os.Getpid())+"-")
	if err != nil {
		return "", fmt.Errorf("making the plugins' socket directory: %w", err)
	}
	h.sockRoot = dir
	return dir, nil
}

// launchSocketDir is a fresh directory for one plugin process's socket.
func (h *Host) launchSocketDir(id string) (string, error) {
	root, err := h.socketRoot()
	if err != nil {
		return "", err
	}
	dir, err := os.MkdirTemp(root, strings.ReplaceAll(id, "/", "-")+"-")
	if err != nil {
		return "", fmt.Errorf("making a socket directory for plugin %s: %w", id, err)
	}
	return dir, nil
}

// sweepSocketDirs removes the socket directories of hosts whose process is
// gone. Only this user's: /tmp is shared.
func sweepSocketDirs() {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), socketDirPrefix+"*"))
	for _, d := range dirs {
		pidPart, _, ok := strings.Cut(strings.TrimPrefix(filepath.Base(d), socketDirPrefix), "-")
		pid, err := strconv.Atoi(pidPart)
		if !ok || err != nil || pid == os.Getpid() || proc.Alive(pid) {
			continue
		}
		if fi, err := os.Lstat(d); err != nil || !fi.IsDir() {
			continue
		} else if st, ok := fi.Sys().(*syscall.Stat_t); !ok || int(st.Uid) != os.Getuid() {
			continue
		}
		os.RemoveAll(d)
	}
}
