package cluster

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/locolan/loco/core/spec"
)

// TestLostRaceNamesTheWinner: a loco that loses the race for the state
// directory says who won. The winner writes its PID just after taking the
// lock; the loser used to read the still empty file and say "pid 0".
func TestLostRaceNamesTheWinner(t *testing.T) {
	dir := t.TempDir()
	c := &spec.Cluster{Name: "race", StateDir: dir}
	lock, err := os.OpenFile(filepath.Join(dir, "loco.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	// The winner, a moment after its flock.
	go func() {
		time.Sleep(100 * time.Millisecond)
		lock.WriteAt([]byte(strconv.Itoa(4242)+"\n"), 0)
	}()
	_, err = Open(c, Options{})
	if !errors.Is(err, ErrBusy) || !strings.Contains(err.Error(), "pid 4242") {
		t.Errorf("Open lost the race with: %v; want ErrBusy naming pid 4242", err)
	}
	// A winner that never writes its PID is "another loco", never pid 0.
	lock.Truncate(0)
	if _, err := Open(c, Options{}); !errors.Is(err, ErrBusy) || strings.Contains(err.Error(), "pid 0") || !strings.Contains(err.Error(), "another loco") {
		t.Errorf("Open: %v", err)
	}
}
