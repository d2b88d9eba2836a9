// Package runtime defines how a planned guest is realised: started, found
// again after loco restarts, stopped, destroyed. Drivers (process and
// containerd; Kubernetes later) implement Runtime.
package runtime

import (
	"context"
	"time"

	"github.com/locolan/loco/core/plan"
)

// Runtime runs guests.
type Runtime interface {
	// Start boots a guest that is not running. Its disk overlay is created
	// when missing and reused when present, so a guest's disk survives.
	Start(ctx context.Context, g plan.Guest) (Guest, error)
	// Find returns the guest if it is already running and its identity
	// checks out (not only its PID), so loco can reattach without a reboot.
	Find(ctx context.Context, g plan.Guest) (Guest, bool, error)
	// Stop powers the guest down: ACPI power button, up to grace, then quit,
	// then kill. It returns when the guest is gone.
	Stop(ctx context.Context, g Guest, grace time.Duration) error
	// Destroy deletes what Start created for the guest that cannot be
	// recreated from the plan: its disk overlay. The base disk is never
	// touched. The guest must not be running.
	Destroy(ctx context.Context, g plan.Guest) error
}

// Guest is a running guest.
type Guest interface {
	PID() int
	// Started is when the guest process started.
	Started() time.Time
	// Exited is closed when the guest process is gone.
	Exited() <-chan struct{}
	// ExitReason says how it ended, once Exited is closed.
	ExitReason() string
	// Reattached is true when the guest was found running, not started.
	Reattached() bool
}
