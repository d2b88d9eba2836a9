package testenv

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// Go only closes descriptors marked close-on-exec when it starts a
// program; one the test binary inherited without the flag goes on to every
// child, and on from daemons to what they start. `flock LOCK go test`
// hands its lock that way: a QEMU or containerd shim that outlived its test
// then held the machine's shared lock long after the test binary was gone.
// Marking every inherited descriptor close-on-exec when the package loads
// keeps them in the test binary only (flock itself keeps the lock).
func init() {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return
	}
	for _, e := range ents {
		if fd, err := strconv.Atoi(e.Name()); err == nil && fd > 2 {
			syscall.CloseOnExec(fd)
		}
	}
}

// parents maps every process to its parent, from /proc.
func parents() map[int]int {
	m := map[int]int{}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...: comm may hold spaces and parentheses.
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(s[i+1:])
		if len(f) < 2 {
			continue
		}
		if pp, err := strconv.Atoi(f[1]); err == nil {
			m[pid] = pp
		}
	}
	return m
}

// descendants is the pids under root (root excluded), deepest first.
func descendants(root int) []int {
	kids := map[int][]int{}
	for pid, pp := range parents() {
		kids[pp] = append(kids[pp], pid)
	}
	var out []int
	var walk func(int)
	walk = func(p int) {
		for _, c := range kids[p] {
			walk(c)
			out = append(out, c)
		}
	}
	walk(root)
	return out
}

// KillTree SIGKILLs a process and everything under it. The whole tree is
// listed before anything is killed: a child whose parent dies first is
// reparented to init and could not be found from the parent any more.
func KillTree(pid int) {
	for _, p := range append(descendants(pid), pid) {
		syscall.Kill(p, syscall.SIGKILL)
	}
}

// pidsWithArg is the processes whose command line holds arg as one of its
// arguments.
func pidsWithArg(arg string) []int {
	var out []int
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		for _, a := range strings.Split(string(b), "\x00") {
			if a == arg {
				out = append(out, pid)
				break
			}
		}
	}
	return out
}

// ProcessesMentioning lists the processes (pid and command line) whose
// command line contains any of the strings, for tests that check they left
// nothing running.
func ProcessesMentioning(subs ...string) []string {
	var out []string
	self := os.Getpid()
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || len(b) == 0 {
			continue
		}
		line := strings.ReplaceAll(strings.TrimRight(string(b), "\x00"), "\x00", " ")
		for _, s := range subs {
			if strings.Contains(line, s) {
				out = append(out, e.Name()+" "+line)
				break
			}
		}
	}
	return out
}
