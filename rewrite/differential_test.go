package rewrite_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	pg "github.com/pganalyze/pg_query_go/v5"
	"github.com/tenantproxy/tenantproxy/internal/pgtest"
	"github.com/tenantproxy/tenantproxy/rewrite"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// diffSchema is testCatalog as tables. Ids are unique across tenants (tenant
// t owns ids t01..t99), so keys never collide between the shared and the
// single-tenant database; some rows point at another tenant's rows.
const diffSchema = `
CREATE SCHEMA app;
CREATE TABLE public.plans (id int PRIMARY KEY, name text);
CREATE TABLE public.settings (name text PRIMARY KEY, value text);
CREATE TABLE public.customers (id int PRIMARY KEY, tenant_id int NOT NULL, name text, plan_id int);
CREATE TABLE public.orders (id serial PRIMARY KEY, tenant_id int NOT NULL, customer_id int, total numeric, note text);
CREATE TABLE public.order_items (id int PRIMARY KEY, tenant_id int NOT NULL, order_id int, qty int);
CREATE TABLE app.accounts (id int PRIMARY KEY, org_id int NOT NULL, name text);
CREATE TABLE public.projects (id int PRIMARY KEY, org_id int NOT NULL, name text);
INSERT INTO public.plans VALUES (1, 'basic'), (2, 'pro'), (3, 'unused');
INSERT INTO public.settings VALUES ('theme', 'dark'), ('x', NULL);
`

// diffRows are every tenant's rows, in an order that interleaves tenants.
var diffRows = []struct{ table, tenantCol, tenant, values string }{
	{"public.customers", "tenant_id", "1", "(101, 1, 'ann', 1), (102, 1, 'bob', 2), (103, 1, 'cy', NULL)"},
	{"public.customers", "tenant_id", "2", "(201, 2, 'ann', 1), (202, 2, 'dee', 3)"},
	{"public.customers", "tenant_id", "3", "(301, 3, 'eve', 2)"},
	{"public.orders", "tenant_id", "2", "(201, 2, 201, 50, 'theirs'), (202, 2, 101, 7, NULL)"},
	{"public.orders", "tenant_id", "1", "(101, 1, 101, 10, 'a'), (102, 1, 101, 5.5, NULL), (103, 1, 102, 7, 'c'), (104, 1, 201, 3, 'points at tenant 2'), (105, 1, NULL, 0, '')"},
	{"public.orders", "tenant_id", "3", "(301, 3, 301, 10, 'a')"},
	{"public.order_items", "tenant_id", "1", "(101, 1, 101, 2), (102, 1, 101, 1), (103, 1, 202, 9)"},
	{"public.order_items", "tenant_id", "2", "(201, 2, 201, 4), (202, 2, 101, 8)"},
	{"app.accounts", "org_id", "1", "(101, 1, 'one')"},
	{"app.accounts", "org_id", "2", "(201, 2, 'two')"},
	{"public.projects", "org_id", "1", "(101, 1, 'p1')"},
	{"public.projects", "org_id", "3", "(301, 3, 'p3')"},
}

// diffTenant is the session's tenant in every differential test.
const diffTenant = "1"

var diffScope = rewrite.Scope{Values: map[string][]string{"": {diffTenant}, "org": {diffTenant}}}

// diffDBs holds the shared database (every tenant) and the solo database
// (only diffTenant's rows, global tables complete).
type diffDBs struct {
	ctx          context.Context
	shared, solo *pgx.Conn
}

