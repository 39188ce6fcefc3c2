package robotwire

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/rpacloud/rpacloud/plugins/sdk"
)

// Claim is a task handed to a robot by claimTask.
type Claim struct {
	// TaskID travels as a GraphQL ID, a JSON string.
	TaskID             int             `json:"taskID,string"`
	Attempt            int             `json:"attempt"`
	Deadline           time.Time       `json:"deadline"`
	Process            string          `json:"process"`
	Kind               string          `json:"kind"`   // builtin | crawler | vendor
	Runner             string          `json:"runner"` // builtin task type, or plugin / vendor block name
	MaxDurationSeconds int             `json:"maxDurationSeconds"`
	Input              json.RawMessage `json:"input"`
	// Credentials is the grant of the credentials the process binds; nil
	// when it binds none.
	Credentials *Grant `json:"credentials"`
}

// Grant is what a robot receives with a claimed task: for each credential
// its process binds, a single-use Vault wrapping token that unwraps to that
// credential, and nothing else. It is sent once, to the robot that claimed
// the attempt, and is worthless after ExpiresAt or once used.
type Grant struct {
	VaultAddress string      `json:"vaultAddress"`
	ExpiresAt    time.Time   `json:"expiresAt"`
	Items        []GrantItem `json:"items"`
}

// GrantItem is one credential of a grant.
type GrantItem struct {
	// Name is the name the process binds the credential under, which is
	// the key the runner finds it by (e.g. "etax/acme").
	Name string `json:"name"`
	// Path is the Vault path the wrapping token must have been made by;
	// the robot checks it before unwrapping, so a token swapped in transit
	// is refused.
	Path string `json:"path"`
	// WrappingToken unwraps the credential once.
	WrappingToken string `json:"wrappingToken"`
}

// ProcessSpec is what a robot needs to run a crawler or vendor process
// besides the task: the flow, the pool's network profile, the vendor
// connection (never its secrets: those come with the claim's credentials).
type ProcessSpec struct {
	Name        string              `json:"name"`
	Kind        string              `json:"kind"`   // crawler | vendor
	Runner      string              `json:"runner"` // crawler plugin, or vendor block name
	Package     string              `json:"package"`
	Flow        *sdk.Flow           `json:"flow,omitempty"`
	NetworkName string              `json:"networkName,omitempty"`
	Network     *sdk.NetworkProfile `json:"network,omitempty"`
	VendorType  string              `json:"vendorType,omitempty"` // uipath | aa
	Vendor      map[string]string   `json:"vendor,omitempty"`     // non-secret settings
}

// Report is the outcome of one attempt, as a robot sends it with
// reportResult.
type Report struct {
	TaskID     int             `json:"taskID"`
	Attempt    int             `json:"attempt"`
	Success    bool            `json:"success"`
	Output     json.RawMessage `json:"output,omitempty"`
	ErrorClass ErrorClass      `json:"errorClass,omitempty"`
	Message    string          `json:"message,omitempty"`
}

// ErrorClass is the class of a failed attempt, the one representation from
// the robot through GraphQL (the ErrorClass enum is bound to it) into the
// queue. Its values are the GraphQL enum's. The stored attempt keeps its
// own column enum (execution, data, and the daemon's timeout), which the
// queue sets from this class.
type ErrorClass string

// Error classes a robot reports.
const (
	// ErrorExecution may succeed on another try: retried up to the
	// process's retries.
	ErrorExecution ErrorClass = "EXECUTION"
	// ErrorData means the task's input is wrong: final at once, never
	// retried.
	ErrorData ErrorClass = "DATA"
)

// IsValid reports whether e is a known class.
func (e ErrorClass) IsValid() bool { return e == ErrorExecution || e == ErrorData }

func (e ErrorClass) String() string { return string(e) }

// UnmarshalGQL implements gqlgen's Unmarshaler, for the ErrorClass enum.
func (e *ErrorClass) UnmarshalGQL(v any) error {
	s, ok := v.(string)
	if !ok {
		return errors.New("enums must be strings")
	}
	*e = ErrorClass(s)
	if !e.IsValid() {
		return fmt.Errorf("%s is not a valid ErrorClass", s)
	}
	return nil
}

// MarshalGQL implements gqlgen's Marshaler, for the ErrorClass enum.
func (e ErrorClass) MarshalGQL(w io.Writer) { _, _ = io.WriteString(w, strconv.Quote(e.String())) }

// EnrolPath is the daemon's route where a machine exchanges a join token
// for its robot identity (POST, JSON EnrolRequest in, EnrolResponse out).
// It is the one route of the protocol without a bearer token: the join
// token in the body is the credential.
const EnrolPath = "/robot/enrol"

// EnrolRequest is what a machine sends to join a pool.
type EnrolRequest struct {
	JoinToken string   `json:"joinToken"`
	Name      string   `json:"name"`
	Hostname  string   `json:"hostname"`
	OS        string   `json:"os"`
	Addresses []string `json:"addresses,omitempty"`
	// RemoteAccess is how people reach the machine, if it says so.
	RemoteAccess *RemoteAccess `json:"remoteAccess,omitempty"`
}

// RemoteAccess is an enrolling machine's remote-access endpoint.
type RemoteAccess struct {
	Protocol string `json:"protocol"` // rdp | ssh | vnc
	Host     string `json:"host"`
	Port     int    `json:"port"`
	Username string `json:"username,omitempty"`
}

// EnrolResponse is the robot identity the daemon issues: the robot token
// is shown this once and stored by the agent in its state directory.
type EnrolResponse struct {
	Robot string `json:"robot"`
	Pool  string `json:"pool"`
	Token string `json:"token"`
}

// EnrolError is the body of a refused enrolment (status 400, 403, 409 or
// 429), its message naming what is wrong.
type EnrolError struct {
	Error string `json:"error"`
}
