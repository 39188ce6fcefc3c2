package sdk

import (
	"reflect"
	"testing"

	pb "github.com/rpacloud/rpacloud/plugins/sdk/proto/pluginv1"
)

// The VM setup and the remote-access endpoint cross the wire intact, and a
// message from an older plugin (neither field) reads as "none".
func TestRemoteAccessAndSetupRoundTrip(t *testing.T) {
	req := CreateRequest{IdempotencyKey: "k", Pool: "tax-rpa", RobotName: "tax-rpa-1",
		Setup: &VMSetup{Software: []string{"UiPath Robot"}, ConfigFiles: []string{`C:\rpa\a.json`}, RemoteAccess: "rdp"}}
	if got := createFromProto(createToProto(req)); !reflect.DeepEqual(got.Setup, req.Setup) {
		t.Fatalf("setup %+v", got.Setup)
	}
	in := Instance{ID: "i-1", State: InstanceRunning, RemoteAccess: &RemoteAccess{Protocol: "rdp", Host: "10.20.3.11", Port: 3389, Username: "rpa"}}
	if got := instanceFromProto(instanceToProto(in)); !reflect.DeepEqual(got.RemoteAccess, in.RemoteAccess) {
		t.Fatalf("remote access %+v", got.RemoteAccess)
	}
	old := instanceFromProto(&pb.Instance{Id: "i-2", State: pb.InstanceState_INSTANCE_STATE_RUNNING})
	if old.RemoteAccess != nil || createFromProto(&pb.CreateRequest{}).Setup != nil {
		t.Fatal("absent fields read as present")
	}
}
