// Package audit keeps the audit trail: one entry for every change made by
// a person or a token (every GraphQL mutation but the robot protocol's, a
// configuration applied by SIGHUP, a machine's enrolment, the bootstrap
// admin token), with who, when, what, from where and how it ended. A
// request the authentication middleware refuses (no, unknown or revoked
// token: HTTP 401) never reaches GraphQL and is not recorded.
//
// The API records its mutations through one middleware (graph), not per
// resolver; a resolver only says, with Scope, which customer's things an
// action concerned when that is not the caller's own customer (an
// administrator cancelling a department's batch), so that the department
// can read the entry. Argument values are redacted unless the caller's
// classifier calls them safe (Redact): a credential's value, a token's
// secret or a configuration file's content never reach an entry.
//
// Writing an entry happens after the change committed, so a failed write
// cannot undo it: Record's error is for the caller to log loudly, and the
// answer stands (an API that reported a committed change as failed would
// invite the caller to make it twice).
package audit

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/rpacloud/rpacloud/core/textlimit"
	"github.com/rpacloud/rpacloud/ent"
	"github.com/rpacloud/rpacloud/ent/auditentry"
	"github.com/rpacloud/rpacloud/ent/privacy"
	entschema "github.com/rpacloud/rpacloud/ent/schema"
	"github.com/rpacloud/rpacloud/ent/schema/viewer"
)

// Outcomes of an entry.
const (
	OK      = "ok"
	Refused = "refused" // the caller may not do this
	Error   = "error"   // it was tried and failed; Code says how
)

// Actors that are not API tokens.
const (
	ActorSIGHUP    = "signal:SIGHUP"
	ActorBootstrap = "daemon:bootstrap"
	ActorAnonymous = "anonymous"
)

// JoinTokenActor names an enrolment's actor: the join token's id, never
// its secret. id 0 is a join token that is not known.
func JoinTokenActor(id int) string {
	if id == 0 {
		return "join-token:unknown"
	}
	return fmt.Sprintf("join-token:%d", id)
}

// Entry is one record of the trail.
type Entry struct {
	// ID is the stored entry's id; Record ignores it.
	ID            int
	At            time.Time
	Actor         string
	ActorRole     string
	ActorCustomer *int
	ScopeCustomer *int
	Action        string
	Target        string
	// Arguments is the JSON of the redacted arguments (Redact).
	Arguments  string
	Outcome    string
	Code       string
	RemoteAddr string
	RequestID  string
}

// ByPrincipal fills the actor's fields from p, and the scope with p's
// customer (the usual case: a department acts on its own things).
func (e *Entry) ByPrincipal(p viewer.Principal) {
	e.Actor, e.ActorRole = p.Name, string(p.Role)
	if p.CustomerID != nil {
		c := *p.CustomerID
		e.ActorCustomer, e.ScopeCustomer = &c, &c
	}
}

// recordTimeout bounds one write: it happens after the change, and the
// caller's answer waits for it.
const recordTimeout = 5 * time.Second

// Record writes e. It runs under the daemon's own decision context (the
// trail's storage policy refuses every other writer) and without the
// caller's cancellation: a client that hung up after its change committed
// still leaves its entry. Texts are cut to the storage bounds.
func Record(ctx context.Context, client *ent.Client, e Entry) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), recordTimeout)
	defer cancel()
	if e.At.IsZero() {
		e.At = time.Now()
	}
	if e.Actor == "" {
		e.Actor = ActorAnonymous
	}
	switch e.Outcome {
	case OK, Refused, Error:
	default:
		return fmt.Errorf("audit: outcome %q of %s is none of ok, refused, error", e.Outcome, e.Action)
	}
	err := client.AuditEntry.Create().
		SetAt(e.At.UTC()).
		SetActor(textlimit.Cut(e.Actor, entschema.AuditActorMax)).
		SetActorRole(textlimit.Cut(e.ActorRole, 32)).
		SetNillableActorCustomerID(e.ActorCustomer).
		SetNillableScopeCustomerID(e.ScopeCustomer).
		SetAction(textlimit.Cut(e.Action, entschema.AuditActionMax)).
		SetTarget(textlimit.Cut(e.Target, entschema.AuditTargetMax)).
		SetArguments(e.Arguments). // Redact bounds it; a cut would break the JSON
		SetOutcome(auditentry.Outcome(e.Outcome)).
		SetErrorCode(textlimit.Cut(e.Code, entschema.AuditCodeMax)).
		SetRemoteAddr(textlimit.Cut(e.RemoteAddr, entschema.AuditRemoteMax)).
		SetRequestID(textlimit.Cut(e.RequestID, entschema.AuditRequestIDMax)).
		Exec(privacy.DecisionContext(ctx, privacy.Allow))
	if err != nil {
		return fmt.Errorf("audit: record %s by %s: %w", e.Action, e.Actor, err)
	}
	return nil
}

