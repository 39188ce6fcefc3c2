package model

import (
	"fmt"
	"io"
	"strconv"
)

// ErrorClass is the robot protocol's class of a failed attempt. It is
// written by hand so gqlgen does not bind the GraphQL enum to ent's
// attempt.ErrorClass, whose values (execution, data, timeout) differ.
type ErrorClass string

// Error classes a robot reports.
const (
	ErrorClassExecution ErrorClass = "EXECUTION"
	ErrorClassData      ErrorClass = "DATA"
)

// IsValid reports whether e is a known class.
func (e ErrorClass) IsValid() bool { return e == ErrorClassExecution || e == ErrorClassData }

func (e ErrorClass) String() string { return string(e) }

// UnmarshalGQL implements graphql.Unmarshaler.
func (e *ErrorClass) UnmarshalGQL(v any) error {
	s, ok := v.(string)
	if !ok {
		return fmt.Errorf("enums must be strings")
	}
	*e = ErrorClass(s)
	if !e.IsValid() {
		return fmt.Errorf("%s is not a valid ErrorClass", s)
	}
	return nil
}

// MarshalGQL implements graphql.Marshaler.
func (e ErrorClass) MarshalGQL(w io.Writer) { fmt.Fprint(w, strconv.Quote(e.String())) }
