package graph

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"

	"github.com/99designs/gqlgen/graphql"
)

// limitBody reads a POST body itself, at most max bytes, before gqlgen's
// POST transport sees it: that transport reads a body of any size whole,
// and when the JSON does not decode it echoes the whole body back in the
// error. Here a body over max gets 413, and one that does not decode into
// GraphQL request parameters gets 400 with the decoder's message only.
// Websocket upgrades and GET requests have no body to read.
func limitBody(max int64, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.Body == nil {
			next.ServeHTTP(w, r)
			return
		}
		if r.ContentLength > max {
			writeError(w, http.StatusRequestEntityTooLarge, CodeRequestTooLarge,
				fmt.Sprintf("request body of %d bytes is over the limit of %d bytes", r.ContentLength, max))
			return
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, max))
		if err != nil {
			if errors.As(err, new(*http.MaxBytesError)) {
				writeError(w, http.StatusRequestEntityTooLarge, CodeRequestTooLarge,
					fmt.Sprintf("request body is over the limit of %d bytes", max))
				return
			}
			writeError(w, http.StatusBadRequest, CodeBadRequest, "could not read the request body")
			return
		}
		if isJSON(r) {
			// The same decoding gqlgen's POST transport does, so that it
			// cannot fail there and echo the body.
			var p graphql.RawParams
			dec := json.NewDecoder(bytes.NewReader(body))
			dec.UseNumber()
			if err := dec.Decode(&p); err != nil {
				writeError(w, http.StatusBadRequest, CodeBadRequest, "request body is not a GraphQL request in JSON: "+jsonProblem(err))
				return
			}
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		next.ServeHTTP(w, r)
	})
}

func isJSON(r *http.Request) bool {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	return err == nil && mt == "application/json"
}

// jsonProblem describes a decoding error without quoting the input: a
// syntax error names the offset, a type error the field.
func jsonProblem(err error) string {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return fmt.Sprintf("syntax error at byte %d", syn.Offset)
	case errors.As(err, &typ):
		return fmt.Sprintf("field %q must be %s, not %s", typ.Field, typ.Type, typ.Value)
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "unexpected end of input"
	}
	return "cannot decode"
}

// writeError answers in the GraphQL error shape, with a code, so clients
// handle it like any other refusal.
func writeError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"errors": []map[string]any{{
		"message": strings.TrimSpace(msg), "extensions": map[string]any{"code": code},
	}}})
}
