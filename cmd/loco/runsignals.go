package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

// runSignals is the context `loco run` supervises under. It ends on SIGINT,
// SIGTERM or SIGHUP: a closed terminal powers the guests down like Ctrl-C,
// because a loco that died with its terminal would leave them running with
// nothing supervising them (`loco run --detach` is the way to outlive a
// terminal; under nohup, which ignores SIGHUP, it stays ignored).
//
// SIGPIPE is caught and dropped, so a write to a closed stdout or stderr
// (`loco run | head -1`, or a `tee` that Ctrl-C killed first) fails with
// EPIPE instead of killing loco: loco's own output is never worth its
// guests. Catching rather than ignoring it keeps SIGPIPE at its default in
// the plugins and QEMUs loco starts.
func runSignals(parent context.Context) (context.Context, context.CancelFunc) {
	pipe := make(chan os.Signal, 1)
	signal.Notify(pipe, syscall.SIGPIPE)
	sigs := []os.Signal{os.Interrupt, syscall.SIGTERM}
	if !signal.Ignored(syscall.SIGHUP) {
		sigs = append(sigs, syscall.SIGHUP)
	}
	ctx, stop := signal.NotifyContext(parent, sigs...)
	return ctx, func() {
		stop()
		// SIGPIPE stays caught: "stopping guests..." still goes to the
		// broken pipe after the context ends.
	}
}
