// Package verify is the independent second check on the rewriter's output.
//
// It owns one decision: given SQL text (the rewriter's output) and a Policy
// (the session's tenants, search_path and catalog snapshot), is every
// reference to a tenant-bound table provably confined to those tenants?
// verify re-parses the text with pg_query_go, walks the whole tree with
// protobuf reflection so that no child field can be skipped, and accepts only
// node types on an explicit allowlist. The proxy sends a statement upstream
// only when the rewriter and Check both accept it.
//
// verify must never share code with the rewriter (independence is its
// reason to exist), never rewrite or repair a statement, never do I/O, and
// never accept something it does not understand: unknown node types,
// uncatalogued tables and table references in unexpected places are errors.
//
// The accepted shapes are:
//
//   - Reads: a tenant-bound table reference R is a direct item of the FROM
//     list of a SELECT (or of UPDATE ... FROM / DELETE ... USING), or is
//     inside a JOIN tree there whose joins carry no alias, and the WHERE of
//     that same statement has a top-level AND conjunct
//     "ref.tenant_col = 'v'" or "ref.tenant_col IN ('v1', 'v2')" with every
//     value allowed for the table's claim. ref is R's alias, else its
//     relation name; "schema.rel.tenant_col" is accepted when R has no alias;
//     a bare "tenant_col" only when R is the statement's sole FROM item.
//     Values are string constants, or integer constants equal to a value.
//     The rewriter's derived table
//     "(SELECT * FROM public.orders WHERE orders.tenant_id = '42') AS o"
//     is the canonical instance.
//   - UPDATE / DELETE of a tenant-bound table: the statement's WHERE has such
//     a conjunct on the target; UPDATE's SET assigns the tenant column only
//     an allowed constant or a bare parameter.
//   - INSERT into a tenant-bound table: an explicit column list naming the
//     tenant column, and at that position of every VALUES row (or of the
//     SELECT list) an allowed constant or a bare parameter ($n, checked by
//     the proxy at Bind). The position is counted from the start, or from
//     the end when a * expansion precedes it ("SELECT *, '42' FROM (...) x"
//     with the tenant column last). ON CONFLICT DO UPDATE needs the WHERE
//     conjunct on the target and must not assign the tenant column.
//   - Global tables are readable anywhere and writable only when Writable.
//   - System columns (ctid, xmin, xmax, cmin, cmax, tableoid) are refused in
//     every spelling: t.ctid, (t).ctid, ctid(t).
//   - An unqualified name that is a visible CTE (Postgres's exact WITH /
//     WITH RECURSIVE scoping) is not a table.
//   - LISTEN, UNLISTEN (but UNLISTEN *), NOTIFY and pg_notify name a channel
//     in the session's channel space: "tp" + the first 16 hex digits of
//     SHA-256 of the (single) primary tenant value + "_", at most 63 bytes
//     in all. pg_notify's channel is such a string constant, or
//     'tp..._' || (expression)::text with exactly that prefix.
package verify
