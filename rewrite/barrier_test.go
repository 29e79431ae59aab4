package rewrite_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/tenantproxy/tenantproxy/catalog"
	"github.com/tenantproxy/tenantproxy/internal/pgtest"
	"github.com/tenantproxy/tenantproxy/rewrite"
)

// The error channel of the security barrier. Every bound table holds the
// session's rows, on which each expression of barrierExprs is true and
// harmless, and other tenants' rows on which each one fails (a cast of
// 'TOPSECRET_T2', an unbalanced regex, a division by zero, ...). For every
// statement of the corpus the rewritten statement must give, on the shared
// database, exactly what the client's statement gives on a database that
// holds only the session's rows: the same rows, or the same SQLSTATE and
// message.

const barrierSchema = `
CREATE TYPE mood AS ENUM ('ok', 'sad');
CREATE DOMAIN posint AS int CHECK (VALUE > 0);
CREATE TABLE g (id int PRIMARY KEY, name text);
CREATE TABLE sink (id int);
CREATE TABLE accounts (id int PRIMARY KEY, tenant_id int NOT NULL, gid int, name text, ` + payloadCols + `, email text, created_at timestamptz);
CREATE TABLE teams (id int PRIMARY KEY, team_id int NOT NULL, gid int, ` + payloadCols + `);
CREATE TABLE docs (id int PRIMARY KEY, org_id int NOT NULL, author_id int NOT NULL, gid int, ` + payloadCols + `);
CREATE TABLE notes (id int PRIMARY KEY, tenant_id int NOT NULL, account_id int, gid int, ` + payloadCols + `);
CREATE TABLE replies (id int PRIMARY KEY, note_id int, gid int, ` + payloadCols + `, created_at timestamptz);
CREATE TABLE reactions (id int PRIMARY KEY, reply_id int, gid int, ` + payloadCols + `);
CREATE INDEX ON accounts (tenant_id); CREATE INDEX ON notes (tenant_id); CREATE INDEX ON replies (note_id);
INSERT INTO g VALUES (1, 'one'), (2, 'two'), (3, 'three');
`

const payloadCols = `body text, len text, re text, d text, j text, a text, mood text, n int, big bigint`

// The payloads: harmless on the session's rows, failing on the others'.
const (
	benign = `'11', 'ab', 'a', '2024-01-02', '{"a":1}', '{1,2}', 'ok', 5, 5`
	trip   = `'TOPSECRET_T2', 'seven77', '(', 'x-not-date', '{bad', '{1,x', 'angry', -5, 5000000000`
	trip7  = `'SECRET7', 'seven77', '(', 'x-not-date', '{bad', '{1,x', 'angry', -5, 5000000000`
)

// barrierRows are (table, mine, values) for every row.
var barrierRows = []struct {
	table  string
	mine   bool
	values string
}{
	{"accounts", true, "(101, 1, 1, 'ann', " + benign + ")"},
	{"accounts", false, "(201, 2, 1, '(', " + trip + ")"},
	{"accounts", true, "(102, 1, 2, 'bob', " + benign + ")"},
	{"accounts", false, "(202, 2, 2, '(', " + trip + ")"},
	{"teams", true, "(111, 1, 1, " + benign + ")"},
	{"teams", false, "(211, 2, 1, " + trip + ")"},
	{"teams", true, "(411, 4, 2, " + benign + ")"},
	{"docs", true, "(121, 1, 7, 1, " + benign + ")"},
	{"docs", false, "(122, 1, 8, 1, " + trip + ")"},
	{"docs", false, "(221, 2, 7, 2, " + trip + ")"},
	{"notes", true, "(131, 1, 101, 1, " + benign + ")"},
	{"notes", false, "(231, 2, 201, 1, " + trip + ")"},
	{"notes", true, "(132, 1, 102, 2, " + benign + ")"},
	{"replies", true, "(141, 131, 1, " + benign + ")"},
	{"replies", false, "(241, 231, 1, " + trip + ")"},
	{"replies", true, "(142, 132, 2, " + benign + ")"},
	{"replies", false, "(242, 231, 2, " + trip7 + ")"},
	{"reactions", true, "(151, 141, 1, " + benign + ")"},
	{"reactions", false, "(251, 241, 1, " + trip + ")"},
}

