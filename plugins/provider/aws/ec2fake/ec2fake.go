// Package ec2fake is a local stand-in for the Amazon EC2 Query API, for the
// aws provider plugin's tests only. It follows the published API for the
// calls the plugin makes: POST form parameters with Action and Version
// (2016-11-15), SigV4-signed requests (the signature is recomputed and
// compared), XML responses in the EC2 namespace, the instance life cycle
// pending → running → shutting-down → terminated, ClientToken idempotency
// (IdempotentParameterMismatch when a token is reused with other
// parameters), DescribeInstances filters and NextToken pagination, and the
// EC2 error format (<Response><Errors><Error><Code>…) with codes such as
// InvalidInstanceID.NotFound, RequestLimitExceeded, UnauthorizedOperation.
package ec2fake

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	awssdk "github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// APIVersion is the EC2 API version the SDK speaks.
const APIVersion = "2016-11-15"

const ns = "http://ec2.amazonaws.com/doc/2016-11-15/"

// Instance is one fake instance.
type Instance struct {
	ID, ImageID, Type, SubnetID, ClientToken string
	UserData                                 string // base64, as sent
	SecurityGroups                           []string
	Tags                                     map[string]string
	PrivateIP                                string
	Launched, TerminatedAt                   time.Time
	state                                    string // set only by terminate; otherwise derived from the clock
	params                                   string // RunInstances parameters, for idempotency checks
	reservation                              string
}

// Server is the fake EC2 endpoint. Its zero value is not usable: use New.
type Server struct {
	// BootTime is how long an instance stays pending; ShutdownTime how
	// long it stays shutting-down; terminated instances stay visible for
	// an hour, as on EC2.
	BootTime, ShutdownTime time.Duration
	Region                 string

	mu        sync.Mutex
	now       func() time.Time
	keys      map[string]string // access key ID → secret
	instances []*Instance
	byToken   map[string]*Instance
	faults    map[string][]string // action → error codes to return next
	denied    map[string]bool     // actions the credentials may not call
	calls     map[string]int
	seq       int
}

// New returns a fake for region that accepts the given credentials.
func New(region, accessKey, secretKey string, now func() time.Time) *Server {
	if now == nil {
		now = time.Now
	}
	return &Server{Region: region, BootTime: 30 * time.Second, ShutdownTime: 20 * time.Second, now: now,
		keys: map[string]string{accessKey: secretKey}, byToken: map[string]*Instance{},
		faults: map[string][]string{}, denied: map[string]bool{}, calls: map[string]int{}}
}

// Fail makes the next calls of action fail with the given error codes, in
// order (e.g. "RequestLimitExceeded", "InsufficientInstanceCapacity").
func (s *Server) Fail(action string, codes ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults[action] = append(s.faults[action], codes...)
}

// Deny makes action fail with UnauthorizedOperation until allowed again.
func (s *Server) Deny(action string, denied bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.denied[action] = denied
}

// Calls returns how often action was called (signed and accepted or not).
func (s *Server) Calls(action string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[action]
}

// Instances returns copies of every instance with its current state.
func (s *Server) Instances() []Instance {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Instance
	for _, in := range s.visible() {
		c := *in
		c.state = s.stateOf(in)
		out = append(out, c)
	}
	return out
}

// State returns an instance's state name.
func (in Instance) State() string { return in.state }

func (s *Server) stateOf(in *Instance) string {
	now := s.now()
	switch {
	case in.state == "terminated":
		if now.Sub(in.TerminatedAt) >= s.ShutdownTime {
			return "terminated"
		}
		return "shutting-down"
	case now.Sub(in.Launched) >= s.BootTime:
		return "running"
	}
	return "pending"
}

var stateCode = map[string]int{"pending": 0, "running": 16, "shutting-down": 32, "terminated": 48, "stopping": 64, "stopped": 80}

// visible drops instances terminated more than an hour ago, as EC2 does.
func (s *Server) visible() []*Instance {
	now := s.now()
	s.instances = slices.DeleteFunc(s.instances, func(in *Instance) bool {
		return in.state == "terminated" && now.Sub(in.TerminatedAt) > time.Hour
	})
	return s.instances
}

// apiError is an EC2 error response.
type apiError struct {
	status        int
	code, message string
}

func errf(status int, code, format string, args ...any) *apiError {
	return &apiError{status: status, code: code, message: fmt.Sprintf(format, args...)}
}

