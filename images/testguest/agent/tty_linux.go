//go:build linux

package main

import (
	"fmt"
	"os"
	"syscall"
	"unsafe"
)

const noctty = syscall.O_NOCTTY

// crtscts is CRTSCTS from <asm-generic/termbits.h>; package syscall lacks it.
const crtscts = 0x80000000

// makeRaw puts a serial tty into raw 8-bit mode: without it the line
// discipline echoes the host's commands back, mangles CR/LF and treats
// control bytes as signals.
func makeRaw(f *os.File) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return fmt.Errorf("raw conn: %w", err)
	}
	var ioErr error
	err = rc.Control(func(fd uintptr) {
		var t syscall.Termios
		if ioErr = ioctl(fd, syscall.TCGETS, &t); ioErr != nil {
			return
		}
		t.Iflag &^= syscall.IGNBRK | syscall.BRKINT | syscall.PARMRK | syscall.ISTRIP |
			syscall.INLCR | syscall.IGNCR | syscall.ICRNL | syscall.IXON | syscall.IXOFF
		t.Oflag &^= syscall.OPOST
		t.Lflag &^= syscall.ECHO | syscall.ECHONL | syscall.ICANON | syscall.ISIG | syscall.IEXTEN
		t.Cflag &^= syscall.CSIZE | syscall.PARENB | crtscts
		// CLOCAL: no modem lines on an emulated port, so never wait for or
		// hang up on carrier.
		t.Cflag |= syscall.CS8 | syscall.CREAD | syscall.CLOCAL
		t.Cc[syscall.VMIN] = 1
		t.Cc[syscall.VTIME] = 0
		ioErr = ioctl(fd, syscall.TCSETS, &t)
	})
	if err != nil {
		return fmt.Errorf("raw conn control: %w", err)
	}
	return ioErr
}

func ioctl(fd, req uintptr, t *syscall.Termios) error {
	if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, fd, req, uintptr(unsafe.Pointer(t))); e != 0 {
		return e
	}
	return nil
}
