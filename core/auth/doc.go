// Package auth issues and checks the bearer tokens of people and robots.
// Only a SHA-256 of each secret is stored, so a copy of the database does
// not let anyone in.
//
// # Checking
//
// Authenticate and Middleware look a token up in the database, one query
// per request. The daemon checks through a Cache instead: a robot fleet
// sends a request every few seconds per robot, and on SQLite's single
// connection one query per request serialises all of them. The cache
// keeps valid tokens only, keyed by the secret's SHA-256 (never the
// secret), so a token issued a moment ago works at once and a wrong secret
// always goes to the database. An entry answers for at most Options.TTL
// (default 2 min) and never past the token's expiry; concurrent misses for
// one secret share one query; the cache holds at most Options.MaxEntries
// (default 32 768) and evicts a random entry when full (see Cache for why
// not LRU).
//
// # Revocation
//
// Every change that ends a token goes through Tokens (Revoke; Issue when
// it replaces a live token of the same name) or, inside a caller's
// transaction, RevokeTx, RevokeRobotTx and IssueTx (enrolment, robot
// revoke). Each saves a token.revoked event (core/events) in the same
// transaction as the change, naming the token's id — never the secret or
// its hash, and no customer, so only platform operators see it — and
// publishes it after the commit. A Cache following the bus (Follow) drops
// the token inside Publish, so the token's next request on the revoking
// daemon is refused; the PostgreSQL relay carries the event to every other
// daemon, whose cache drops it on arrival (milliseconds). The TTL bounds
// the one remaining gap: an event lost on its way (a relay outage longer
// than its catch-up) lets the token in for at most TTL more.
//
// Websockets authenticate once, in connection_init (through the cache),
// and re-check their token in the database every token_recheck.
package auth
