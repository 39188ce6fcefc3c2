package sdk

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	plugin "github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/timestamppb"

	pb "github.com/rpacloud/rpacloud/plugins/sdk/proto/pluginv1"
)

// Vendor speaks to an RPA vendor's orchestrator. A robot runs a vendor
// process with StartJob and follows it with GetJob to a terminal state; the
// monitor polls ListJobs and ListRobots for real-time state.
type Vendor interface {
	Info(ctx context.Context) (PluginInfo, error)
	// Configure applies the vendor block (URL, tenant, folder, client id,
	// and the secrets the daemon resolved from Vault).
	Configure(ctx context.Context, cfg map[string]string) ([]ConfigDiagnostic, error)
	// StartJob starts one job. ErrInvalidRequest when the vendor refused
	// the request as such (unknown process, bad input).
	StartJob(ctx context.Context, req StartJobRequest) (Job, error)
	GetJob(ctx context.Context, id string) (Job, error)
	// StopJob asks the vendor to stop a job; kill forces it.
	StopJob(ctx context.Context, id string, kill bool) error
	// ListJobs returns jobs, newest first, reading every page.
	ListJobs(ctx context.Context, f JobFilter) ([]Job, error)
	ListRobots(ctx context.Context) ([]VendorRobot, error)
}

// StartJobRequest starts one job of a vendor process.
type StartJobRequest struct {
	Package   string          // UiPath release name or key; AA bot file id
	Input     json.RawMessage // JSON object of input arguments
	Robot     string          // optional robot/device name
	Reference string          // our task reference, for the vendor's logs
}

// JobState is a vendor job's state, normalised across vendors.
type JobState string

// Job states.
const (
	JobPending   JobState = "pending"
	JobRunning   JobState = "running"
	JobStopping  JobState = "stopping"
	JobSuspended JobState = "suspended"
	JobSucceeded JobState = "succeeded"
	JobFaulted   JobState = "faulted"
	JobStopped   JobState = "stopped"
	JobUnknown   JobState = "unknown"
)

// Terminal reports whether the job has ended.
func (s JobState) Terminal() bool {
	return s == JobSucceeded || s == JobFaulted || s == JobStopped
}

// Job is one vendor job.
type Job struct {
	ID          string
	Package     string
	Robot       string
	Machine     string
	State       JobState
	VendorState string // the vendor's own name: "Faulted", "RUN_FAILED", ...
	CreatedAt   time.Time
	StartedAt   time.Time
	EndedAt     time.Time
	Info        string // the vendor's message, e.g. the fault reason
	Output      json.RawMessage
}

// JobFilter narrows ListJobs.
type JobFilter struct {
	States []JobState // empty = all
	Since  time.Time  // created at or after; zero = no bound
	Limit  int        // 0 = no limit
}

// RobotState is a vendor robot's state, normalised.
type RobotState string

// Robot states.
const (
	RobotAvailable    RobotState = "available"
	RobotBusy         RobotState = "busy"
	RobotDisconnected RobotState = "disconnected"
	RobotUnresponsive RobotState = "unresponsive"
	RobotUnknown      RobotState = "unknown"
)

// VendorRobot is a robot (UiPath) or device (AA) the vendor knows.
type VendorRobot struct {
	ID          string
	Name        string
	Machine     string
	State       RobotState
	VendorState string
}

// VendorPlugin is the go-plugin glue for the vendor kind.
type VendorPlugin struct {
	plugin.NetRPCUnsupportedPlugin
	Impl Vendor // nil on the daemon side
}

var _ plugin.GRPCPlugin = (*VendorPlugin)(nil)

// GRPCServer registers the base and vendor services.
func (p *VendorPlugin) GRPCServer(_ *plugin.GRPCBroker, s *grpc.Server) error {
	if p.Impl == nil {
		return errors.New("sdk: VendorPlugin.Impl is nil")
	}
	pb.RegisterBaseServer(s, baseServer{info: p.Impl.Info, configure: p.Impl.Configure})
	pb.RegisterVendorServer(s, &vendorServer{impl: p.Impl})
	return nil
}

// GRPCClient returns a *GRPCVendorClient.
func (p *VendorPlugin) GRPCClient(_ context.Context, _ *plugin.GRPCBroker, c *grpc.ClientConn) (any, error) {
	return NewGRPCVendorClient(c), nil
}

type vendorServer struct {
	pb.UnimplementedVendorServer
	impl Vendor
}

func (s *vendorServer) StartJob(ctx context.Context, req *pb.StartJobRequest) (*pb.JobResponse, error) {
	j, err := s.impl.StartJob(ctx, StartJobRequest{Package: req.GetPackage(), Input: req.GetInput(), Robot: req.GetRobot(), Reference: req.GetReference()})
	if err != nil {
		return nil, ToGRPCError(err)
	}
	return &pb.JobResponse{Job: jobToProto(j)}, nil
}

func (s *vendorServer) GetJob(ctx context.Context, req *pb.GetJobRequest) (*pb.JobResponse, error) {
	j, err := s.impl.GetJob(ctx, req.GetId())
	if err != nil {
		return nil, ToGRPCError(err)
	}
	return &pb.JobResponse{Job: jobToProto(j)}, nil
}

func (s *vendorServer) StopJob(ctx context.Context, req *pb.StopJobRequest) (*pb.StopJobResponse, error) {
	if err := s.impl.StopJob(ctx, req.GetId(), req.GetKill()); err != nil {
		return nil, ToGRPCError(err)
	}
	return &pb.StopJobResponse{}, nil
}

