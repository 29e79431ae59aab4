package e2e_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/tenantproxy/tenantproxy/catalog"
)

// tenantSchemas is a schema-per-tenant layout: tenants 1 and 2 each keep
// invoices in a schema of their own (tenant 1 also has notes), plans is
// shared.
const tenantSchemas = `
CREATE TABLE plans (id int PRIMARY KEY, name text NOT NULL);
INSERT INTO plans VALUES (1, 'free'), (2, 'pro');
CREATE SCHEMA tenant_1;
CREATE SCHEMA tenant_2;
CREATE TABLE tenant_1.invoices (id int PRIMARY KEY, plan_id int REFERENCES plans, total numeric NOT NULL);
CREATE TABLE tenant_2.invoices (id int PRIMARY KEY, plan_id int REFERENCES plans, total numeric NOT NULL);
CREATE TABLE tenant_1.notes (id int, body text);
INSERT INTO tenant_1.invoices VALUES (1, 1, 10), (2, 2, 20);
INSERT INTO tenant_2.invoices VALUES (1, 2, 999), (7, 1, 5);
INSERT INTO tenant_1.notes VALUES (1, 'only tenant 1 has notes');
`

// TestSchemaPerTenant: with --isolation schema, unqualified names are the
// tenant's own schema's, reads equal what the tenant's schema holds, writes
// land there, shared catalogued tables are read, and another tenant's
// schema is refused with the session going on. Two tenants share one
// pooled connection.
func TestSchemaPerTenant(t *testing.T) {
	e := newEnv(t, envOptions{schema: tenantSchemas,
		tables:    []catalog.Table{{Schema: "public", Name: "plans", Kind: catalog.Global}},
		extraArgs: []string{"--isolation", "schema", "--tenant-schema", "tenant_{tenant}", "--pool-size", "1"}})
	ctx := context.Background()
	direct := e.direct(t)
	one, two := e.connect(t, "1"), e.connect(t, "2")

	for round := range 3 { // the one pooled connection moves between them
		for _, c := range []struct {
			conn   *pgx.Conn
			schema string
		}{{one, "tenant_1"}, {two, "tenant_2"}} {
			got := column(t, c.conn, "SELECT id || ':' || total FROM invoices ORDER BY id")
			want := column(t, direct, "SELECT id || ':' || total FROM "+c.schema+".invoices ORDER BY id")
			if strings.Join(got, ",") != strings.Join(want, ",") {
				t.Fatalf("round %d, %s: got %v, want %v", round, c.schema, got, want)
			}
		}
	}
	wantRows(t, column(t, one, "SELECT p.name FROM invoices i JOIN plans p ON p.id = i.plan_id ORDER BY i.id"), "free", "pro")
	wantRows(t, column(t, two, "SELECT p.name FROM invoices i JOIN plans p ON p.id = i.plan_id ORDER BY i.id"), "pro", "free")
	wantRows(t, column(t, one, "SELECT body FROM tenant_1.notes"), "only tenant 1 has notes")

	// Writes land in the tenant's own schema, in a transaction too.
	if _, err := two.Exec(ctx, "INSERT INTO invoices (id, plan_id, total) VALUES ($1, 1, 42)", 8); err != nil {
		t.Fatal(err)
	}
	tx, err := one.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "UPDATE invoices SET total = total + 1 WHERE id = 1"); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	wantRows(t, column(t, direct, "SELECT total::text FROM tenant_2.invoices WHERE id = 8"), "42")
	wantRows(t, column(t, direct, "SELECT total::text FROM tenant_1.invoices WHERE id = 1"), "11")
	wantRows(t, column(t, direct, "SELECT total::text FROM tenant_2.invoices WHERE id = 1"), "999")

	// Another tenant's schema: refused, the session goes on.
	for _, sql := range []string{
		"SELECT * FROM tenant_2.invoices",
		"SELECT * FROM invoices WHERE id IN (SELECT id FROM tenant_2.invoices)",
		"DELETE FROM tenant_2.invoices",
		"SET search_path = tenant_2",
	} {
		_, err := one.Exec(ctx, sql)
		pe := wantState(t, err, "42501")
		if !strings.HasPrefix(pe.Message, "tenantproxy: ") || pe.Hint == "" {
			t.Errorf("%s: refusal without prefix or hint: %+v", sql, pe)
		}
	}
	wantRows(t, column(t, one, "SELECT count(*) FROM invoices"), "2")
	wantRows(t, column(t, direct, "SELECT count(*) FROM tenant_2.invoices"), "3")

	// A tenant without a schema gets Postgres's own error for its name.
	_, err = e.connect(t, "3").Exec(ctx, "SELECT * FROM invoices")
	if pe := wantState(t, err, "42P01"); !strings.Contains(pe.Message, "tenant_3.invoices") {
		t.Errorf("missing schema: %s", pe.Message)
	}

	// A token naming two tenants cannot have one schema.
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	_, err = pgx.Connect(cctx, e.connString(e.token(t, "1", "2")))
	if pe := wantState(t, err, "28000"); !strings.Contains(pe.Message, "exactly one tenant") {
		t.Errorf("two tenants: %s", pe.Message)
	}
}