func barrierCatalog() *catalog.Snapshot {
	payload := []catalog.Column{{Name: "body", Type: "text"}, {Name: "len", Type: "text"}, {Name: "re", Type: "text"},
		{Name: "d", Type: "text"}, {Name: "j", Type: "text"}, {Name: "a", Type: "text"}, {Name: "mood", Type: "text"},
		{Name: "n", Type: "integer"}, {Name: "big", Type: "bigint"}}
	cols := func(names ...string) []catalog.Column {
		var out []catalog.Column
		for _, n := range names {
			typ := "integer"
			switch n {
			case "name", "email":
				typ = "text"
			case "created_at":
				typ = "timestamp with time zone"
			}
			out = append(out, catalog.Column{Name: n, Type: typ})
		}
		return append(out, payload...)
	}
	return catalog.MustSnapshot(1,
		catalog.Table{Schema: "public", Name: "g", Kind: catalog.Global, Writable: true, Columns: []catalog.Column{{Name: "id", Type: "integer"}, {Name: "name", Type: "text"}}},
		catalog.Table{Schema: "public", Name: "sink", Kind: catalog.Global, Writable: true, Columns: []catalog.Column{{Name: "id", Type: "integer"}}},
		catalog.Table{Schema: "public", Name: "accounts", Kind: catalog.TenantBound, TenantColumn: "tenant_id", Columns: cols("id", "tenant_id", "gid", "name", "email", "created_at")},
		catalog.Table{Schema: "public", Name: "teams", Kind: catalog.TenantBound, TenantColumn: "team_id", Claim: "team", Columns: cols("id", "team_id", "gid")},
		catalog.Table{Schema: "public", Name: "docs", Kind: catalog.TenantBound, Columns: cols("id", "org_id", "author_id", "gid"),
			Bindings: []catalog.Binding{{Column: "org_id"}, {Column: "author_id", Claim: "sub"}}},
		catalog.Table{Schema: "public", Name: "notes", Kind: catalog.TenantBound, TenantColumn: "tenant_id", Columns: cols("id", "tenant_id", "account_id", "gid")},
		catalog.Table{Schema: "public", Name: "replies", Kind: catalog.PathBound, Parent: "public.notes", Via: "note_id", ParentKey: "id", Columns: cols("id", "note_id", "gid", "created_at")},
		catalog.Table{Schema: "public", Name: "reactions", Kind: catalog.PathBound, Parent: "public.replies", Via: "reply_id", ParentKey: "id", Columns: cols("id", "reply_id", "gid")},
	)
}

var barrierScope = rewrite.Scope{Values: map[string][]string{"": {"1"}, "team": {"1", "4"}, "sub": {"7"}}}

// barrierKinds are the rule kinds: the table each is tried on.
var barrierKinds = []struct{ kind, table string }{
	{"one tenant", "accounts"},
	{"tenant list", "teams"},
	{"dimensions", "docs"},
	{"path", "replies"},
	{"path chain", "reactions"},
}

// barrierExprs are true on the session's rows and fail on the others'
// (all but the last).
var barrierExprs = []struct{ name, expr string }{
	{"cast", "X.body::int = 11"},
	{"division", "1 / (length(X.len) - 7) = 0"},
	{"regex", "'abc' ~ X.re"},
	{"to_date", "to_date(X.d, 'YYYY-MM-DD') > '2000-01-01'"},
	{"to_number", "to_number(X.d, '9999') > 0"},
	{"json", "(X.j::jsonb ->> 'a') = '1'"},
	{"array", "(X.a::int[])[1] = 1"},
	{"enum", "X.mood::mood = 'ok'"},
	{"domain", "X.n::posint > 0"},
	{"overflow", "X.big::int = 5"},
	// Fails on the session's rows too: the error must come through as the
	// tenant's own database gives it.
	{"own rows fail", "X.n / (X.n - X.n) = 1"},
}

