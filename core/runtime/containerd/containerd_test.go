package containerd

import (
	"log/slog"
	"testing"

	"github.com/locolan/loco/core/runtime"
	"github.com/locolan/loco/core/runtime/runtimetest"
	"github.com/locolan/loco/internal/testenv"
)

func TestConformance(t *testing.T) {
	cd := testenv.StartContainerd(t)
	runtimetest.Run(t, func(log *slog.Logger) runtime.Runtime {
		return New(log, Config{Address: cd.Address, Namespace: "loco-test", Cluster: "rt"})
	})
}