// TestReadOnlyTokens: a token whose scope claim lacks the write scope reads
// as usual; its writes, row locks and read-write transactions are refused
// with 25006 and the session goes on; upstream its transactions are READ
// ONLY, so a catalogue-allowed function that writes fails there too. A
// read-write session that gets the same pooled connection next can write.
func TestReadOnlyTokens(t *testing.T) {
	e := newEnv(t, envOptions{
		prepare: func(t testing.TB, dsn string) {
			conn, err := pgx.Connect(context.Background(), dsn)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close(context.Background())
			if _, err := conn.Exec(context.Background(), `CREATE FUNCTION public.touch_order(int) RETURNS int LANGUAGE sql
				AS 'UPDATE orders SET note = ''touched'' WHERE id = $1 RETURNING id'`); err != nil {
				t.Fatal(err)
			}
		},
		extraArgs: []string{"--pool-size", "1"}})
	e.cli(t, "catalog", "allow-function", "public.touch_order")
	ctx := context.Background()
	reader := e.connectToken(t, e.claimsToken(t, map[string]any{"tenant_id": 1, "scope": "orders:read profile"}))
	writer := e.connectToken(t, e.claimsToken(t, map[string]any{"tenant_id": 1, "scope": []string{"read", "write"}}))

	wantRows(t, column(t, reader, "SELECT id FROM orders ORDER BY id"), "10", "11", "12")
	for _, sql := range []string{
		"INSERT INTO orders (customer_id, total) VALUES (1, 5)",
		"UPDATE orders SET total = 0",
		"DELETE FROM orders",
		"WITH d AS (DELETE FROM orders RETURNING id) SELECT count(*) FROM d",
		"SELECT * FROM orders FOR UPDATE",
		"BEGIN READ WRITE",
		"SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE",
		"RESET transaction_read_only", // before Postgres 16: read-write
	} {
		_, err := reader.Exec(ctx, sql)
		if pe := wantState(t, err, "25006"); !strings.Contains(pe.Message, "read-only") || !strings.Contains(pe.Hint, "write scope") {
			t.Errorf("%s: %+v", sql, pe)
		}
	}
	wantRows(t, column(t, reader, "SHOW transaction_read_only"), "on")
	// The second line: what the rewriter lets through still runs read-only.
	_, err := reader.Exec(ctx, "SELECT public.touch_order(10)")
	wantState(t, err, "25006")
	// The pooled connection the reader used serves a writer next.
	for range 3 {
		if _, err := writer.Exec(ctx, "UPDATE orders SET note = 'w' WHERE id = 11"); err != nil {
			t.Fatalf("read-write token after a read-only one: %v", err)
		}
		wantRows(t, column(t, reader, "SELECT count(*) FROM orders"), "3")
	}
	wantRows(t, column(t, e.direct(t), "SELECT coalesce(note, '-') FROM orders WHERE id IN (10, 11) ORDER BY id"), "first", "w")

	// The audit stream says which sessions were read-only.
	events := auditEvents(t, filepath.Join(e.dir, "audit.jsonl"))
	access := map[string]int{}
	readOnly := map[string]bool{} // sessions
	for _, ev := range events {
		if ev.Kind == "statement" {
			access[ev.Access]++
			readOnly[ev.Session] = readOnly[ev.Session] || ev.Access == "read-only"
		}
	}
	if access["read-only"] < 10 || access[""] < 3 || len(access) != 2 {
		t.Errorf("statements by access: %v; want the reader's read-only, the writer's without", access)
	}
	for _, ev := range events {
		if readOnly[ev.Session] && ev.Kind != "session.accepted" && ev.Access != "read-only" {
			t.Errorf("%s event of the read-only session records access %q", ev.Kind, ev.Access)
		}
	}
}

