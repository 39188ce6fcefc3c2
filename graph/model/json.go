// Package model holds GraphQL types that have no ent counterpart.
package model

import (
	"encoding/json"
	"fmt"
	"io"
)

// JSON is a JSON value carried verbatim; task inputs and outputs are
// customer data whose shape the platform does not own.
type JSON json.RawMessage

// UnmarshalGQL accepts any GraphQL input value (object, list, scalar).
func (j *JSON) UnmarshalGQL(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("JSON scalar: %w", err)
	}
	*j = b
	return nil
}

// MarshalGQL writes the value as is; an empty value is null.
func (j JSON) MarshalGQL(w io.Writer) {
	if len(j) == 0 {
		_, _ = io.WriteString(w, "null")
		return
	}
	_, _ = w.Write(j)
}
