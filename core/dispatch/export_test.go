package dispatch

// FastPathActive reports whether q has seen PostgreSQL and now claims and
// reports through the fast path (fastpath.go).
func (q *Queue) FastPathActive() bool { return q.postgres.Load() }