// barrierPosition is a statement shape: {T} is the table, {e} the
// expression over alias X.
type barrierPosition struct {
	name string
	sql  string
	// write statements run in a transaction rolled back afterwards.
	write bool
	// errorsOnly: the databases' answers may differ for reasons that are
	// not the barrier's (EXPLAIN's row counts, inserts whose keys exist in
	// another tenant); only the error channel is compared.
	errorsOnly bool
	copy       bool
	// tenantBoundOnly: the shape needs the tenant columns written.
	tenantBoundOnly bool
}

var barrierPositions = []barrierPosition{
	{name: "WHERE", sql: "SELECT X.id FROM {T} X WHERE {e}"},
	{name: "JOIN ON", sql: "SELECT X.id FROM g JOIN {T} X ON X.gid = g.id AND {e}"},
	{name: "LEFT JOIN ON", sql: "SELECT g.id, X.id FROM g LEFT JOIN {T} X ON X.gid = g.id AND {e}"},
	{name: "WHERE over a join", sql: "SELECT g.id, X.id FROM g, {T} X WHERE X.gid = g.id AND {e}"},
	{name: "LATERAL", sql: "SELECT g.id, l.id FROM g, LATERAL (SELECT X.id FROM {T} X WHERE X.gid = g.id AND {e}) l"},
	{name: "sub-select", sql: "SELECT g.id FROM g WHERE EXISTS (SELECT 1 FROM {T} X WHERE X.gid = g.id AND {e})"},
	{name: "IN sub-select", sql: "SELECT g.id FROM g WHERE g.id IN (SELECT X.gid FROM {T} X WHERE {e})"},
	{name: "CTE", sql: "WITH c AS (SELECT * FROM {T}) SELECT X.id FROM c X WHERE {e}"},
	{name: "materialized CTE", sql: "WITH c AS MATERIALIZED (SELECT * FROM {T} X WHERE {e}) SELECT c.id FROM c"},
	{name: "derived table", sql: "SELECT s.id FROM (SELECT * FROM {T}) X, LATERAL (SELECT X.id) s WHERE {e}"},
	{name: "target list under an outer join", sql: "SELECT g.id, s.ok FROM g LEFT JOIN (SELECT X.gid, ({e}) AS ok FROM {T} X) s ON s.gid = g.id"},
	{name: "select list", sql: "SELECT ({e}) FROM {T} X"},
	{name: "scalar sub-select", sql: "SELECT g.id, (SELECT count(*) FROM {T} X WHERE X.gid = g.id AND {e}) FROM g"},
	{name: "GROUP BY", sql: "SELECT ({e}) AS k, count(*) FROM {T} X GROUP BY 1"},
	{name: "HAVING", sql: "SELECT X.id FROM {T} X GROUP BY X.id, X.body, X.len, X.re, X.d, X.j, X.a, X.mood, X.n, X.big HAVING {e}"},
	{name: "ORDER BY", sql: "SELECT X.id FROM {T} X ORDER BY ({e}), X.id"},
	{name: "DISTINCT ON", sql: "SELECT DISTINCT ON (({e})) X.id FROM {T} X ORDER BY ({e}), X.id"},
	{name: "window", sql: "SELECT X.id, count(*) OVER (PARTITION BY ({e})) FROM {T} X"},
	{name: "UPDATE WHERE", sql: "UPDATE {T} X SET n = X.n WHERE {e} RETURNING X.id", write: true},
	{name: "DELETE WHERE", sql: "DELETE FROM {T} X WHERE {e} RETURNING X.id", write: true},
	{name: "UPDATE FROM", sql: "UPDATE g SET name = g.name FROM {T} X WHERE X.gid = g.id AND {e} RETURNING g.id", write: true},
	{name: "DELETE USING", sql: "DELETE FROM g USING {T} X WHERE X.gid = g.id AND {e} RETURNING g.id", write: true},
	{name: "RETURNING", sql: "UPDATE {T} X SET n = X.n WHERE X.id > 0 RETURNING ({e})", write: true},
	{name: "MERGE ON", sql: "MERGE INTO {T} X USING g ON X.gid = g.id AND {e} WHEN MATCHED THEN UPDATE SET n = X.n", write: true},
	{name: "MERGE WHEN", sql: "MERGE INTO {T} X USING g ON X.gid = g.id WHEN MATCHED AND {e} THEN UPDATE SET n = X.n", write: true},
	{name: "INSERT ... SELECT", sql: "INSERT INTO sink (id) SELECT X.id FROM {T} X WHERE {e} RETURNING id", write: true},
	{name: "ON CONFLICT WHERE", sql: "INSERT INTO {T} AS X (id, {cols}) SELECT i, {vals} FROM generate_series(100, 260) i ON CONFLICT (id) DO UPDATE SET n = X.n WHERE {e}",
		write: true, errorsOnly: true, tenantBoundOnly: true},
	{name: "COPY", sql: "COPY (SELECT X.id FROM {T} X WHERE {e}) TO STDOUT", copy: true},
	{name: "cursor", sql: "BEGIN; DECLARE cur CURSOR FOR SELECT X.id FROM {T} X WHERE {e}; FETCH ALL FROM cur; COMMIT"},
	{name: "EXPLAIN", sql: "EXPLAIN (COSTS OFF) SELECT X.id FROM {T} X WHERE {e}", errorsOnly: true},
}

