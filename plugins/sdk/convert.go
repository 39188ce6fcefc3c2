package sdk

import (
	"google.golang.org/protobuf/types/known/timestamppb"

	pb "github.com/rpacloud/rpacloud/plugins/sdk/proto/pluginv1"
)

var attrTypes = map[AttributeType]pb.AttributeType{
	TypeString:   pb.AttributeType_ATTRIBUTE_TYPE_STRING,
	TypeNumber:   pb.AttributeType_ATTRIBUTE_TYPE_NUMBER,
	TypeBool:     pb.AttributeType_ATTRIBUTE_TYPE_BOOL,
	TypeDuration: pb.AttributeType_ATTRIBUTE_TYPE_DURATION,
	TypeList:     pb.AttributeType_ATTRIBUTE_TYPE_LIST,
}

var instanceStates = map[InstanceState]pb.InstanceState{
	InstanceCreating: pb.InstanceState_INSTANCE_STATE_CREATING,
	InstanceRunning:  pb.InstanceState_INSTANCE_STATE_RUNNING,
	InstanceDeleting: pb.InstanceState_INSTANCE_STATE_DELETING,
	InstanceDeleted:  pb.InstanceState_INSTANCE_STATE_DELETED,
	InstanceFailed:   pb.InstanceState_INSTANCE_STATE_FAILED,
}

func infoToProto(in PluginInfo) *pb.PluginInfo {
	out := &pb.PluginInfo{
		Kind:          in.Kind,
		Name:          in.Name,
		PluginVersion: in.PluginVersion,
		Capabilities:  in.Capabilities,
	}
	for _, v := range in.APIVersions {
		out.ApiVersions = append(out.ApiVersions, int32(v))
	}
	for _, a := range in.ConfigSchema {
		out.ConfigSchema = append(out.ConfigSchema, &pb.ConfigAttribute{
			Name: a.Name, Type: attrTypes[a.Type], Required: a.Required,
			Description: a.Description, Default: a.Default, Sensitive: a.Sensitive,
		})
	}
	return out
}

func infoFromProto(in *pb.PluginInfo) PluginInfo {
	out := PluginInfo{
		Kind:          in.GetKind(),
		Name:          in.GetName(),
		PluginVersion: in.GetPluginVersion(),
		Capabilities:  in.GetCapabilities(),
	}
	for _, v := range in.GetApiVersions() {
		out.APIVersions = append(out.APIVersions, int(v))
	}
	for _, a := range in.GetConfigSchema() {
		var t AttributeType
		for k, v := range attrTypes {
			if v == a.GetType() {
				t = k
			}
		}
		out.ConfigSchema = append(out.ConfigSchema, ConfigAttribute{
			Name: a.GetName(), Type: t, Required: a.GetRequired(),
			Description: a.GetDescription(), Default: a.GetDefault(), Sensitive: a.GetSensitive(),
		})
	}
	return out
}

func diagsToProto(in []ConfigDiagnostic) []*pb.Diagnostic {
	out := make([]*pb.Diagnostic, 0, len(in))
	for _, d := range in {
		out = append(out, &pb.Diagnostic{Attribute: d.Attribute, Message: d.Message})
	}
	return out
}

func diagsFromProto(in []*pb.Diagnostic) []ConfigDiagnostic {
	var out []ConfigDiagnostic
	for _, d := range in {
		out = append(out, ConfigDiagnostic{Attribute: d.GetAttribute(), Message: d.GetMessage()})
	}
	return out
}

func createToProto(in CreateRequest) *pb.CreateRequest {
	out := &pb.CreateRequest{
		IdempotencyKey: in.IdempotencyKey,
		Pool:           in.Pool,
		RobotName:      in.RobotName,
		ServerUrl:      in.ServerURL,
		RobotToken:     in.RobotToken,
		Labels:         in.Labels,
	}
	if n := in.Network; n != nil {
		out.Network = &pb.NetworkProfile{Proxy: n.Proxy, Dns: n.DNS, Allow: n.Allow, Deny: n.Deny}
	}
	if su := in.Setup; su != nil {
		out.Setup = &pb.VMSetup{Software: su.Software, ConfigFiles: su.ConfigFiles, RemoteAccess: su.RemoteAccess}
	}
	return out
}

func createFromProto(in *pb.CreateRequest) CreateRequest {
	out := CreateRequest{
		IdempotencyKey: in.GetIdempotencyKey(),
		Pool:           in.GetPool(),
		RobotName:      in.GetRobotName(),
		ServerURL:      in.GetServerUrl(),
		RobotToken:     in.GetRobotToken(),
		Labels:         in.GetLabels(),
	}
	if n := in.GetNetwork(); n != nil {
		out.Network = &NetworkProfile{Proxy: n.GetProxy(), DNS: n.GetDns(), Allow: n.GetAllow(), Deny: n.GetDeny()}
	}
	if su := in.GetSetup(); su != nil {
		out.Setup = &VMSetup{Software: su.GetSoftware(), ConfigFiles: su.GetConfigFiles(), RemoteAccess: su.GetRemoteAccess()}
	}
	return out
}

func instanceToProto(in Instance) *pb.Instance {
	out := &pb.Instance{
		Id:             in.ID,
		IdempotencyKey: in.IdempotencyKey,
		Pool:           in.Pool,
		RobotName:      in.RobotName,
		State:          instanceStates[in.State],
		Address:        in.Address,
		Error:          in.Error,
	}
	if !in.CreatedAt.IsZero() {
		out.CreatedAt = timestamppb.New(in.CreatedAt)
	}
	if ra := in.RemoteAccess; ra != nil {
		out.RemoteAccess = &pb.RemoteAccess{Protocol: ra.Protocol, Host: ra.Host, Port: int32(ra.Port), Username: ra.Username}
	}
	return out
}

func instanceFromProto(in *pb.Instance) Instance {
	out := Instance{
		ID:             in.GetId(),
		IdempotencyKey: in.GetIdempotencyKey(),
		Pool:           in.GetPool(),
		RobotName:      in.GetRobotName(),
		Address:        in.GetAddress(),
		Error:          in.GetError(),
	}
	if ra := in.GetRemoteAccess(); ra != nil {
		out.RemoteAccess = &RemoteAccess{Protocol: ra.GetProtocol(), Host: ra.GetHost(), Port: int(ra.GetPort()), Username: ra.GetUsername()}
	}
	// A state this SDK does not know (a newer plugin) reads as failed, so
	// the daemon never counts an instance it does not understand as
	// capacity.
	out.State = InstanceFailed
	for k, v := range instanceStates {
		if v == in.GetState() {
			out.State = k
		}
	}
	if out.State == InstanceFailed && in.GetState() != pb.InstanceState_INSTANCE_STATE_FAILED && out.Error == "" {
		out.Error = "unknown instance state " + in.GetState().String()
	}
	if ts := in.GetCreatedAt(); ts != nil {
		out.CreatedAt = ts.AsTime()
	}
	return out
}
