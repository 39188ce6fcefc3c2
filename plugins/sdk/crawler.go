package sdk

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	plugin "github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health/grpc_health_v1"

	"github.com/rpacloud/rpacloud/plugins/sdk/flowstep"
	pb "github.com/rpacloud/rpacloud/plugins/sdk/proto/pluginv1"
)

// Crawler runs one task of a crawler process: a flow of steps against a
// web site (a browser) or a web service (HTTP), with the task's input and
// run-time credentials as variables, inside the pool's network profile.
type Crawler interface {
	// Info describes the plugin. It must work before Configure.
	Info(ctx context.Context) (PluginInfo, error)
	// Configure applies the plugin's configuration attributes.
	Configure(ctx context.Context, cfg map[string]string) ([]ConfigDiagnostic, error)
	// Run runs one attempt. A failure of the task is a RunResult whose
	// Error is set (with any artefacts, such as a screenshot of the failing
	// page); a returned error means the plugin could not do its job at all
	// and is an execution error.
	Run(ctx context.Context, req RunRequest) (RunResult, error)
}

// RunRequest is one attempt of one task.
type RunRequest struct {
	TaskID  string
	Attempt int
	Process string
	Input   json.RawMessage // the task's JSON input
	// Credentials are secrets: name → field → value. Never log, persist
	// or return them.
	Credentials map[string]map[string]string
	Flow        Flow
	Network     *NetworkProfile // nil: no restrictions
	NetworkName string          // the profile's name, for messages
}

// String leaves the credentials out, so a request can be logged.
func (r RunRequest) String() string {
	return fmt.Sprintf("RunRequest{task=%s attempt=%d process=%s flow=%s steps=%d}", r.TaskID, r.Attempt, r.Process, r.Flow.Name, len(r.Flow.Steps))
}

// GoString keeps the credentials out of %#v.
func (r RunRequest) GoString() string { return r.String() }

// Flow is an ordered list of steps, declared by an operator in an HCL
// `flow` block.
type Flow struct {
	Name  string
	Steps []Step
}

// Step actions. Browser crawlers implement all but Request; HTTP crawlers
// implement Request, Extract, Assert and Set.
const (
	ActionNavigate   = "navigate"
	ActionFill       = "fill"
	ActionSelect     = "select"
	ActionClick      = "click"
	ActionWaitFor    = "wait_for"
	ActionExtract    = "extract"
	ActionScreenshot = "screenshot"
	ActionAssert     = "assert"
	ActionRequest    = "request"
)

// Step is one step of a flow; see flowstep.Step. The type lives in that
// stdlib-only package so the configuration loader can produce it without
// linking gRPC.
type Step = flowstep.Step

// ErrorClass tells the dispatcher whether a failed attempt may be retried.
type ErrorClass string

// Error classes.
const (
	// ErrorData: the target rejected the task's data; final, never retried.
	ErrorData ErrorClass = "data"
	// ErrorExecution: anything else; retried on another robot.
	ErrorExecution ErrorClass = "execution"
)

// TaskError is a failed attempt, classified.
type TaskError struct {
	Class   ErrorClass
	Message string
	Step    int // index of the failing step; -1 when no step is to blame
}

func (e *TaskError) Error() string { return string(e.Class) + " error: " + e.Message }

// Artifact is a file kept with the attempt, e.g. a screenshot of the page
// a flow failed on.
type Artifact struct {
	Name        string
	ContentType string
	Data        []byte
}

// RunResult is the outcome of a run.
type RunResult struct {
	Outputs   map[string]string
	Artifacts []Artifact
	Error     *TaskError // nil on success
}

// CrawlerPlugin is the go-plugin glue for the crawler kind.
type CrawlerPlugin struct {
	plugin.NetRPCUnsupportedPlugin
	Impl Crawler // nil on the daemon side
}

var _ plugin.GRPCPlugin = (*CrawlerPlugin)(nil)

// GRPCServer registers the base and crawler services.
func (p *CrawlerPlugin) GRPCServer(_ *plugin.GRPCBroker, s *grpc.Server) error {
	if p.Impl == nil {
		return errors.New("sdk: CrawlerPlugin.Impl is nil")
	}
	srv := &crawlerServer{impl: p.Impl}
	pb.RegisterBaseServer(s, baseServer{info: p.Impl.Info, configure: p.Impl.Configure})
	pb.RegisterCrawlerServer(s, srv)
	return nil
}