// tenantValues are the tenant columns an INSERT of the session's rows
// names, per tenant-bound table.
var tenantValues = map[string][2]string{
	"accounts": {"tenant_id", "1"},
	"teams":    {"team_id", "1"},
	"docs":     {"org_id, author_id", "1, 7"},
}

// barrierOutcome is a statement's whole answer: command tags and rows, or
// the error's SQLSTATE and message.
type barrierOutcome struct {
	results []string
	err     string
}

func (o barrierOutcome) String() string {
	if o.err != "" {
		return "ERROR " + o.err
	}
	return strings.Join(o.results, " | ")
}

func runBarrier(ctx context.Context, conn *pgx.Conn, p barrierPosition, sql string) barrierOutcome {
	fail := func(err error) barrierOutcome {
		var pe *pgconn.PgError
		if errors.As(err, &pe) {
			return barrierOutcome{err: pe.Code + " " + pe.Message}
		}
		return barrierOutcome{err: err.Error()}
	}
	if p.copy {
		var buf bytes.Buffer
		if _, err := conn.PgConn().CopyTo(ctx, &buf, sql); err != nil {
			return fail(err)
		}
		lines := strings.Split(buf.String(), "\n")
		sort.Strings(lines)
		return barrierOutcome{results: lines}
	}
	if p.write {
		if _, err := conn.Exec(ctx, "BEGIN"); err != nil {
			return fail(err)
		}
		defer conn.Exec(ctx, "ROLLBACK")
	}
	rs, err := conn.PgConn().Exec(ctx, sql).ReadAll()
	if err != nil {
		_, _ = conn.Exec(ctx, "ROLLBACK") // a cursor's transaction
		return fail(err)
	}
	out := pgtest.ResultTexts(rs)
	for i, r := range rs {
		out[i] = r.CommandTag.String() + " " + out[i]
	}
	return barrierOutcome{results: out}
}

func openBarrierDBs(t *testing.T) (ctx context.Context, shared, solo *pgx.Conn) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	t.Cleanup(cancel)
	open := func(mineOnly bool) *pgx.Conn {
		conn, err := pgx.Connect(ctx, pgtest.NewDatabase(t))
		if err != nil {
			t.Fatalf("connect: %v", err)
		}
		t.Cleanup(func() { conn.Close(context.Background()) })
		if _, err := conn.Exec(ctx, barrierSchema); err != nil {
			t.Fatalf("schema: %v", err)
		}
		for _, r := range barrierRows {
			if mineOnly && !r.mine {
				continue
			}
			if _, err := conn.Exec(ctx, "INSERT INTO "+r.table+" VALUES "+r.values); err != nil {
				t.Fatalf("rows: %v", err)
			}
		}
		if _, err := conn.Exec(ctx, "ANALYZE"); err != nil {
			t.Fatal(err)
		}
		return conn
	}
	return ctx, open(false), open(true)
}