// TestUnscopedRole: with --unscoped-role, a token of that role runs without
// tenant scoping (every tenant's rows, uncatalogued tables, DDL), each
// statement audited as unscoped; what protects the server still applies.
// Without the flag the role is only a claim, and DDL stays refused to
// tenant sessions.
func TestUnscopedRole(t *testing.T) {
	e := newEnv(t, envOptions{extraArgs: []string{"--unscoped-role", "platform-admin"}})
	ctx := context.Background()
	admin := e.connectToken(t, e.claimsToken(t, map[string]any{"role": "platform-admin", "sub": "ops@example.com"}))
	wantRows(t, column(t, admin, "SELECT count(*) FROM orders"), "6")
	wantRows(t, column(t, admin, "SELECT value FROM secrets"), "do not leak")
	for _, sql := range []string{
		"CREATE TABLE invoices (id int PRIMARY KEY, tenant_id int NOT NULL)",
		"CREATE INDEX ON invoices (tenant_id)",
		"INSERT INTO invoices VALUES (1, 1), (2, 2)",
		"UPDATE orders SET note = 'audited' WHERE tenant_id = 3",
	} {
		if _, err := admin.Exec(ctx, sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	wantRows(t, column(t, admin, "SELECT nextval('orders_id_seq') > 100"), "true")
	for sql, code := range map[string]string{
		"SET ROLE postgres": "42501",
		"SELECT query_to_xml('select 1', true, true, '')": "42501",
		"DO $$ BEGIN PERFORM 1; END $$":                   "42501",
		"CREATE TEMP TABLE scratch (id int)":              "42501", // transaction pooling
	} {
		_, err := admin.Exec(ctx, sql)
		wantState(t, err, code)
	}
	wantRows(t, column(t, admin, "SELECT count(*) FROM invoices"), "2")

	// A tenant session: still scoped, DDL refused.
	tenant := e.connect(t, "3")
	wantRows(t, column(t, tenant, "SELECT note FROM orders"), "audited")
	_, err := tenant.Exec(ctx, "CREATE TABLE t2 (id int)")
	wantState(t, err, "42501")

	events := auditEvents(t, filepath.Join(e.dir, "audit.jsonl"))
	unscoped := 0
	for _, ev := range events {
		if ev.Subject == "ops@example.com" && ev.Kind != "session.accepted" && (ev.Access != "unscoped" || ev.Role != "platform-admin") {
			t.Errorf("admin %s event records access %q, role %q", ev.Kind, ev.Access, ev.Role)
		}
		if ev.Subject == "" && ev.Access != "" {
			t.Errorf("tenant %s event records access %q", ev.Kind, ev.Access)
		}
		if ev.Kind == "statement" && ev.Subject == "ops@example.com" {
			if ev.Decision != "unscoped" && ev.Decision != "rejected" {
				t.Errorf("admin statement %q audited as %s", ev.SQL, ev.Decision)
			}
			if ev.Decision == "unscoped" {
				unscoped++
			}
		}
	}
	if unscoped < 7 {
		t.Errorf("%d statements audited unscoped, want at least 7", unscoped)
	}
}

// TestUnscopedRoleOff: without --unscoped-role, a token with that role and
// no tenant is refused at connect.
func TestUnscopedRoleOff(t *testing.T) {
	e := newEnv(t)
	cctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := pgx.Connect(cctx, e.connString(e.claimsToken(t, map[string]any{"role": "platform-admin"})))
	wantState(t, err, "28000")
}
