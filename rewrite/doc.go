// Package rewrite confines SQL statements to a tenant. Given a statement
// string, a Scope (the tenant values a session's token holds) and a catalog
// Snapshot, Rewrite returns the statement rewritten so that every reference
// to a tenant-bound table sees only the scope's rows, or a Rejection saying
// why it cannot be confined.
//
// Reads: each tenant-bound table in a FROM list becomes a filtered derived
// table under the same name, (SELECT * FROM s.t WHERE t.col = 'v') AS t,
// which keeps every join type correct. Writes: UPDATE and DELETE get the
// tenant predicate on their target (first, so that it wins cost ties in the
// planner's filter order); INSERT fills or checks the tenant column; ON
// CONFLICT DO UPDATE never updates another tenant's row. Channels: LISTEN,
// UNLISTEN, NOTIFY and pg_notify name channels in the tenant's own channel
// space (ChannelPrefix). Anything the walker does not know (a statement
// kind, an expression node, a function outside the allowlist, an
// uncatalogued relation) is refused.
//
// The output is printed with pg_query's deparser and parsed back: it must
// give the same tree (positions aside), so a deparser gap becomes a refusal,
// never a different statement. Then the independent package rewrite/verify
// must agree that every tenant-bound reference is confined, for passed
// statements too.
//
// The package does no I/O and holds no global mutable state: the same
// (SQL, scope, snapshot) always gives the same answer. It never sends a
// statement anywhere, never consults the live database, and never widens
// what a catalog allows.
//
// Files: rewrite.go (API, entry point), walker.go (state, names, CTE
// scopes, predicates), statements.go (statement kinds, SELECT, settings),
// from.go (FROM items, derived tables), expr.go (the expression walker),
// functions.go (the function allowlist), dml.go (UPDATE, DELETE, tenant
// values), insert.go (INSERT, ON CONFLICT), notify.go (LISTEN/NOTIFY
// channels), roundtrip.go (printing).
package rewrite
