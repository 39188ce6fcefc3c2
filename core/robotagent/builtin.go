package robotagent

import (
	"context"
	"encoding/json"
	"fmt"
	"time"
)

// Builtin returns the task types every robot has without plugins.
func Builtin() map[string]Runner {
	return map[string]Runner{"noop": Noop{}, "echo": Echo{}}
}

// Noop does nothing and succeeds: for measuring the platform itself.
type Noop struct{}

// Run implements Runner.
func (Noop) Run(ctx context.Context, _ json.RawMessage) (json.RawMessage, error) {
	return json.RawMessage(`{}`), ctx.Err()
}

// Echo returns its input as output. Three optional input fields make it a
// smoke test of the whole path: "sleep_ms" waits that long (respecting the
// deadline), "fail" = "data" or "execution" fails with that class and
// "message" as text.
type Echo struct{}

// Run implements Runner.
func (Echo) Run(ctx context.Context, input json.RawMessage) (json.RawMessage, error) {
	var opts struct {
		SleepMS int    `json:"sleep_ms"`
		Fail    string `json:"fail"`
		Message string `json:"message"`
	}
	if err := json.Unmarshal(input, &opts); err != nil {
		return nil, fmt.Errorf("%w: echo input: %v", ErrData, err)
	}
	if opts.SleepMS > 0 {
		t := time.NewTimer(time.Duration(opts.SleepMS) * time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("echo: %w", ctx.Err())
		case <-t.C:
		}
	}
	switch opts.Fail {
	case "":
	case "data":
		return nil, fmt.Errorf("%w: %s", ErrData, opts.Message)
	case "execution":
		return nil, fmt.Errorf("echo: %s", opts.Message)
	default:
		return nil, fmt.Errorf("%w: echo: fail must be \"data\" or \"execution\", got %q", ErrData, opts.Fail)
	}
	return input, nil
}