var statusOf = map[string]int{
	"RequestLimitExceeded":         http.StatusServiceUnavailable,
	"InsufficientInstanceCapacity": http.StatusInternalServerError,
	"InternalError":                http.StatusInternalServerError,
	"UnauthorizedOperation":        http.StatusForbidden,
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	reqID := s.requestID()
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		writeErr(w, reqID, errf(400, "MalformedQueryString", "cannot read the request body"))
		return
	}
	if r.Method != http.MethodPost {
		writeErr(w, reqID, errf(400, "InvalidAction", "the fake accepts POST only"))
		return
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		writeErr(w, reqID, errf(400, "MalformedQueryString", "%v", err))
		return
	}
	action := form.Get("Action")
	s.mu.Lock()
	s.calls[action]++
	s.mu.Unlock()
	if aerr := s.checkSignature(r, body); aerr != nil {
		writeErr(w, reqID, aerr)
		return
	}
	if v := form.Get("Version"); v != APIVersion {
		writeErr(w, reqID, errf(400, "InvalidParameterValue", "Version %q is not supported; use %s", v, APIVersion))
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.denied[action] {
		writeErr(w, reqID, errf(403, "UnauthorizedOperation", "You are not authorized to perform this operation."))
		return
	}
	if q := s.faults[action]; len(q) > 0 {
		s.faults[action] = q[1:]
		st, ok := statusOf[q[0]]
		if !ok {
			st = 400
		}
		writeErr(w, reqID, errf(st, q[0], "injected failure"))
		return
	}
	var resp any
	var aerr *apiError
	switch action {
	case "RunInstances":
		resp, aerr = s.runInstances(form, reqID)
	case "DescribeInstances":
		resp, aerr = s.describeInstances(form, reqID)
	case "TerminateInstances":
		resp, aerr = s.terminateInstances(form, reqID)
	case "":
		aerr = errf(400, "MissingAction", "The request must contain the parameter Action")
	default:
		aerr = errf(400, "InvalidAction", "The action %s is not valid for this web service.", action)
	}
	if aerr != nil {
		writeErr(w, reqID, aerr)
		return
	}
	w.Header().Set("Content-Type", "text/xml;charset=UTF-8")
	_, _ = io.WriteString(w, xml.Header)
	_ = xml.NewEncoder(w).Encode(resp)
}

func (s *Server) requestID() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seq++
	return fmt.Sprintf("00000000-0000-4000-8000-%012d", s.seq)
}

var authRE = regexp.MustCompile(`^AWS4-HMAC-SHA256 Credential=([^/]+)/(\d{8})/([^/]+)/([^/]+)/aws4_request, ?SignedHeaders=([^,]+), ?Signature=([0-9a-f]{64})$`)

// checkSignature recomputes the SigV4 signature over the headers the
// client signed and compares it with the one sent.
func (s *Server) checkSignature(r *http.Request, body []byte) *apiError {
	m := authRE.FindStringSubmatch(r.Header.Get("Authorization"))
	if m == nil {
		return errf(401, "AuthFailure", "AWS was not able to validate the provided access credentials (missing or malformed SigV4 Authorization header)")
	}
	akid, region, service, signed, sig := m[1], m[3], m[4], m[5], m[6]
	s.mu.Lock()
	secret, ok := s.keys[akid]
	s.mu.Unlock()
	if !ok {
		return errf(401, "AuthFailure", "AWS was not able to validate the provided access credentials")
	}
	if region != s.Region || service != "ec2" {
		return errf(401, "AuthFailure", "credential scope %s/%s does not match region %s and service ec2", region, service, s.Region)
	}
	at, err := time.Parse("20060102T150405Z", r.Header.Get("X-Amz-Date"))
	if err != nil {
		return errf(400, "IncompleteSignature", "missing or malformed X-Amz-Date")
	}
	if d := s.now().Sub(at); d > 15*time.Minute || d < -15*time.Minute {
		return errf(400, "RequestExpired", "Request has expired.")
	}
	sum := sha256.Sum256(body)
	clone, _ := http.NewRequest(r.Method, "http://"+r.Host+r.URL.RequestURI(), bytes.NewReader(body))
	for _, h := range strings.Split(signed, ";") {
		if h == "host" {
			continue
		}
		for _, v := range r.Header.Values(h) {
			clone.Header.Add(h, v)
		}
	}
	creds := awssdk.Credentials{AccessKeyID: akid, SecretAccessKey: secret}
	if err := v4.NewSigner().SignHTTP(context.Background(), creds, clone, hex.EncodeToString(sum[:]), "ec2", region, at); err != nil {
		return errf(500, "InternalError", "sign: %v", err)
	}
	want := authRE.FindStringSubmatch(clone.Header.Get("Authorization"))
	if want == nil || want[6] != sig || want[5] != signed {
		return errf(403, "SignatureDoesNotMatch", "The request signature we calculated does not match the signature you provided.")
	}
	return nil
}

