// Package proxy owns the sockets and sessions of tenantproxy: the listener,
// TLS, the startup handshake, one upstream connection per client session, and
// the relay of the PostgreSQL v3 protocol in both directions.
//
// It coordinates policy without owning it: auth turns the password into an
// Identity, rewrite scopes every SQL text, catalog supplies the snapshot and
// audit records each decision. A message is decided before it is sent: the
// rewrite, the checks and the statement's audit event, written before the
// statement goes upstream (statements.go, decision). In transaction mode
// the answer to the Query that leased a connection is relayed by the
// session goroutine itself (roundTripInline); a relay goroutine takes over
// once a round trip leaves the connection held. A statement the rewriter refuses never reaches
// upstream; the client sees an ErrorResponse at exactly the place Postgres
// would have raised one, so transaction and pipeline semantics stay intact.
// In shadow mode (shadow.go) the same decisions are only recorded, as what
// enforce mode would have done, and the client's statements go upstream
// unchanged. No panic escapes a session.
package proxy