func openDiffDBs(t *testing.T) diffDBs {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	t.Cleanup(cancel)
	open := func(only string) *pgx.Conn {
		conn, err := pgx.Connect(ctx, pgtest.NewDatabase(t))
		if err != nil {
			t.Fatalf("connect: %v", err)
		}
		t.Cleanup(func() { conn.Close(context.Background()) })
		if _, err := conn.Exec(ctx, diffSchema); err != nil {
			t.Fatalf("schema: %v", err)
		}
		if only != "" {
			// In a database of its own, a tenant's rows get its tenant
			// without naming it, as the proxy fills it in.
			for _, tt := range tenantTables {
				if _, err := conn.Exec(ctx, fmt.Sprintf("ALTER TABLE %s ALTER %s SET DEFAULT %s", tt[0], tt[1], only)); err != nil {
					t.Fatalf("default: %v", err)
				}
			}
		}
		for _, r := range diffRows {
			if only != "" && r.tenant != only {
				continue
			}
			if _, err := conn.Exec(ctx, "INSERT INTO "+r.table+" VALUES "+r.values); err != nil {
				t.Fatalf("rows: %v", err)
			}
		}
		return conn
	}
	return diffDBs{ctx: ctx, shared: open(""), solo: open(diffTenant)}
}

// outcome is what a statement string returned: every result's columns and
// rows (sorted: row order is not what isolation is about), or its SQLSTATE.
type outcome struct {
	results []string
	code    string
}

func run(ctx context.Context, conn *pgx.Conn, sql string) outcome {
	// Sequences are not transactional: start both databases at the same value.
	if _, err := conn.Exec(ctx, "SELECT setval('public.orders_id_seq', 1000)"); err != nil {
		return outcome{code: "setval: " + err.Error()}
	}
	rs, err := conn.PgConn().Exec(ctx, sql).ReadAll()
	if err != nil {
		var pe *pgconn.PgError
		if errors.As(err, &pe) {
			return outcome{code: pe.Code}
		}
		return outcome{code: err.Error()}
	}
	return outcome{results: pgtest.ResultTexts(rs)}
}

// notInDiffSchema matches golden statements this test cannot compare: they
// read schema metadata (which differs between any two databases: oids,
// statistics) or tables the differential schema does not have (the path-
// bound and two-dimension tables have their own end-to-end test).
var notInDiffSchema = regexp.MustCompile(`(?i)pg_|information_schema|::reg|regclass|version\(|current_setting|\b(sites|posts|comments|documents)\b`)

// isWrite reports whether sql is one INSERT, UPDATE, DELETE or MERGE.
func isWrite(sql string) bool {
	tree, err := pg.Parse(sql)
	if err != nil || len(tree.GetStmts()) != 1 {
		return false
	}
	switch tree.GetStmts()[0].GetStmt().GetNode().(type) {
	case *pg.Node_InsertStmt, *pg.Node_UpdateStmt, *pg.Node_DeleteStmt, *pg.Node_MergeStmt:
		return true
	}
	return false
}

// nondeterministic statements give different answers on two databases.
var nondeterministic = regexp.MustCompile(`(?i)random|now\(|timestamp|current_|localtime|uuid|clock|\$\d`)

// diffReads are reads beyond the golden files, chosen for their data: outer
// joins whose other side belongs to another tenant, NULL handling, self
// references and aggregates over empty groups.
var diffReads = []string{
	"SELECT o.id, c.name FROM orders o LEFT JOIN customers c ON c.id = o.customer_id",
	"SELECT o.id, c.name FROM orders o RIGHT JOIN customers c ON c.id = o.customer_id",
	"SELECT o.id, c.name FROM orders o FULL JOIN customers c ON c.id = o.customer_id",
	"SELECT c.name, count(o.id), sum(o.total) FROM customers c LEFT JOIN orders o ON o.customer_id = c.id GROUP BY c.name",
	"SELECT * FROM orders o WHERE NOT EXISTS (SELECT 1 FROM customers c WHERE c.id = o.customer_id)",
	"SELECT * FROM orders WHERE customer_id NOT IN (SELECT id FROM customers)",
	"SELECT * FROM order_items i LEFT JOIN orders o ON o.id = i.order_id LEFT JOIN customers c ON c.id = o.customer_id",
	"SELECT p.name, count(c.id) FROM plans p LEFT JOIN customers c ON c.plan_id = p.id GROUP BY p.name",
	"SELECT p.name FROM plans p WHERE NOT EXISTS (SELECT 1 FROM customers c WHERE c.plan_id = p.id)",
	"SELECT c.name, x.total FROM customers c LEFT JOIN LATERAL (SELECT sum(total) AS total FROM orders o WHERE o.customer_id = c.id) x ON true",
	"SELECT name FROM customers UNION ALL SELECT name FROM app.accounts UNION ALL SELECT name FROM projects",
	"SELECT count(*), count(DISTINCT customer_id), max(total), string_agg(note, ',' ORDER BY id) FROM orders",
	"SELECT customer_id, rank() OVER (ORDER BY total DESC) FROM orders",
	"SELECT o.id, (SELECT count(*) FROM order_items i WHERE i.order_id = o.id) FROM orders o",
	"WITH RECURSIVE chain(id) AS (SELECT 101 UNION SELECT o.id + 1 FROM chain JOIN orders o ON o.id = chain.id) SELECT * FROM chain",
	"SELECT * FROM customers c NATURAL FULL JOIN (SELECT customer_id AS id, tenant_id FROM orders) x",
	"SELECT * FROM app.accounts a FULL JOIN projects p USING (id)",
	"SELECT a.id, b.id FROM orders a JOIN orders b ON a.customer_id = b.customer_id AND a.id < b.id",
	"SELECT * FROM orders WHERE total > ALL (SELECT total FROM orders WHERE note IS NULL)",
	"SELECT jsonb_agg(o ORDER BY id) FROM orders o",
	"SELECT row_to_json(c) FROM customers c ORDER BY id",
	"SELECT DISTINCT tenant_id FROM orders",
	"SELECT * FROM orders WHERE tenant_id = 2",
	"SELECT * FROM orders ORDER BY id FOR UPDATE",
}