// indexed collects Prefix.1, Prefix.2, … in order.
func indexed(form url.Values, prefix string) []string {
	var out []string
	for i := 1; ; i++ {
		v, ok := form[prefix+"."+strconv.Itoa(i)]
		if !ok {
			return out
		}
		out = append(out, v[0])
	}
}

func (s *Server) runInstances(form url.Values, reqID string) (any, *apiError) {
	image, typ := form.Get("ImageId"), form.Get("InstanceType")
	if image == "" {
		return nil, errf(400, "MissingParameter", "The request must contain the parameter ImageId")
	}
	if !strings.HasPrefix(image, "ami-") {
		return nil, errf(400, "InvalidAMIID.Malformed", "Invalid id: %q (expecting \"ami-...\")", image)
	}
	minC, _ := strconv.Atoi(form.Get("MinCount"))
	maxC, _ := strconv.Atoi(form.Get("MaxCount"))
	if minC < 1 || maxC < minC {
		return nil, errf(400, "InvalidParameterValue", "MinCount and MaxCount must be ≥ 1 and MinCount ≤ MaxCount")
	}
	token := form.Get("ClientToken")
	if len(token) > 64 {
		return nil, errf(400, "InvalidParameterValue", "ClientToken is longer than 64 characters")
	}
	// The parameters that make a request "the same" for idempotency.
	keys := make([]string, 0, len(form))
	for k := range form {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var params strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&params, "%s=%s&", k, form[k])
	}
	if token != "" {
		if in, ok := s.byToken[token]; ok {
			if in.params != params.String() {
				return nil, errf(400, "IdempotentParameterMismatch", "The client token %q has already been used with different parameters", token)
			}
			return &runResponse{XMLNS: ns, RequestID: reqID, ReservationID: in.reservation, OwnerID: "123456789012",
				Instances: []instanceXML{s.toXML(in)}}, nil
		}
	}
	tags := map[string]string{}
	for i := 1; ; i++ {
		p := "TagSpecification." + strconv.Itoa(i)
		rt, ok := form[p+".ResourceType"]
		if !ok {
			break
		}
		for j := 1; ; j++ {
			k, ok := form[p+".Tag."+strconv.Itoa(j)+".Key"]
			if !ok {
				break
			}
			if rt[0] == "instance" {
				tags[k[0]] = form.Get(p + ".Tag." + strconv.Itoa(j) + ".Value")
			}
		}
	}
	if ud := form.Get("UserData"); ud != "" {
		raw, err := base64.StdEncoding.DecodeString(ud)
		if err != nil {
			return nil, errf(400, "InvalidParameterValue", "Invalid BASE64 encoding of user data")
		}
		if len(raw) > 16*1024 {
			return nil, errf(400, "InvalidParameterValue", "User data is limited to 16384 bytes")
		}
	}
	res := fmt.Sprintf("r-%017x", len(s.instances)+1)
	out := &runResponse{XMLNS: ns, RequestID: reqID, ReservationID: res, OwnerID: "123456789012"}
	for range maxC {
		n := len(s.instances) + 1
		in := &Instance{ID: fmt.Sprintf("i-%017x", 0xabc000+n), ImageID: image, Type: typ, SubnetID: form.Get("SubnetId"),
			ClientToken: token, UserData: form.Get("UserData"), SecurityGroups: indexed(form, "SecurityGroupId"),
			Tags: tags, PrivateIP: fmt.Sprintf("10.0.%d.%d", n/250, n%250+4), Launched: s.now().UTC(),
			params: params.String(), reservation: res}
		s.instances = append(s.instances, in)
		if token != "" {
			s.byToken[token] = in
		}
		out.Instances = append(out.Instances, s.toXML(in))
	}
	return out, nil
}

