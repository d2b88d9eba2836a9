package cluster

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/locolan/loco/core/runtime"
	"github.com/locolan/loco/core/runtime/containerd"
	"github.com/locolan/loco/core/runtime/process"
	"github.com/locolan/loco/core/spec"
)

// ContainerdState is where a containerd cluster's guests live, kept in the
// state file so that status and stop find them without the spec.
type ContainerdState struct {
	Address     string `json:"address"`
	Namespace   string `json:"namespace"`
	Snapshotter string `json:"snapshotter"`
}

func containerdState(c *spec.Cluster) *ContainerdState {
	if c.Runtime.Driver != "containerd" {
		return nil
	}
	return &ContainerdState{Address: c.Runtime.Address, Namespace: c.Runtime.Namespace, Snapshotter: c.Runtime.Snapshotter}
}

// newRuntime is the driver the spec (or, offline, the state file) names.
func newRuntime(log *slog.Logger, cluster string, cs *ContainerdState) runtime.Runtime {
	if cs == nil {
		return process.New(log)
	}
	return containerd.New(log, containerd.Config{Address: cs.Address, Namespace: cs.Namespace, Snapshotter: cs.Snapshotter, Cluster: cluster})
}

// CheckRuntime says whether the spec's runtime can be reached: for
// containerd, that its daemon answers (and if not, how to start it).
func CheckRuntime(ctx context.Context, c *spec.Cluster) error {
	if c.Runtime.Driver != "containerd" {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := containerd.Check(ctx, c.Runtime.Address); err != nil {
		return fmt.Errorf("runtime \"containerd\": %w", err)
	}
	return nil
}