// TestDifferentialReads: every accepted read, rewritten and run on the
// shared database, returns what the original returns on a database holding
// only the tenant's rows.
func TestDifferentialReads(t *testing.T) {
	dbs := openDiffDBs(t)
	rw := rewrite.New(rewrite.Config{SearchPath: []string{"public"}})
	snap := testCatalog()
	var reads []string
	for _, cases := range loadGolden(t) {
		for _, c := range cases {
			if c.Reject == "" && !c.Passed && len(c.Tenants) == 0 && !c.Unscoped && c.TenantSchema == "" {
				reads = append(reads, c.SQL)
			}
		}
	}
	reads = append(reads, diffReads...)
	ran := 0
	for _, sql := range reads {
		if nondeterministic.MatchString(sql) || notInDiffSchema.MatchString(sql) || !isRead(sql) {
			continue
		}
		res, err := rw.Rewrite(sql, diffScope, snap)
		if err != nil {
			continue // golden cases written for tenant 42 may name it
		}
		ran++
		want := run(dbs.ctx, dbs.solo, sql)
		got := run(dbs.ctx, dbs.shared, res.SQL)
		if !slices.Equal(got.results, want.results) || got.code != want.code {
			t.Errorf("%s\nrewritten: %s\nshared database: %+v\nsingle-tenant database: %+v", sql, res.SQL, got, want)
		}
	}
	if ran < 100 {
		t.Fatalf("only %d reads ran; the golden files should give far more", ran)
	}
	t.Logf("%d reads agree", ran)
}

// isRead reports whether sql is one plain query (no data-modifying WITH).
func isRead(sql string) bool {
	tree, err := pg.Parse(sql)
	if err != nil || len(tree.GetStmts()) != 1 {
		return false
	}
	s := tree.GetStmts()[0].GetStmt().GetSelectStmt()
	if s == nil {
		return false
	}
	for _, cte := range s.GetWithClause().GetCtes() {
		if cte.GetCommonTableExpr().GetCtequery().GetSelectStmt() == nil {
			return false
		}
	}
	return true
}