func (s *Server) describeInstances(form url.Values, reqID string) (any, *apiError) {
	ids := indexed(form, "InstanceId")
	if len(ids) > 0 && form.Get("MaxResults") != "" {
		return nil, errf(400, "InvalidParameterCombination", "The parameter instancesSet cannot be used with the parameter maxResults")
	}
	maxResults := 1000
	if v := form.Get("MaxResults"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 5 || n > 1000 {
			return nil, errf(400, "InvalidParameterValue", "Value ( %s ) for parameter maxResults is invalid. Expecting a value between 5 and 1000.", v)
		}
		maxResults = n
	}
	type filter struct {
		name   string
		values []string
	}
	var filters []filter
	for i := 1; ; i++ {
		p := "Filter." + strconv.Itoa(i)
		name, ok := form[p+".Name"]
		if !ok {
			break
		}
		f := filter{name: name[0], values: indexed(form, p+".Value")}
		if !strings.HasPrefix(f.name, "tag:") && f.name != "tag-key" && f.name != "instance-state-name" && f.name != "instance-id" {
			return nil, errf(400, "InvalidParameterValue", "The filter '%s' is invalid", f.name)
		}
		filters = append(filters, f)
	}
	var match []*Instance
	for _, in := range s.visible() {
		if len(ids) > 0 && !slices.Contains(ids, in.ID) {
			continue
		}
		ok := true
		for _, f := range filters {
			var pass bool
			switch {
			case strings.HasPrefix(f.name, "tag:"):
				v, has := in.Tags[strings.TrimPrefix(f.name, "tag:")]
				pass = has && slices.Contains(f.values, v)
			case f.name == "tag-key":
				pass = slices.ContainsFunc(f.values, func(k string) bool { _, has := in.Tags[k]; return has })
			case f.name == "instance-state-name":
				pass = slices.Contains(f.values, s.stateOf(in))
			case f.name == "instance-id":
				pass = slices.Contains(f.values, in.ID)
			}
			if !pass {
				ok = false
				break
			}
		}
		if ok {
			match = append(match, in)
		}
	}
	for _, id := range ids {
		if !slices.ContainsFunc(match, func(in *Instance) bool { return in.ID == id }) {
			return nil, errf(400, "InvalidInstanceID.NotFound", "The instance ID '%s' does not exist", id)
		}
	}
	start := 0
	if tok := form.Get("NextToken"); tok != "" {
		raw, err := base64.RawURLEncoding.DecodeString(tok)
		n, err2 := strconv.Atoi(strings.TrimPrefix(string(raw), "offset:"))
		if err != nil || err2 != nil || n < 0 || n > len(match) {
			return nil, errf(400, "InvalidParameterValue", "The token '%s' is invalid", tok)
		}
		start = n
	}
	end := min(start+maxResults, len(match))
	out := &describeResponse{XMLNS: ns, RequestID: reqID}
	for _, in := range match[start:end] {
		out.Reservations = append(out.Reservations, reservationXML{ReservationID: in.reservation, OwnerID: "123456789012",
			Instances: []instanceXML{s.toXML(in)}})
	}
	if end < len(match) {
		out.NextToken = base64.RawURLEncoding.EncodeToString([]byte("offset:" + strconv.Itoa(end)))
	}
	return out, nil
}

func (s *Server) terminateInstances(form url.Values, reqID string) (any, *apiError) {
	ids := indexed(form, "InstanceId")
	if len(ids) == 0 {
		return nil, errf(400, "MissingParameter", "The request must contain the parameter InstanceId")
	}
	var found []*Instance
	for _, id := range ids {
		if !strings.HasPrefix(id, "i-") {
			return nil, errf(400, "InvalidInstanceID.Malformed", "Invalid id: %q", id)
		}
		i := slices.IndexFunc(s.visible(), func(in *Instance) bool { return in.ID == id })
		if i < 0 {
			return nil, errf(400, "InvalidInstanceID.NotFound", "The instance ID '%s' does not exist", id)
		}
		found = append(found, s.instances[i])
	}
	out := &terminateResponse{XMLNS: ns, RequestID: reqID}
	for _, in := range found {
		prev := s.stateOf(in)
		if in.state != "terminated" {
			in.state, in.TerminatedAt = "terminated", s.now().UTC()
		}
		cur := s.stateOf(in)
		out.Instances = append(out.Instances, stateChangeXML{InstanceID: in.ID,
			Current: stateXML{Code: stateCode[cur], Name: cur}, Previous: stateXML{Code: stateCode[prev], Name: prev}})
	}
	return out, nil
}