// Request is where a request came from.
type Request struct {
	// RemoteAddr is the client's address (http.Request.RemoteAddr): the
	// peer's, or behind a proxy of the server block's trusted_proxies
	// the one its X-Forwarded-For or X-Real-IP names (Proxies, set by
	// its middleware before this is read).
	RemoteAddr string
	// RequestID is the X-Request-Id header, if sent: printable ASCII only.
	RequestID string
}

type requestKey struct{}

// WithRequest returns ctx carrying r.
func WithRequest(ctx context.Context, r Request) context.Context {
	return context.WithValue(ctx, requestKey{}, r)
}

// RequestFrom returns the request of ctx (zero outside a request).
func RequestFrom(ctx context.Context) Request {
	r, _ := ctx.Value(requestKey{}).(Request)
	return r
}

// FromHTTP is the Request of r.
func FromHTTP(r *http.Request) Request {
	id := r.Header.Get("X-Request-Id")
	if len(id) > entschema.AuditRequestIDMax || strings.IndexFunc(id, func(c rune) bool { return c < 0x21 || c > 0x7e }) >= 0 {
		// A header is the client's to choose: an id that is not a short
		// printable token is not kept rather than stored as sent.
		id = ""
	}
	return Request{RemoteAddr: r.RemoteAddr, RequestID: id}
}

// Middleware puts every request's Request into its context.
func Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		next.ServeHTTP(w, r.WithContext(WithRequest(r.Context(), FromHTTP(r))))
	})
}

// Note is what the code that made a change tells the entry about it.
type Note struct {
	mu       sync.Mutex
	scoped   bool
	customer *int
	target   string
	failed   string // an error code, for an action that failed inside a successful answer
}

type noteKey struct{}

// WithNote returns ctx carrying a fresh Note for one action.
func WithNote(ctx context.Context) (context.Context, *Note) {
	n := &Note{}
	return context.WithValue(ctx, noteKey{}, n), n
}

// Scope says that the action of ctx concerned customer (nil: no customer,
// platform-wide) and what it acted on (e.g. "batch 42"; empty keeps the
// target as it is). Call it once the caller is known to be allowed to act
// on the thing, never before. The API keeps what Scope said only for an
// action that succeeded (graph): one refused or failed is scoped to the
// caller, so that its entry cannot tell whether another customer's thing
// exists.
// Outside an audited action it does nothing.
func Scope(ctx context.Context, customer *int, target string) {
	n, ok := ctx.Value(noteKey{}).(*Note)
	if !ok {
		return
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	n.scoped = true
	if customer != nil {
		c := *customer
		n.customer = &c
	} else {
		n.customer = nil
	}
	if target != "" {
		n.target = target
	}
}

// Target says what the action of ctx acted on, keeping its scope.
func Target(ctx context.Context, target string) {
	n, ok := ctx.Value(noteKey{}).(*Note)
	if !ok || target == "" {
		return
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	n.target = target
}

// Failed says that the action of ctx failed although its answer is not
// an error (applyConfig answers a refused plan as data): the entry's
// outcome becomes error with code.
func Failed(ctx context.Context, code string) {
	n, ok := ctx.Value(noteKey{}).(*Note)
	if !ok {
		return
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	n.failed = code
}

// Apply puts what n was told into e.
func (n *Note) Apply(e *Entry) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.failed != "" && e.Outcome == OK {
		e.Outcome, e.Code = Error, n.failed
	}
	if n.scoped {
		e.ScopeCustomer = n.customer
	}
	if n.target != "" {
		e.Target = n.target
	}
}

// BootstrapToken is the entry for the admin token a daemon makes at its
// first start, with the arguments createToken would have recorded.
func BootstrapToken(name string) Entry {
	args := Redact(map[string]any{"input": map[string]any{"name": name, "role": "ADMIN"}}, func(string) Class { return Keep })
	return Entry{Actor: ActorBootstrap, Action: "createToken", Target: "token " + name, Arguments: args, Outcome: OK}
}
