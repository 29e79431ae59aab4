// Package rewrite confines SQL statements to a tenant. Given a statement
// string, a Scope (the tenant values a session's token holds) and a catalog
// Snapshot, Rewrite returns the statement rewritten so that every reference
// to a tenant-bound table sees only the scope's rows, or a Rejection saying
// why it cannot be confined.
//
// Reads: each tenant-bound table in a FROM list becomes a filtered derived
// table under the same name, (SELECT * FROM s.t WHERE t.col = 'v') AS t,
// which keeps every join type correct. Writes: UPDATE and DELETE get the
// tenant predicate on their target; INSERT fills or checks the tenant
// column; ON CONFLICT DO UPDATE never updates another tenant's row.
// Anything the walker does not know (a statement kind, an expression node, a
// function outside the allowlist, an uncatalogued relation) is refused.
// The output is then re-checked by the independent package rewrite/verify.
//
// The package does no I/O and holds no global mutable state: the same
// (SQL, scope, snapshot) always gives the same answer.
package rewrite
