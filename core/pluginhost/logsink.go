package pluginhost

import (
	"context"
	"fmt"
	"io"
	"log/slog"

	"github.com/hashicorp/go-hclog"
)

// hclogFor gives go-plugin an hclog logger whose lines, including those it
// relays from the plugin's stderr, land in the core's slog under the plugin's
// name.
func hclogFor(log *slog.Logger, id string) hclog.Logger {
	l := hclog.NewInterceptLogger(&hclog.LoggerOptions{Name: "plugin." + id, Output: io.Discard, Level: hclog.Debug})
	l.RegisterSink(&slogSink{log: log.With("plugin", id), own: "plugin." + id})
	return l
}

// slogSink forwards hclog lines to slog. Lines from go-plugin itself (logger
// named exactly own) are lifecycle chatter and go to debug; lines the plugin
// wrote keep their level.
type slogSink struct {
	log *slog.Logger
	own string
}

func (s *slogSink) Accept(name string, level hclog.Level, msg string, args ...any) {
	var lvl slog.Level
	switch level {
	case hclog.Trace, hclog.Debug:
		lvl = slog.LevelDebug
	case hclog.Info:
		lvl = slog.LevelInfo
	case hclog.Warn:
		lvl = slog.LevelWarn
	default:
		lvl = slog.LevelError
	}
	if name == s.own && lvl < slog.LevelWarn {
		lvl = slog.LevelDebug
	}
	attrs := make([]any, 0, len(args)+2)
	for i := 0; i+1 < len(args); i += 2 {
		attrs = append(attrs, fmt.Sprint(args[i]), args[i+1])
	}
	attrs = append(attrs, "logger", name)
	s.log.Log(context.Background(), lvl, msg, attrs...)
}
