package process

import (
	"log/slog"
	"testing"

	"github.com/locolan/loco/core/runtime"
	"github.com/locolan/loco/core/runtime/runtimetest"
)

func TestConformance(t *testing.T) {
	runtimetest.Run(t, func(log *slog.Logger) runtime.Runtime { return New(log) })
}