func (s *Server) toXML(in *Instance) instanceXML {
	st := s.stateOf(in)
	x := instanceXML{InstanceID: in.ID, ImageID: in.ImageID, InstanceType: in.Type, State: stateXML{Code: stateCode[st], Name: st},
		PrivateIP: in.PrivateIP, SubnetID: in.SubnetID, LaunchTime: in.Launched.Format("2006-01-02T15:04:05.000Z"),
		ClientToken: in.ClientToken}
	keys := make([]string, 0, len(in.Tags))
	for k := range in.Tags {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		x.Tags = append(x.Tags, tagXML{Key: k, Value: in.Tags[k]})
	}
	for _, g := range in.SecurityGroups {
		x.Groups = append(x.Groups, groupXML{GroupID: g})
	}
	if st == "shutting-down" || st == "terminated" {
		x.StateReason = &reasonXML{Code: "Client.UserInitiatedShutdown", Message: "Client.UserInitiatedShutdown: User initiated shutdown"}
	}
	return x
}

func writeErr(w http.ResponseWriter, reqID string, e *apiError) {
	w.Header().Set("Content-Type", "text/xml;charset=UTF-8")
	w.WriteHeader(e.status)
	_, _ = io.WriteString(w, xml.Header)
	_ = xml.NewEncoder(w).Encode(errorResponse{Errors: []errorXML{{Code: e.code, Message: e.message}}, RequestID: reqID})
}

type errorResponse struct {
	XMLName   xml.Name   `xml:"Response"`
	Errors    []errorXML `xml:"Errors>Error"`
	RequestID string     `xml:"RequestID"`
}

type errorXML struct {
	Code    string `xml:"Code"`
	Message string `xml:"Message"`
}

type runResponse struct {
	XMLName       xml.Name      `xml:"RunInstancesResponse"`
	XMLNS         string        `xml:"xmlns,attr"`
	RequestID     string        `xml:"requestId"`
	ReservationID string        `xml:"reservationId"`
	OwnerID       string        `xml:"ownerId"`
	Instances     []instanceXML `xml:"instancesSet>item"`
}

type describeResponse struct {
	XMLName      xml.Name         `xml:"DescribeInstancesResponse"`
	XMLNS        string           `xml:"xmlns,attr"`
	RequestID    string           `xml:"requestId"`
	Reservations []reservationXML `xml:"reservationSet>item"`
	NextToken    string           `xml:"nextToken,omitempty"`
}

type reservationXML struct {
	ReservationID string        `xml:"reservationId"`
	OwnerID       string        `xml:"ownerId"`
	Instances     []instanceXML `xml:"instancesSet>item"`
}

type terminateResponse struct {
	XMLName   xml.Name         `xml:"TerminateInstancesResponse"`
	XMLNS     string           `xml:"xmlns,attr"`
	RequestID string           `xml:"requestId"`
	Instances []stateChangeXML `xml:"instancesSet>item"`
}

type stateChangeXML struct {
	InstanceID string   `xml:"instanceId"`
	Current    stateXML `xml:"currentState"`
	Previous   stateXML `xml:"previousState"`
}

type stateXML struct {
	Code int    `xml:"code"`
	Name string `xml:"name"`
}

type instanceXML struct {
	InstanceID   string     `xml:"instanceId"`
	ImageID      string     `xml:"imageId"`
	State        stateXML   `xml:"instanceState"`
	PrivateIP    string     `xml:"privateIpAddress,omitempty"`
	InstanceType string     `xml:"instanceType"`
	LaunchTime   string     `xml:"launchTime"`
	SubnetID     string     `xml:"subnetId,omitempty"`
	ClientToken  string     `xml:"clientToken,omitempty"`
	Groups       []groupXML `xml:"groupSet>item"`
	StateReason  *reasonXML `xml:"stateReason,omitempty"`
	Tags         []tagXML   `xml:"tagSet>item"`
}

type groupXML struct {
	GroupID string `xml:"groupId"`
}

type reasonXML struct {
	Code    string `xml:"code"`
	Message string `xml:"message"`
}

type tagXML struct {
	Key   string `xml:"key"`
	Value string `xml:"value"`
}
