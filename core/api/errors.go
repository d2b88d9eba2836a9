package api

import (
	"context"
	"errors"
	"net/http"

	"github.com/locolan/loco/sdk"
)

// pluginError maps what a plugin call returned to HTTP: the plugin's own
// words, and a code that tells the client whether to fix the request (4xx),
// wait and retry (409, 503) or complain (5xx). It is the one mapping for
// every route that calls a plugin, on the sdk's sentinel errors.
func pluginError(ctx context.Context, kind string, err error) (int, string) {
	msg := err.Error()
	var re *sdk.RemoteError
	if errors.As(err, &re) {
		msg = re.Message
	}
	switch {
	case errors.Is(err, sdk.ErrInvalid):
		return http.StatusBadRequest, msg
	case errors.Is(err, sdk.ErrNoInstance), errors.Is(err, sdk.ErrNotFound):
		return http.StatusNotFound, msg
	case errors.Is(err, sdk.ErrGuestNotRunning):
		return http.StatusConflict, msg
	case errors.Is(err, sdk.ErrBusy):
		return http.StatusServiceUnavailable, msg
	case errors.Is(err, sdk.ErrNotReady):
		return http.StatusServiceUnavailable, kind + " plugin unavailable, retry: " + msg
	case errors.Is(err, sdk.ErrUnsupported):
		return http.StatusNotImplemented, msg
	case errors.Is(err, context.DeadlineExceeded):
		return http.StatusGatewayTimeout, msg
	case errors.Is(err, context.Canceled):
		if ctx.Err() != nil {
			return 499, msg // the client went away; nobody reads this
		}
		// Not ours: the host closed the connection of a plugin it is
		// restarting, and the next call gets the new one.
		return http.StatusServiceUnavailable, kind + " plugin is restarting, retry: " + msg
	default:
		return http.StatusBadGateway, kind + " plugin: " + msg
	}
}

// writePluginError writes pluginError's verdict; a 503 says when to retry.
func writePluginError(w http.ResponseWriter, r *http.Request, kind string, err error) {
	code, msg := pluginError(r.Context(), kind, err)
	if code == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "1")
	}
	writeError(w, code, msg)
}