func TestDifferentialBarrier(t *testing.T) {
	ctx, shared, solo := openBarrierDBs(t)
	snap := barrierCatalog()
	rw := rewrite.New(rewrite.Config{SearchPath: []string{"public"}})
	type cell struct{ accepted, refused, errored int }
	counts := map[[2]string]*cell{}
	total := 0
	for _, p := range barrierPositions {
		for _, k := range barrierKinds {
			_, tenantBound := tenantValues[k.table]
			if p.tenantBoundOnly && !tenantBound {
				continue
			}
			c := &cell{}
			counts[[2]string{p.name, k.kind}] = c
			for _, e := range barrierExprs {
				sql := strings.NewReplacer("{T}", k.table, "{e}", e.expr, "{cols}", "gid, "+tenantValues[k.table][0], "{vals}", "1, "+tenantValues[k.table][1]).Replace(p.sql)
				total++
				res, err := rw.Rewrite(sql, barrierScope, snap)
				if err != nil {
					c.refused++
					t.Logf("refused (%s, %s, %s): %s: %v", p.name, k.kind, e.name, sql, err)
					continue
				}
				c.accepted++
				want := runBarrier(ctx, solo, p, sql)
				got := runBarrier(ctx, shared, p, res.SQL)
				if want.err != "" {
					c.errored++
				}
				if p.errorsOnly {
					if got.err != want.err {
						t.Errorf("%s on %s (%s):\n  %s\n  sent %s\n  tenant's own database: %s\n  shared: %s", p.name, k.kind, e.name, sql, res.SQL, errText(want), errText(got))
					}
					continue
				}
				if got.String() != want.String() {
					t.Errorf("%s on %s (%s):\n  %s\n  sent %s\n  tenant's own database: %s\n  shared: %s", p.name, k.kind, e.name, sql, res.SQL, want, got)
				}
			}
		}
	}
	// The corpus must mostly be accepted: a refusal proves nothing.
	var accepted int
	var lines []string
	for key, c := range counts {
		accepted += c.accepted
		lines = append(lines, fmt.Sprintf("%-32s %-12s accepted %2d refused %2d (own database errs on %d)", key[0], key[1], c.accepted, c.refused, c.errored))
	}
	slices.Sort(lines)
	t.Logf("barrier corpus: %d statements, %d accepted\n%s", total, accepted, strings.Join(lines, "\n"))
	if accepted < 150 || accepted*10 < total*8 {
		t.Errorf("only %d of %d corpus statements were accepted", accepted, total)
	}
}

func errText(o barrierOutcome) string {
	if o.err == "" {
		return "no error"
	}
	return o.err
}

// The statements that leaked before the barrier (issue "Why"): each now
// returns exactly what the tenant's own database returns.
func TestBarrierLeaksOfBefore(t *testing.T) {
	ctx, shared, solo := openBarrierDBs(t)
	snap := barrierCatalog()
	rw := rewrite.New(rewrite.Config{SearchPath: []string{"public"}})
	for _, c := range []struct {
		sql   string
		write bool
	}{
		{"SELECT * FROM replies WHERE body::int = 11", false},
		{"DELETE FROM replies WHERE body::int = 99", true},
		{"SELECT n.id, r.id FROM notes n JOIN replies r ON r.note_id = n.id WHERE r.body::int > 0", false},
		{"SELECT n.id, r.id FROM notes n LEFT JOIN replies r ON r.note_id = n.id AND r.body::int = 11", false},
		{"SELECT count(*) FROM replies WHERE 1/(length(body)-7) = 0", false},
		{"SELECT * FROM accounts WHERE name ~ name", false},
		{"UPDATE accounts SET name = name WHERE name ~ name", true},
	} {
		res, err := rw.Rewrite(c.sql, barrierScope, snap)
		if err != nil {
			t.Errorf("%s: refused: %v", c.sql, err)
			continue
		}
		p := barrierPosition{write: c.write}
		want, got := runBarrier(ctx, solo, p, c.sql), runBarrier(ctx, shared, p, res.SQL)
		if want.err != "" || got.String() != want.String() {
			t.Errorf("%s\n  sent %s\n  tenant's own database: %s\n  shared: %s", c.sql, res.SQL, want, got)
		}
		t.Logf("%s\n  -> %s\n  = %s", c.sql, res.SQL, got)
	}
}

