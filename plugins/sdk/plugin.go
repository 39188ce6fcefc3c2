package sdk

import (
	"context"
	"errors"

	plugin "github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health/grpc_health_v1"

	pb "github.com/rpacloud/rpacloud/plugins/sdk/proto/pluginv1"
)

// ProviderPlugin is the go-plugin glue for the provider kind. Plugins use
// it through ServeProvider; the daemon dispenses it to get a
// *GRPCProviderClient.
type ProviderPlugin struct {
	plugin.NetRPCUnsupportedPlugin
	Impl Provider // nil on the daemon side
}

var _ plugin.GRPCPlugin = (*ProviderPlugin)(nil)

// GRPCServer registers the base and provider services.
func (p *ProviderPlugin) GRPCServer(_ *plugin.GRPCBroker, s *grpc.Server) error {
	if p.Impl == nil {
		return errors.New("sdk: ProviderPlugin.Impl is nil")
	}
	srv := &providerServer{impl: p.Impl}
	pb.RegisterBaseServer(s, srv)
	pb.RegisterProviderServer(s, srv)
	return nil
}

// GRPCClient returns a *GRPCProviderClient.
func (p *ProviderPlugin) GRPCClient(_ context.Context, _ *plugin.GRPCBroker, c *grpc.ClientConn) (any, error) {
	return NewGRPCProviderClient(c), nil
}

type providerServer struct {
	pb.UnimplementedBaseServer
	pb.UnimplementedProviderServer
	impl Provider
}

func (s *providerServer) Info(ctx context.Context, _ *pb.InfoRequest) (*pb.InfoResponse, error) {
	info, err := s.impl.Info(ctx)
	if err != nil {
		return nil, ToGRPCError(err)
	}
	return &pb.InfoResponse{Info: infoToProto(info)}, nil
}

func (s *providerServer) Configure(ctx context.Context, req *pb.ConfigureRequest) (*pb.ConfigureResponse, error) {
	diags, err := s.impl.Configure(ctx, req.GetConfig())
	if err != nil {
		return nil, ToGRPCError(err)
	}
	return &pb.ConfigureResponse{Diagnostics: diagsToProto(diags)}, nil
}

func (s *providerServer) Create(ctx context.Context, req *pb.CreateRequest) (*pb.CreateResponse, error) {
	in, err := s.impl.Create(ctx, createFromProto(req))
	if err != nil {
		return nil, ToGRPCError(err)
	}
	return &pb.CreateResponse{Instance: instanceToProto(in)}, nil
}

func (s *providerServer) Destroy(ctx context.Context, req *pb.DestroyRequest) (*pb.DestroyResponse, error) {
	if err := s.impl.Destroy(ctx, req.GetInstanceIds()); err != nil {
		return nil, ToGRPCError(err)
	}
	return &pb.DestroyResponse{}, nil
}

func (s *providerServer) List(ctx context.Context, _ *pb.ListRequest) (*pb.ListResponse, error) {
	list, err := s.impl.List(ctx)
	if err != nil {
		return nil, ToGRPCError(err)
	}
	out := &pb.ListResponse{Instances: make([]*pb.Instance, 0, len(list))}
	for _, in := range list {
		out.Instances = append(out.Instances, instanceToProto(in))
	}
	return out, nil
}

// GRPCProviderClient is the daemon's side of a provider plugin: it
// implements Provider over a gRPC connection and returns errors that
// unwrap to this package's sentinels.
type GRPCProviderClient struct {
	conn *grpc.ClientConn
	base pb.BaseClient
	prov pb.ProviderClient
}

var _ Provider = (*GRPCProviderClient)(nil)

// NewGRPCProviderClient wraps a connection to a provider plugin.
func NewGRPCProviderClient(c *grpc.ClientConn) *GRPCProviderClient {
	return &GRPCProviderClient{conn: c, base: pb.NewBaseClient(c), prov: pb.NewProviderClient(c)}
}

// Ping asks the plugin's gRPC health service whether it serves. It is
// go-plugin's ClientProtocol.Ping with a context, so a plugin that stopped
// answering cannot hang the caller.
func (c *GRPCProviderClient) Ping(ctx context.Context) error {
	_, err := grpc_health_v1.NewHealthClient(c.conn).Check(ctx,
		&grpc_health_v1.HealthCheckRequest{Service: plugin.GRPCServiceName})
	return FromGRPCError(err)
}

// Info implements Provider.
func (c *GRPCProviderClient) Info(ctx context.Context) (PluginInfo, error) {
	resp, err := c.base.Info(ctx, &pb.InfoRequest{})
	if err != nil {
		return PluginInfo{}, FromGRPCError(err)
	}
	return infoFromProto(resp.GetInfo()), nil
}

// Configure implements Provider.
func (c *GRPCProviderClient) Configure(ctx context.Context, cfg map[string]string) ([]ConfigDiagnostic, error) {
	resp, err := c.base.Configure(ctx, &pb.ConfigureRequest{Config: cfg})
	if err != nil {
		return nil, FromGRPCError(err)
	}
	return diagsFromProto(resp.GetDiagnostics()), nil
}

// Create implements Provider.
func (c *GRPCProviderClient) Create(ctx context.Context, req CreateRequest) (Instance, error) {
	resp, err := c.prov.Create(ctx, createToProto(req))
	if err != nil {
		return Instance{}, FromGRPCError(err)
	}
	return instanceFromProto(resp.GetInstance()), nil
}

// Destroy implements Provider.
func (c *GRPCProviderClient) Destroy(ctx context.Context, instanceIDs []string) error {
	_, err := c.prov.Destroy(ctx, &pb.DestroyRequest{InstanceIds: instanceIDs})
	return FromGRPCError(err)
}

// List implements Provider.
func (c *GRPCProviderClient) List(ctx context.Context) ([]Instance, error) {
	resp, err := c.prov.List(ctx, &pb.ListRequest{})
	if err != nil {
		return nil, FromGRPCError(err)
	}
	out := make([]Instance, 0, len(resp.GetInstances()))
	for _, in := range resp.GetInstances() {
		out = append(out, instanceFromProto(in))
	}
	return out, nil
}
