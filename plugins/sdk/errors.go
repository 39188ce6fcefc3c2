package sdk

import (
	"context"
	"errors"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Errors a plugin returns, and the daemon receives, as typed gRPC codes.
// Return them wrapped with context (fmt.Errorf("...: %w", ErrOutOfCapacity));
// the daemon tests them with errors.Is.
var (
	// ErrOutOfCapacity: the provider cannot rent more now (quota, no
	// capacity in the zone). The daemon fails fast instead of waiting for a
	// boot timeout. gRPC code ResourceExhausted.
	ErrOutOfCapacity = errors.New("out of capacity")
	// ErrInvalidRequest: the request can never succeed as it is. gRPC code
	// InvalidArgument.
	ErrInvalidRequest = errors.New("invalid request")
	// ErrNothingToDo: the call had no effect because there was nothing to
	// do. gRPC code Aborted.
	ErrNothingToDo = errors.New("nothing to do")
	// ErrUnimplemented: the plugin does not implement an optional call.
	// gRPC code Unimplemented.
	ErrUnimplemented = errors.New("not implemented by the plugin")
)

var sentinels = []struct {
	err  error
	code codes.Code
}{
	{ErrOutOfCapacity, codes.ResourceExhausted},
	{ErrInvalidRequest, codes.InvalidArgument},
	{ErrNothingToDo, codes.Aborted},
	{ErrUnimplemented, codes.Unimplemented},
	{context.DeadlineExceeded, codes.DeadlineExceeded},
	{context.Canceled, codes.Canceled},
}

// ToGRPCError turns an error returned by a plugin implementation into a
// gRPC status error whose code tells the daemon what kind of failure it is.
// Errors that already carry a gRPC status keep it; others become Unknown.
func ToGRPCError(err error) error {
	if err == nil {
		return nil
	}
	for _, s := range sentinels {
		if errors.Is(err, s.err) {
			return status.Error(s.code, err.Error())
		}
	}
	if st, ok := status.FromError(err); ok {
		return st.Err()
	}
	return status.Error(codes.Unknown, err.Error())
}

// FromGRPCError turns an error from a gRPC call into a *RemoteError that
// unwraps to the matching sentinel (ErrOutOfCapacity,
// context.DeadlineExceeded, ...), so callers use errors.Is and never look at
// gRPC codes.
func FromGRPCError(err error) error {
	if err == nil {
		return nil
	}
	st, ok := status.FromError(err)
	if !ok {
		return err
	}
	re := &RemoteError{Code: st.Code(), Message: st.Message()}
	for _, s := range sentinels {
		if s.code == st.Code() {
			re.sentinel = s.err
			break
		}
	}
	return re
}

// RemoteError is an error a plugin call returned.
type RemoteError struct {
	Code     codes.Code
	Message  string
	sentinel error
}

func (e *RemoteError) Error() string {
	if e.Message == "" {
		return e.Code.String()
	}
	return e.Message
}

// Unwrap returns the sentinel error matching the gRPC code, if any.
func (e *RemoteError) Unwrap() error { return e.sentinel }

// GRPCStatus lets grpc's status package see the original code.
func (e *RemoteError) GRPCStatus() *status.Status { return status.New(e.Code, e.Message) }
