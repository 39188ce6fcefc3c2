package enrol

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"

	lru "github.com/hashicorp/golang-lru/v2"
	"golang.org/x/time/rate"

	"github.com/rpacloud/rpacloud/core/audit"
	"github.com/rpacloud/rpacloud/core/robotwire"
)

// maxEnrolBody bounds an enrolment request: a few short strings.
const maxEnrolBody = 16 << 10

const (
	// Per remote address: a burst of 10, then 2 a second.
	perPeerRate, perPeerBurst = 2, 10
	// For the whole daemon: a burst of 20, then 5 a second.
	globalRate, globalBurst = 5, 20
	// peers bounds the per-address limiters kept: the least recently
	// seen address is forgotten (and starts with a full burst again).
	peers = 4096
)

// Handler serves robotwire.EnrolPath. It is the one route without a
// bearer token — the join token in the body is the credential — so it is
// a plain JSON POST, not GraphQL: the GraphQL endpoint stays
// authenticated as a whole, with no anonymous path through its executor.
// Enrolments are rate limited per remote address first and then for the
// whole daemon, so a flood cannot occupy the database, and a flood from one
// address uses up only its own allowance, not the real agents'. (Behind a
// reverse proxy every agent shares the proxy's address and so one
// allowance, unless the proxy is in the server block's trusted_proxies:
// then RemoteAddr is the agent's, see audit.Proxies.) A join token's 150 random bits make guessing pointless at
// any rate.
func (s *Service) Handler() http.Handler {
	global := rate.NewLimiter(globalRate, globalBurst)
	perPeer, err := lru.New[string, *rate.Limiter](peers)
	if err != nil {
		panic(err) // only for a size < 1
	}
	allow := func(r *http.Request) bool {
		host, _, err := net.SplitHostPort(r.RemoteAddr)
		if err != nil {
			host = r.RemoteAddr
		}
		lim, ok := perPeer.Get(host)
		if !ok {
			lim = rate.NewLimiter(perPeerRate, perPeerBurst)
			// Two first requests of one address may race: both use
			// the limiter that got in first.
			if prev, found, _ := perPeer.PeekOrAdd(host, lim); found {
				lim = prev
			}
		}
		return lim.Allow() && global.Allow()
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !allow(r) {
			w.Header().Set("Retry-After", "1")
			writeErr(w, http.StatusTooManyRequests, "too many enrolments at once; try again in a second")
			return
		}
		if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
			writeErr(w, http.StatusUnsupportedMediaType, "send the enrolment as Content-Type: application/json")
			return
		}
		var req robotwire.EnrolRequest
		dec := json.NewDecoder(io.LimitReader(r.Body, maxEnrolBody+1))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&req); err != nil {
			// The decoder's message may quote the body, which holds the
			// join token: say only where it went wrong.
			writeErr(w, http.StatusBadRequest, "the enrolment is not a JSON object of joinToken, name, hostname, os, addresses and remoteAccess"+jsonWhere(err))
			return
		}
		resp, err := s.Enrol(audit.WithRequest(r.Context(), audit.FromHTTP(r)), req)
		switch {
		case err == nil:
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Cache-Control", "no-store")
			_ = json.NewEncoder(w).Encode(resp)
		case errors.Is(err, ErrBadInput):
			writeErr(w, http.StatusBadRequest, err.Error())
		case errors.Is(err, ErrRefused):
			writeErr(w, http.StatusForbidden, err.Error())
		case errors.Is(err, ErrConflict):
			writeErr(w, http.StatusConflict, err.Error())
		default:
			s.log().Error("enrol", "err", err)
			writeErr(w, http.StatusInternalServerError, "enrolment failed on the server; see the daemon's log")
		}
	})
}

func jsonWhere(err error) string {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return fmt.Sprintf(" (syntax error at byte %d)", se.Offset)
	case errors.As(err, &te):
		return fmt.Sprintf(" (field %s has the wrong type)", te.Field)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return " (" + strings.TrimPrefix(err.Error(), "json: ") + ")"
	}
	return ""
}

func writeErr(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(robotwire.EnrolError{Error: msg})
}