// diffWrites are writes beyond the golden files that aim at other tenants'
// rows. isolationOnly marks statements whose result legitimately differs
// from the single-tenant database (a unique key spanning tenants).
var diffWrites = []struct {
	sql           string
	isolationOnly bool
}{
	{sql: "UPDATE orders SET total = total + 1"},
	{sql: "UPDATE orders SET note = 'mine' WHERE id = 201"},
	{sql: "UPDATE orders SET tenant_id = 1 WHERE id = 201"},
	{sql: "DELETE FROM customers WHERE id = 201"},
	{sql: "DELETE FROM orders WHERE customer_id = 101 RETURNING *"},
	{sql: "DELETE FROM orders o USING customers c WHERE c.id = o.customer_id RETURNING o.id, c.name"},
	{sql: "UPDATE orders o SET note = c.name FROM customers c WHERE c.id = o.customer_id RETURNING o.*"},
	{sql: "UPDATE orders SET total = (SELECT sum(qty) FROM order_items i WHERE i.order_id = orders.id)"},
	{sql: "INSERT INTO orders (id, customer_id) SELECT id + 1000, id FROM customers RETURNING *"},
	{sql: "INSERT INTO orders (customer_id, total) VALUES (101, 1), (201, 2) RETURNING id, tenant_id"},
	{sql: "INSERT INTO orders DEFAULT VALUES RETURNING *"},
	{sql: "INSERT INTO orders VALUES (900, 1, 101, 9, 'positional')"},
	{sql: "INSERT INTO order_items (id, order_id, qty) SELECT id + 1000, order_id, qty FROM order_items"},
	{sql: "WITH gone AS (DELETE FROM orders RETURNING *) INSERT INTO order_items (id, order_id, qty) SELECT id + 5000, id, 1 FROM gone"},
	{sql: "WITH moved AS (UPDATE customers SET plan_id = 3 RETURNING id) SELECT count(*) FROM moved"},
	{sql: "INSERT INTO orders (id, total) VALUES (105, 1) ON CONFLICT (id) DO UPDATE SET total = excluded.total + 100 RETURNING *"},
	{sql: "INSERT INTO orders (id, tenant_id, total) VALUES (105, 1, 1) ON CONFLICT (id) DO UPDATE SET tenant_id = excluded.tenant_id, total = 77"},
	{sql: "INSERT INTO orders (id, total) VALUES (201, 1) ON CONFLICT (id) DO UPDATE SET total = 0, note = 'stolen' RETURNING *", isolationOnly: true},
	{sql: "INSERT INTO orders (id, total) VALUES (201, 1) ON CONFLICT (id) DO NOTHING", isolationOnly: true},
	{sql: "UPDATE app.accounts SET name = 'renamed'"},
	{sql: "DELETE FROM projects"},
	{sql: "UPDATE settings SET value = 'light' WHERE name = 'theme'"},
}

// tenantTables lists (table, tenant column) for dumping.
var tenantTables = [][2]string{
	{"public.customers", "tenant_id"}, {"public.orders", "tenant_id"}, {"public.order_items", "tenant_id"},
	{"app.accounts", "org_id"}, {"public.projects", "org_id"},
}

// dump returns the text of every row of the tenant-bound tables whose
// tenant is (mine) or is not (!mine) diffTenant, plus the global tables
// when mine.
func dump(ctx context.Context, conn *pgx.Conn, mine bool) (string, error) {
	var b strings.Builder
	op := "<>"
	if mine {
		op = "="
	}
	queries := []string{}
	for _, t := range tenantTables {
		row := "x::text"
		if t[0] == "public.orders" {
			// Ids from the sequence follow the order rows are produced in,
			// which a set operation does not fix.
			row = "CASE WHEN x.id > 1000 THEN 'new' ELSE x.id::text END || ' ' || row(x.tenant_id, x.customer_id, x.total, x.note)::text"
		}
		queries = append(queries, fmt.Sprintf("SELECT '%s', %s FROM %s x WHERE %s::text %s '%s' ORDER BY 2", t[0], row, t[0], t[1], op, diffTenant))
	}
	if mine {
		queries = append(queries, "SELECT 'plans', x::text FROM public.plans x ORDER BY 2", "SELECT 'settings', x::text FROM public.settings x ORDER BY 2")
	}
	for _, q := range queries {
		rows, err := conn.Query(ctx, q)
		if err != nil {
			return "", err
		}
		for rows.Next() {
			var table, row string
			if err := rows.Scan(&table, &row); err != nil {
				return "", err
			}
			fmt.Fprintf(&b, "%s %s\n", table, row)
		}
		if rows.Err() != nil {
			return "", rows.Err()
		}
	}
	return b.String(), nil
}

