package sdk_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/rpacloud/rpacloud/plugins/sdk"
	"github.com/rpacloud/rpacloud/plugins/sdk/sdktest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestMemoryProviderContract(t *testing.T) {
	sdktest.RunProviderContract(t, sdktest.ProviderContract{
		New:      func(*testing.T) sdk.Provider { return sdktest.NewMemoryProvider("memory") },
		Name:     "memory",
		Config:   map[string]string{"max_instances": "3"},
		Capacity: 3,
	})
}

// stub lets each test choose what the plugin side does.
type stub struct {
	sdktest.MemoryProvider
	create func(ctx context.Context, req sdk.CreateRequest) (sdk.Instance, error)
}

func (s *stub) Create(ctx context.Context, req sdk.CreateRequest) (sdk.Instance, error) {
	return s.create(ctx, req)
}

func TestErrorsCrossTheWire(t *testing.T) {
	cases := []struct {
		name string
		err  error
		want error
		code codes.Code
	}{
		{"capacity", fmt.Errorf("zone eu-1 is full: %w", sdk.ErrOutOfCapacity), sdk.ErrOutOfCapacity, codes.ResourceExhausted},
		{"invalid", fmt.Errorf("pool is empty: %w", sdk.ErrInvalidRequest), sdk.ErrInvalidRequest, codes.InvalidArgument},
		{"noop", sdk.ErrNothingToDo, sdk.ErrNothingToDo, codes.Aborted},
		{"plain", errors.New("cloud said no"), nil, codes.Unknown},
		{"status", status.Error(codes.PermissionDenied, "bad key"), nil, codes.PermissionDenied},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := sdktest.Connect(t, &stub{create: func(context.Context, sdk.CreateRequest) (sdk.Instance, error) {
				return sdk.Instance{}, tc.err
			}})
			_, err := p.Create(context.Background(), sdk.CreateRequest{IdempotencyKey: "k"})
			if err == nil {
				t.Fatal("no error")
			}
			if tc.want != nil && !errors.Is(err, tc.want) {
				t.Errorf("errors.Is(%v, %v) = false", err, tc.want)
			}
			if got := status.Code(err); got != tc.code {
				t.Errorf("code = %v, want %v", got, tc.code)
			}
			if !strings.Contains(err.Error(), strings.TrimPrefix(tc.err.Error(), "rpc error: code = PermissionDenied desc = ")) {
				t.Errorf("message %q lost the plugin's %q", err, tc.err)
			}
		})
	}
}

func TestDeadlineCrossesTheWire(t *testing.T) {
	p := sdktest.Connect(t, &stub{create: func(ctx context.Context, _ sdk.CreateRequest) (sdk.Instance, error) {
		<-ctx.Done() // the plugin sees the daemon's deadline
		return sdk.Instance{}, ctx.Err()
	}})
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err := p.Create(ctx, sdk.CreateRequest{IdempotencyKey: "k"})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want context.DeadlineExceeded", err)
	}
}

func TestRequestRoundTrip(t *testing.T) {
	var got sdk.CreateRequest
	p := sdktest.Connect(t, &stub{create: func(_ context.Context, req sdk.CreateRequest) (sdk.Instance, error) {
		got = req
		return sdk.Instance{ID: "i-1", IdempotencyKey: req.IdempotencyKey, State: sdk.InstanceCreating,
			CreatedAt: time.Date(2030, 1, 2, 3, 4, 5, 6, time.UTC)}, nil
	}})
	req := sdk.CreateRequest{
		IdempotencyKey: "k1", Pool: "p", RobotName: "r", ServerURL: "http://d", RobotToken: "tok",
		Labels:  map[string]string{"a": "b"},
		Network: &sdk.NetworkProfile{Proxy: "http://proxy:3128", DNS: []string{"10.0.0.2"}, Allow: []string{"*.gov"}, Deny: []string{"*"}},
	}
	in, err := p.Create(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprintf("%#v|%v", got.Network, got.Labels) != fmt.Sprintf("%#v|%v", req.Network, req.Labels) ||
		got.RobotToken != "tok" || got.ServerURL != "http://d" || got.Pool != "p" || got.RobotName != "r" {
		t.Errorf("plugin got %+v %+v, sent %+v %+v", got, got.Network, req, req.Network)
	}
	if in.ID != "i-1" || in.State != sdk.InstanceCreating || !in.CreatedAt.Equal(time.Date(2030, 1, 2, 3, 4, 5, 6, time.UTC)) {
		t.Errorf("instance = %+v", in)
	}
	if err := p.Ping(context.Background()); err != nil {
		t.Errorf("Ping: %v", err)
	}
}

func TestRequestStringHidesToken(t *testing.T) {
	req := sdk.CreateRequest{IdempotencyKey: "k", RobotToken: "s3cret"}
	for _, s := range []string{fmt.Sprint(req), fmt.Sprintf("%+v", req), fmt.Sprintf("%#v", req), fmt.Sprintf("%v", &req)} {
		if strings.Contains(s, "s3cret") {
			t.Errorf("formatted request shows the token: %s", s)
		}
	}
}

func TestUnknownStateReadsAsFailed(t *testing.T) {
	p := sdktest.Connect(t, &stub{create: func(context.Context, sdk.CreateRequest) (sdk.Instance, error) {
		return sdk.Instance{ID: "i", State: "hibernating"}, nil
	}})
	in, err := p.Create(context.Background(), sdk.CreateRequest{IdempotencyKey: "k"})
	if err != nil {
		t.Fatal(err)
	}
	if in.State != sdk.InstanceFailed {
		t.Errorf("state = %q, want failed", in.State)
	}
}