// GRPCClient returns a *GRPCCrawlerClient.
func (p *CrawlerPlugin) GRPCClient(_ context.Context, _ *plugin.GRPCBroker, c *grpc.ClientConn) (any, error) {
	return NewGRPCCrawlerClient(c), nil
}

// baseServer answers the Base service for any kind.
type baseServer struct {
	pb.UnimplementedBaseServer
	info      func(context.Context) (PluginInfo, error)
	configure func(context.Context, map[string]string) ([]ConfigDiagnostic, error)
}

func (s baseServer) Info(ctx context.Context, _ *pb.InfoRequest) (*pb.InfoResponse, error) {
	info, err := s.info(ctx)
	if err != nil {
		return nil, ToGRPCError(err)
	}
	return &pb.InfoResponse{Info: infoToProto(info)}, nil
}

func (s baseServer) Configure(ctx context.Context, req *pb.ConfigureRequest) (*pb.ConfigureResponse, error) {
	diags, err := s.configure(ctx, req.GetConfig())
	if err != nil {
		return nil, ToGRPCError(err)
	}
	return &pb.ConfigureResponse{Diagnostics: diagsToProto(diags)}, nil
}

type crawlerServer struct {
	pb.UnimplementedCrawlerServer
	impl Crawler
}

func (s *crawlerServer) Run(ctx context.Context, req *pb.RunRequest) (*pb.RunResponse, error) {
	res, err := s.impl.Run(ctx, runFromProto(req))
	if err != nil {
		return nil, ToGRPCError(err)
	}
	return runResultToProto(res), nil
}

// baseClient is the daemon's side of the Base service, shared by kinds.
type baseClient struct {
	conn *grpc.ClientConn
	base pb.BaseClient
}

// Ping asks the plugin's gRPC health service whether it serves.
func (c baseClient) Ping(ctx context.Context) error {
	_, err := grpc_health_v1.NewHealthClient(c.conn).Check(ctx,
		&grpc_health_v1.HealthCheckRequest{Service: plugin.GRPCServiceName})
	return FromGRPCError(err)
}

// Info returns what the plugin says about itself.
func (c baseClient) Info(ctx context.Context) (PluginInfo, error) {
	resp, err := c.base.Info(ctx, &pb.InfoRequest{})
	if err != nil {
		return PluginInfo{}, FromGRPCError(err)
	}
	return infoFromProto(resp.GetInfo()), nil
}

// Configure sends the plugin its configuration.
func (c baseClient) Configure(ctx context.Context, cfg map[string]string) ([]ConfigDiagnostic, error) {
	resp, err := c.base.Configure(ctx, &pb.ConfigureRequest{Config: cfg})
	if err != nil {
		return nil, FromGRPCError(err)
	}
	return diagsFromProto(resp.GetDiagnostics()), nil
}

// GRPCCrawlerClient is the daemon's side of a crawler plugin.
type GRPCCrawlerClient struct {
	baseClient
	crawler pb.CrawlerClient
}

var _ Crawler = (*GRPCCrawlerClient)(nil)

// NewGRPCCrawlerClient wraps a connection to a crawler plugin.
func NewGRPCCrawlerClient(c *grpc.ClientConn) *GRPCCrawlerClient {
	return &GRPCCrawlerClient{baseClient: baseClient{conn: c, base: pb.NewBaseClient(c)}, crawler: pb.NewCrawlerClient(c)}
}

// Run implements Crawler.
func (c *GRPCCrawlerClient) Run(ctx context.Context, req RunRequest) (RunResult, error) {
	resp, err := c.crawler.Run(ctx, runToProto(req))
	if err != nil {
		return RunResult{}, FromGRPCError(err)
	}
	return runResultFromProto(resp), nil
}