// TestDifferentialWrites: an accepted write, rewritten and run on the shared
// database, leaves every other tenant's rows byte-identical, and leaves the
// tenant's rows (and the global tables) as the original statement leaves
// them on the single-tenant database, with the same result.
func TestDifferentialWrites(t *testing.T) {
	dbs := openDiffDBs(t)
	rw := rewrite.New(rewrite.Config{SearchPath: []string{"public"}})
	snap := testCatalog()
	type write struct {
		sql           string
		isolationOnly bool
	}
	var writes []write
	for _, cases := range loadGolden(t) {
		for _, c := range cases {
			if c.Reject == "" && !c.Passed && len(c.Tenants) == 0 && !c.Unscoped && c.TenantSchema == "" && isWrite(c.SQL) && !notInDiffSchema.MatchString(c.SQL) {
				writes = append(writes, write{sql: c.SQL})
			}
		}
	}
	for _, w := range diffWrites {
		writes = append(writes, write(w))
	}
	ran := 0
	for _, w := range writes {
		if nondeterministic.MatchString(w.sql) {
			continue
		}
		res, err := rw.Rewrite(w.sql, diffScope, snap)
		if err != nil {
			continue // golden cases written for tenant 42 may name it
		}
		ran++
		shared, err := inRollback(dbs.ctx, dbs.shared, func(tx pgx.Tx) (step, error) {
			before, err := dump(dbs.ctx, dbs.shared, false)
			if err != nil {
				return step{}, err
			}
			o := runSaved(dbs.ctx, tx, res.SQL)
			after, err := dump(dbs.ctx, dbs.shared, false)
			if err != nil {
				return step{}, err
			}
			if before != after {
				return step{}, fmt.Errorf("other tenants' rows changed:\nbefore:\n%s\nafter:\n%s", before, after)
			}
			mine, err := dump(dbs.ctx, dbs.shared, true)
			return step{o, mine}, err
		})
		if err != nil {
			t.Errorf("%s\nrewritten: %s\n%v", w.sql, res.SQL, err)
			continue
		}
		if w.isolationOnly {
			continue
		}
		solo, err := inRollback(dbs.ctx, dbs.solo, func(tx pgx.Tx) (step, error) {
			o := runSaved(dbs.ctx, tx, w.sql)
			mine, err := dump(dbs.ctx, dbs.solo, true)
			return step{o, mine}, err
		})
		if err != nil {
			t.Fatalf("%s on the single-tenant database: %v", w.sql, err)
		}
		if !slices.Equal(shared.out.results, solo.out.results) || shared.out.code != solo.out.code || shared.rows != solo.rows {
			t.Errorf("%s\nrewritten: %s\nshared database: %+v\n%s\nsingle-tenant database: %+v\n%s",
				w.sql, res.SQL, shared.out, shared.rows, solo.out, solo.rows)
		}
	}
	if ran < 60 {
		t.Fatalf("only %d writes ran; the golden files should give more", ran)
	}
	t.Logf("%d writes agree", ran)
}

// step is what one database saw: the statement's outcome and the tenant's
// rows afterwards.
type step struct {
	out  outcome
	rows string
}

// inRollback runs f in a transaction that is always rolled back.
func inRollback(ctx context.Context, conn *pgx.Conn, f func(pgx.Tx) (step, error)) (step, error) {
	tx, err := conn.Begin(ctx)
	if err != nil {
		return step{}, err
	}
	defer tx.Rollback(ctx)
	return f(tx)
}

// runSaved runs sql under a savepoint so that an error leaves the
// transaction usable.
func runSaved(ctx context.Context, tx pgx.Tx, sql string) outcome {
	if _, err := tx.Exec(ctx, "SAVEPOINT s"); err != nil {
		return outcome{code: err.Error()}
	}
	o := run(ctx, tx.Conn(), sql)
	if o.code != "" {
		if _, err := tx.Exec(ctx, "ROLLBACK TO SAVEPOINT s"); err != nil {
			return outcome{code: o.code + "; " + err.Error()}
		}
	}
	return o
}