// Leakproof conditions keep their indexes, on direct and path-bound tables,
// with or without a fence: the plans of the rewritten statements.
func TestBarrierKeepsIndexes(t *testing.T) {
	ctx, shared, _ := openBarrierDBs(t)
	setup := `
INSERT INTO accounts (id, tenant_id, gid, name, email, created_at, body)
  SELECT i, i % 10, 1, 'n' || i, 'e' || i || '@x', timestamptz '2024-01-01' + i * interval '1 minute', '11' FROM generate_series(1000, 40999) i;
INSERT INTO notes (id, tenant_id, account_id, gid) SELECT i, i % 10, i, 1 FROM generate_series(1000, 40999) i;
INSERT INTO replies (id, note_id, gid, body, created_at)
  SELECT i, 1000 + i % 40000, 1, '11', timestamptz '2024-01-01' + i * interval '1 minute' FROM generate_series(1000, 80999) i;
CREATE INDEX ON accounts (email); CREATE INDEX ON accounts (created_at); CREATE INDEX ON replies (created_at);
ANALYZE;`
	if _, err := shared.Exec(ctx, setup); err != nil {
		t.Fatal(err)
	}
	snap := barrierCatalog()
	rw := rewrite.New(rewrite.Config{SearchPath: []string{"public"}})
	cases := []struct {
		sql   string
		args  []any
		index string // the index the plan must scan
		fence bool   // the rewrite fences the table
	}{
		{"SELECT * FROM accounts WHERE id = $1", []any{1234}, "accounts_pkey", false},
		{"SELECT * FROM accounts WHERE email = 'e1234@x'", nil, "accounts_email_idx", false},
		{"SELECT * FROM accounts WHERE created_at >= $1 AND created_at < $2", []any{"2024-01-02", "2024-01-02 00:30"}, "accounts_created_at_idx", false},
		{"SELECT lower(name) FROM accounts WHERE id = $1", []any{1234}, "accounts_pkey", true},
		{"SELECT * FROM accounts WHERE email = 'e1234@x' AND name ~ name", nil, "accounts_email_idx", true},
		{"SELECT * FROM accounts WHERE created_at BETWEEN '2024-01-02' AND '2024-01-02 00:30' AND body::int = 11", nil, "accounts_created_at_idx", true},
		{"SELECT * FROM replies WHERE id = $1", []any{1234}, "replies_pkey", false},
		{"SELECT * FROM replies WHERE created_at > $1 AND created_at < $2", []any{"2024-01-02", "2024-01-02 00:30"}, "replies_created_at_idx", false},
		{"SELECT * FROM replies WHERE id = $1 AND body::int = 11", []any{1234}, "replies_pkey", true},
		{"SELECT upper(body) FROM replies WHERE created_at > '2024-01-02' AND created_at < '2024-01-02 00:30'", nil, "replies_created_at_idx", true},
		{"SELECT r.id FROM replies r JOIN notes n ON n.id = r.note_id WHERE r.id = $1 AND n.gid = 1", []any{1234}, "replies_pkey", false},
	}
	for _, c := range cases {
		res, err := rw.Rewrite(c.sql, barrierScope, snap)
		if err != nil {
			t.Errorf("%s: %v", c.sql, err)
			continue
		}
		if fenced := strings.Contains(res.SQL, "OFFSET 0"); fenced != c.fence {
			t.Errorf("%s: fenced = %v, want %v: %s", c.sql, fenced, c.fence, res.SQL)
		}
		rows, err := shared.Query(ctx, "EXPLAIN (COSTS OFF) "+res.SQL, c.args...)
		if err != nil {
			t.Errorf("%s: %v", res.SQL, err)
			continue
		}
		var plan []string
		for rows.Next() {
			var line string
			_ = rows.Scan(&line)
			plan = append(plan, line)
		}
		rows.Close()
		text := strings.Join(plan, "\n")
		if !strings.Contains(text, "Index Scan using "+c.index) && !strings.Contains(text, "Bitmap Index Scan on "+c.index) && !strings.Contains(text, "Index Only Scan using "+c.index) {
			t.Errorf("%s\n  sent %s\n  does not use %s:\n%s", c.sql, res.SQL, c.index, text)
		}
		t.Logf("%s\n  sent %s\n%s", c.sql, res.SQL, text)
	}
}