func (s *vendorServer) ListJobs(ctx context.Context, req *pb.ListJobsRequest) (*pb.ListJobsResponse, error) {
	f := JobFilter{Limit: int(req.GetLimit())}
	for _, st := range req.GetStates() {
		f.States = append(f.States, JobState(st))
	}
	if ts := req.GetSince(); ts != nil {
		f.Since = ts.AsTime()
	}
	jobs, err := s.impl.ListJobs(ctx, f)
	if err != nil {
		return nil, ToGRPCError(err)
	}
	out := &pb.ListJobsResponse{}
	for _, j := range jobs {
		out.Jobs = append(out.Jobs, jobToProto(j))
	}
	return out, nil
}

func (s *vendorServer) ListRobots(ctx context.Context, _ *pb.ListRobotsRequest) (*pb.ListRobotsResponse, error) {
	robots, err := s.impl.ListRobots(ctx)
	if err != nil {
		return nil, ToGRPCError(err)
	}
	out := &pb.ListRobotsResponse{}
	for _, r := range robots {
		out.Robots = append(out.Robots, &pb.VendorRobot{Id: r.ID, Name: r.Name, Machine: r.Machine, State: string(r.State), VendorState: r.VendorState})
	}
	return out, nil
}

// GRPCVendorClient is the daemon's side of a vendor plugin.
type GRPCVendorClient struct {
	baseClient
	vendor pb.VendorClient
}

var _ Vendor = (*GRPCVendorClient)(nil)

// NewGRPCVendorClient wraps a connection to a vendor plugin.
func NewGRPCVendorClient(c *grpc.ClientConn) *GRPCVendorClient {
	return &GRPCVendorClient{baseClient: baseClient{conn: c, base: pb.NewBaseClient(c)}, vendor: pb.NewVendorClient(c)}
}

// StartJob implements Vendor.
func (c *GRPCVendorClient) StartJob(ctx context.Context, req StartJobRequest) (Job, error) {
	resp, err := c.vendor.StartJob(ctx, &pb.StartJobRequest{Package: req.Package, Input: req.Input, Robot: req.Robot, Reference: req.Reference})
	if err != nil {
		return Job{}, FromGRPCError(err)
	}
	return jobFromProto(resp.GetJob()), nil
}

// GetJob implements Vendor.
func (c *GRPCVendorClient) GetJob(ctx context.Context, id string) (Job, error) {
	resp, err := c.vendor.GetJob(ctx, &pb.GetJobRequest{Id: id})
	if err != nil {
		return Job{}, FromGRPCError(err)
	}
	return jobFromProto(resp.GetJob()), nil
}

// StopJob implements Vendor.
func (c *GRPCVendorClient) StopJob(ctx context.Context, id string, kill bool) error {
	_, err := c.vendor.StopJob(ctx, &pb.StopJobRequest{Id: id, Kill: kill})
	return FromGRPCError(err)
}

// ListJobs implements Vendor.
func (c *GRPCVendorClient) ListJobs(ctx context.Context, f JobFilter) ([]Job, error) {
	req := &pb.ListJobsRequest{Limit: int32(f.Limit)}
	for _, s := range f.States {
		req.States = append(req.States, string(s))
	}
	if !f.Since.IsZero() {
		req.Since = timestamppb.New(f.Since)
	}
	resp, err := c.vendor.ListJobs(ctx, req)
	if err != nil {
		return nil, FromGRPCError(err)
	}
	out := make([]Job, 0, len(resp.GetJobs()))
	for _, j := range resp.GetJobs() {
		out = append(out, jobFromProto(j))
	}
	return out, nil
}

// ListRobots implements Vendor.
func (c *GRPCVendorClient) ListRobots(ctx context.Context) ([]VendorRobot, error) {
	resp, err := c.vendor.ListRobots(ctx, &pb.ListRobotsRequest{})
	if err != nil {
		return nil, FromGRPCError(err)
	}
	out := make([]VendorRobot, 0, len(resp.GetRobots()))
	for _, r := range resp.GetRobots() {
		out = append(out, VendorRobot{ID: r.GetId(), Name: r.GetName(), Machine: r.GetMachine(), State: RobotState(r.GetState()), VendorState: r.GetVendorState()})
	}
	return out, nil
}

func ts(t time.Time) *timestamppb.Timestamp {
	if t.IsZero() {
		return nil
	}
	return timestamppb.New(t)
}

func fromTS(t *timestamppb.Timestamp) time.Time {
	if t == nil {
		return time.Time{}
	}
	return t.AsTime()
}

func jobToProto(j Job) *pb.Job {
	return &pb.Job{
		Id: j.ID, Package: j.Package, Robot: j.Robot, Machine: j.Machine, State: string(j.State),
		VendorState: j.VendorState, CreatedAt: ts(j.CreatedAt), StartedAt: ts(j.StartedAt), EndedAt: ts(j.EndedAt),
		Info: j.Info, Output: j.Output,
	}
}

func jobFromProto(j *pb.Job) Job {
	st := JobState(j.GetState())
	switch st {
	case JobPending, JobRunning, JobStopping, JobSuspended, JobSucceeded, JobFaulted, JobStopped:
	default:
		st = JobUnknown
	}
	return Job{
		ID: j.GetId(), Package: j.GetPackage(), Robot: j.GetRobot(), Machine: j.GetMachine(), State: st,
		VendorState: j.GetVendorState(), CreatedAt: fromTS(j.GetCreatedAt()), StartedAt: fromTS(j.GetStartedAt()),
		EndedAt: fromTS(j.GetEndedAt()), Info: j.GetInfo(), Output: j.GetOutput(),
	}
}