func runToProto(in RunRequest) *pb.RunRequest {
	out := &pb.RunRequest{
		TaskId: in.TaskID, Attempt: int32(in.Attempt), Process: in.Process, Input: in.Input,
		Flow: &pb.Flow{Name: in.Flow.Name}, NetworkName: in.NetworkName,
	}
	if len(in.Credentials) > 0 {
		out.Credentials = make(map[string]*pb.CredentialFields, len(in.Credentials))
		for name, fields := range in.Credentials {
			out.Credentials[name] = &pb.CredentialFields{Fields: fields}
		}
	}
	if n := in.Network; n != nil {
		out.Network = &pb.NetworkProfile{Proxy: n.Proxy, Dns: n.DNS, Allow: n.Allow, Deny: n.Deny}
	}
	for _, s := range in.Flow.Steps {
		out.Flow.Steps = append(out.Flow.Steps, &pb.Step{
			Action: s.Action, Selector: s.Selector, Value: s.Value, Url: s.URL, Attribute: s.Attribute,
			Output: s.Output, TimeoutMs: s.Timeout.Milliseconds(), Method: s.Method, Form: s.Form,
			Json: s.JSON, Headers: s.Headers, Regex: s.Regex, JsonPath: s.JSONPath, State: s.State,
			TextContains: s.TextContains, DataError: s.DataError, Message: s.Message, Source: s.Source,
			Status: int32(s.Status),
		})
	}
	return out
}

func runFromProto(in *pb.RunRequest) RunRequest {
	out := RunRequest{
		TaskID: in.GetTaskId(), Attempt: int(in.GetAttempt()), Process: in.GetProcess(), Input: in.GetInput(),
		Flow: Flow{Name: in.GetFlow().GetName()}, NetworkName: in.GetNetworkName(),
	}
	if len(in.GetCredentials()) > 0 {
		out.Credentials = make(map[string]map[string]string, len(in.GetCredentials()))
		for name, f := range in.GetCredentials() {
			out.Credentials[name] = f.GetFields()
		}
	}
	if n := in.GetNetwork(); n != nil {
		out.Network = &NetworkProfile{Proxy: n.GetProxy(), DNS: n.GetDns(), Allow: n.GetAllow(), Deny: n.GetDeny()}
	}
	for _, s := range in.GetFlow().GetSteps() {
		out.Flow.Steps = append(out.Flow.Steps, Step{
			Action: s.GetAction(), Selector: s.GetSelector(), Value: s.GetValue(), URL: s.GetUrl(),
			Attribute: s.GetAttribute(), Output: s.GetOutput(), Timeout: time.Duration(s.GetTimeoutMs()) * time.Millisecond,
			Method: s.GetMethod(), Form: s.GetForm(), JSON: s.GetJson(), Headers: s.GetHeaders(), Regex: s.GetRegex(),
			JSONPath: s.GetJsonPath(), State: s.GetState(), TextContains: s.GetTextContains(), DataError: s.GetDataError(),
			Message: s.GetMessage(), Source: s.GetSource(), Status: int(s.GetStatus()),
		})
	}
	return out
}

var errorClasses = map[ErrorClass]pb.ErrorClass{
	ErrorData:      pb.ErrorClass_ERROR_CLASS_DATA,
	ErrorExecution: pb.ErrorClass_ERROR_CLASS_EXECUTION,
}

func runResultToProto(in RunResult) *pb.RunResponse {
	out := &pb.RunResponse{Outputs: in.Outputs}
	for _, a := range in.Artifacts {
		out.Artifacts = append(out.Artifacts, &pb.Artifact{Name: a.Name, ContentType: a.ContentType, Data: a.Data})
	}
	if e := in.Error; e != nil {
		out.Error = &pb.TaskError{Class: errorClasses[e.Class], Message: e.Message, Step: int32(e.Step)}
	}
	return out
}

func runResultFromProto(in *pb.RunResponse) RunResult {
	out := RunResult{Outputs: in.GetOutputs()}
	for _, a := range in.GetArtifacts() {
		out.Artifacts = append(out.Artifacts, Artifact{Name: a.GetName(), ContentType: a.GetContentType(), Data: a.GetData()})
	}
	if e := in.GetError(); e != nil {
		// An unknown class (a newer plugin) is an execution error: it may
		// be retried, where a wrong "data" would lose the task for good.
		class := ErrorExecution
		if e.GetClass() == pb.ErrorClass_ERROR_CLASS_DATA {
			class = ErrorData
		}
		out.Error = &TaskError{Class: class, Message: e.GetMessage(), Step: int(e.GetStep())}
	}
	return out
}