// The tenant's statement takes no longer when other tenants hold 100 times
// the rows that make it slow: the expensive expression runs on the
// session's rows only. A ratio, with a wide margin: without the barrier it
// is about 100.
func TestBarrierTiming(t *testing.T) {
	ctx, shared, solo := openBarrierDBs(t)
	for _, conn := range []*pgx.Conn{shared, solo} {
		if _, err := conn.Exec(ctx, `INSERT INTO accounts (id, tenant_id, gid, name, body) SELECT i, 1, 1, 'n', 'x' FROM generate_series(1000, 1199) i`); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := shared.Exec(ctx, `INSERT INTO accounts (id, tenant_id, gid, name, body) SELECT i, 2, 1, 'n', 'x' FROM generate_series(10000, 29999) i; ANALYZE`); err != nil {
		t.Fatal(err)
	}
	sql := "SELECT count(*) FROM accounts WHERE length(repeat(body, 200000)) > 1"
	res, err := rewrite.New(rewrite.Config{SearchPath: []string{"public"}}).Rewrite(sql, barrierScope, barrierCatalog())
	if err != nil {
		t.Fatal(err)
	}
	median := func(conn *pgx.Conn, q string) time.Duration {
		var ds []time.Duration
		for range 5 {
			start := time.Now()
			if _, err := conn.Exec(ctx, q); err != nil {
				t.Fatal(err)
			}
			ds = append(ds, time.Since(start))
		}
		slices.Sort(ds)
		return ds[len(ds)/2]
	}
	own, mixed := median(solo, sql), median(shared, res.SQL)
	ratio := float64(mixed) / float64(own)
	t.Logf("own database %v, shared database %v (ratio %.2f; 100x the rows elsewhere)", own, mixed, ratio)
	if ratio > 5 {
		t.Errorf("the statement took %.1f times as long beside other tenants' rows (%v vs %v): the expensive expression ran on their rows", ratio, mixed, own)
	}
}

// A parameter the client declares with a type that does not fit the
// column coerces the column: bigint = oid casts every row's value to oid,
// which fails on another tenant's 5000000000. The session rewrites such a
// Parse again with every table fenced and no parameter comparison moved.
func TestBarrierDeclaredParamTypes(t *testing.T) {
	ctx, shared, solo := openBarrierDBs(t)
	snap := barrierCatalog()
	rw := rewrite.New(rewrite.Config{SearchPath: []string{"public"}})
	sql := "SELECT X.id FROM teams X WHERE X.big = $1"
	res, err := rw.Rewrite(sql, barrierScope, snap)
	if err != nil {
		t.Fatal(err)
	}
	const oidType, int8Type = 26, 20
	if !res.ParamTypesFit([]uint32{0}) || !res.ParamTypesFit([]uint32{int8Type}) || !res.ParamTypesFit(nil) {
		t.Errorf("unspecified and bigint parameters must fit: %s", res.SQL)
	}
	if res.ParamTypesFit([]uint32{oidType}) {
		t.Fatalf("an oid parameter fits a bigint column: %s", res.SQL)
	}
	fence := barrierScope
	fence.Fence = true
	fenced, err := rw.Rewrite(sql, fence, snap)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(fenced.SQL, "OFFSET 0) x WHERE x.big = $1") {
		t.Errorf("the comparison must stay outside the fence: %s", fenced.SQL)
	}
	run := func(conn *pgx.Conn, q string) string {
		rr := conn.PgConn().ExecParams(ctx, q, [][]byte{[]byte("5")}, []uint32{oidType}, nil, nil).Read()
		if rr.Err != nil {
			var pe *pgconn.PgError
			if errors.As(rr.Err, &pe) {
				return "ERROR " + pe.Code + " " + pe.Message
			}
			return rr.Err.Error()
		}
		return strings.Join(pgtest.ResultTexts([]*pgconn.Result{rr}), "|")
	}
	want := run(solo, sql)
	if got := run(shared, fenced.SQL); got != want {
		t.Errorf("fenced: %s\n  tenant's own database: %s\n  shared: %s", fenced.SQL, want, got)
	}
	t.Logf("own database: %s; fenced: %s", want, run(shared, fenced.SQL))
}
