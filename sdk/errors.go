package sdk

import (
	"context"
	"errors"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Kinds of failure a plugin reports. A plugin wraps one of them
// (fmt.Errorf("guest %s: %w", name, sdk.ErrGuestNotRunning)); the SDK turns
// it into a gRPC status on the way out and back into the same sentinel on
// the host's side, so neither side imports gRPC to tell a bad request from
// a broken plugin. An error that wraps none of them is the plugin's own
// failure (codes.Unknown), and the host treats it as such.
var (
	// ErrInvalid: the request itself is wrong (a bad event, an unusable
	// offer, an argument out of range). Retrying it will not help.
	ErrInvalid = errors.New("invalid request")
	// ErrNoInstance: no guest with that index is attached to the plugin.
	ErrNoInstance = errors.New("no such instance")
	// ErrNotFound: something else the request names (a session, a
	// scenario) does not exist.
	ErrNotFound = errors.New("not found")
	// ErrGuestNotRunning: the guest is stopped, paused or has no device the
	// request needs; it may work once the guest runs.
	ErrGuestNotRunning = errors.New("guest not running")
	// ErrNotReady: the plugin cannot serve this yet (not configured,
	// reconfiguring, restarting a component); retry shortly.
	ErrNotReady = errors.New("not ready")
	// ErrBusy: a limit is reached (viewers per guest, concurrent jobs).
	ErrBusy = errors.New("busy")
	// ErrUnsupported: the plugin does not offer this at all.
	ErrUnsupported = errors.New("not supported")
)

// sentinelCodes pairs every sentinel with the gRPC code it travels as; the
// host maps a code back to the first sentinel listed with it.
var sentinelCodes = []struct {
	err  error
	code codes.Code
}{
	{ErrInvalid, codes.InvalidArgument},
	{ErrNoInstance, codes.NotFound},
	{ErrNotFound, codes.NotFound},
	{ErrGuestNotRunning, codes.FailedPrecondition},
	{ErrNotReady, codes.Unavailable},
	{ErrBusy, codes.ResourceExhausted},
	{ErrUnsupported, codes.Unimplemented},
	{context.DeadlineExceeded, codes.DeadlineExceeded},
	{context.Canceled, codes.Canceled},
}

// notFoundInstancePrefix tells the host which of the two NotFound sentinels
// a status stands for.
const notFoundInstancePrefix = "no instance: "

// rpcError turns a plugin's error into a gRPC status: the sentinel it wraps
// decides the code, and everything else is the plugin's own failure.
func rpcError(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok {
		// A status made by gRPC itself or by a plugin that still speaks
		// codes directly: kept as it is.
		return err
	}
	for _, s := range sentinelCodes {
		if errors.Is(err, s.err) {
			msg := err.Error()
			if s.err == ErrNoInstance {
				msg = notFoundInstancePrefix + msg
			}
			return status.Error(s.code, msg)
		}
	}
	return status.Error(codes.Unknown, err.Error())
}

// RemoteError is an error a plugin returned, as the host sees it: the
// plugin's message, and the sentinel its code stands for (errors.Is works
// on it).
type RemoteError struct {
	Kind    error // one of the sentinels above, or nil for the plugin's own failure
	Message string
}

func (e *RemoteError) Error() string { return e.Message }
func (e *RemoteError) Unwrap() error { return e.Kind }

// fromRPC turns a gRPC error from a plugin back into a RemoteError. Errors
// that are not statuses (a broken connection seen by go-plugin) are kept.
func fromRPC(err error) error {
	if err == nil {
		return nil
	}
	st, ok := status.FromError(err)
	if !ok {
		return err
	}
	msg := st.Message()
	switch st.Code() {
	case codes.NotFound:
		if rest, ok := strings.CutPrefix(msg, notFoundInstancePrefix); ok {
			return &RemoteError{Kind: ErrNoInstance, Message: rest}
		}
		return &RemoteError{Kind: ErrNotFound, Message: msg}
	case codes.OutOfRange:
		return &RemoteError{Kind: ErrInvalid, Message: msg}
	case codes.Unknown, codes.Internal:
		return &RemoteError{Message: msg}
	}
	// Unavailable from gRPC itself (the plugin went away) becomes
	// ErrNotReady too: the host restarts plugins, so a retry is right.
	for _, s := range sentinelCodes {
		if s.code == st.Code() {
			return &RemoteError{Kind: s.err, Message: msg}
		}
	}
	return &RemoteError{Message: msg}
}
