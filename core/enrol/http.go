package enrol

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"golang.org/x/time/rate"

	"github.com/rpacloud/rpacloud/core/robotwire"
)

// maxEnrolBody bounds an enrolment request: a few short strings.
const maxEnrolBody = 16 << 10

// Handler serves robotwire.EnrolPath. It is the one route without a
// bearer token — the join token in the body is the credential — so it is
// a plain JSON POST, not GraphQL: the GraphQL endpoint stays
// authenticated as a whole, with no anonymous path through its executor.
// Enrolments are rate limited for the whole daemon (a burst of 20, then 5
// a second) so a flood cannot occupy the database; a join token's 150
// random bits make guessing pointless at any rate.
func (s *Service) Handler() http.Handler {
	lim := rate.NewLimiter(5, 20)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !lim.Allow() {
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
		resp, err := s.Enrol(r.Context(), req)
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
