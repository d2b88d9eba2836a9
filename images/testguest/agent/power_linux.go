//go:build linux

package main

import "syscall"

// powerOff flushes the disk and turns the machine off, as a real PC's ACPI
// shutdown would: loco stop then needs no grace period to run out.
func powerOff() {
	syscall.Sync()
	_ = syscall.Reboot(syscall.LINUX_REBOOT_CMD_POWER_OFF)
}
