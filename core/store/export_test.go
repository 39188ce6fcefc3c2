package store

// Classify names the kind a statement is counted under, for the tests.
func Classify(q string) string {
	return [...]string{kindOther: "other", kindRead: "read", kindWrite: "write"}[classify(q)]
}
