package e2e_test

import (
	"context"
	"strings"
	"testing"
)

// One proxy serves both tenants; each sees only its own rows of the same
// tables, through joins, outer joins, subqueries, CTEs and set operations.
func TestTenantsSeeOnlyTheirOwnRows(t *testing.T) {
	e := newEnv(t)
	one, two := e.connect(t, "1"), e.connect(t, "2")

	cases := []struct {
		name     string
		sql      string
		one, two []string
	}{
		{"plain select", "SELECT name FROM customers ORDER BY id", []string{"alice", "bob"}, []string{"carol", "dave"}},
		{"count", "SELECT count(*) FROM orders", []string{"3"}, []string{"2"}},
		{"inner join", "SELECT o.id FROM orders o JOIN customers c ON c.id = o.customer_id ORDER BY o.id", []string{"10", "11", "12"}, []string{"20", "21"}},
		{"join to a global table", "SELECT c.name || ':' || p.name FROM customers c JOIN plans p ON p.id = c.plan_id ORDER BY c.id", []string{"alice:free", "bob:pro"}, []string{"carol:pro"}},
		{"left join keeps unmatched rows", "SELECT c.name, count(o.id) FROM customers c LEFT JOIN orders o ON o.customer_id = c.id GROUP BY c.name ORDER BY c.name", []string{"alice", "bob"}, []string{"carol", "dave"}},
		{"right join from a global table", "SELECT p.name FROM customers c RIGHT JOIN plans p ON p.id = c.plan_id ORDER BY p.id, c.id", []string{"free", "pro"}, []string{"free", "pro"}},
		{"full join", "SELECT coalesce(c.name, '-') FROM customers c FULL JOIN orders o ON o.customer_id = c.id AND o.total > 50 ORDER BY 1", []string{"-", "-", "-", "alice", "bob"}, []string{"-", "carol", "dave"}},
		{"subquery in where", "SELECT name FROM customers WHERE id IN (SELECT customer_id FROM orders WHERE total > 6) ORDER BY name", []string{"alice", "bob"}, []string{"carol", "dave"}},
		{"correlated subquery in select list", "SELECT (SELECT count(*) FROM orders o WHERE o.customer_id = c.id) FROM customers c ORDER BY c.id", []string{"2", "1"}, []string{"1", "1"}},
		{"exists", "SELECT count(*) FROM customers c WHERE NOT EXISTS (SELECT 1 FROM orders o WHERE o.customer_id = c.id)", []string{"0"}, []string{"0"}},
		{"cte", "WITH big AS (SELECT * FROM orders WHERE total >= 10) SELECT count(*) FROM big", []string{"2"}, []string{"1"}},
		{"cte named like the table", "WITH orders AS (SELECT * FROM orders WHERE total < 8) SELECT id FROM orders ORDER BY id", []string{"12"}, []string{"21"}},
		{"union all", "SELECT name FROM customers UNION ALL SELECT note FROM orders WHERE note IS NOT NULL ORDER BY 1", []string{"alice", "bob", "first", "small"}, []string{"big", "carol", "dave"}},
		{"self join", "SELECT count(*) FROM customers a CROSS JOIN customers b", []string{"4"}, []string{"4"}},
		{"aggregate over everything", "SELECT sum(total)::int FROM orders", []string{"36"}, []string{"107"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			wantRows(t, column(t, one, c.sql), c.one...)
			wantRows(t, column(t, two, c.sql), c.two...)
		})
	}
}

// Reads through the extended protocol with parameters, as every driver sends.
func TestExtendedProtocolWithParameters(t *testing.T) {
	e := newEnv(t)
	one := e.connect(t, "1")
	wantRows(t, column(t, one, "SELECT name FROM customers WHERE id = $1 OR id = $2 ORDER BY id", 2, 3), "bob")
	wantRows(t, column(t, one, "SELECT id FROM orders WHERE total > $1 ORDER BY id", 6), "10", "11")
	// The same statement prepared once and executed for several values.
	ctx := context.Background()
	if _, err := one.Prepare(ctx, "by_customer", "SELECT id FROM orders WHERE customer_id = $1 ORDER BY id"); err != nil {
		t.Fatal(err)
	}
	wantRows(t, column(t, one, "by_customer", 1), "10", "12")
	wantRows(t, column(t, one, "by_customer", 3)) // tenant 2's customer: nothing
}

// Writes change only the session's tenant's rows, whatever they say.
func TestWritesTouchOnlyTheSessionsTenant(t *testing.T) {
	e := newEnv(t)
	one := e.connect(t, "1")
	direct := e.direct(t)
	ctx := context.Background()

	tag, err := one.Exec(ctx, "UPDATE orders SET note = 'touched'")
	if err != nil {
		t.Fatal(err)
	}
	if tag.RowsAffected() != 3 {
		t.Fatalf("UPDATE affected %d rows, want tenant 1's 3", tag.RowsAffected())
	}
	wantRows(t, column(t, direct, "SELECT count(*) FROM orders WHERE note = 'touched' AND tenant_id <> 1"), "0")

	tag, err = one.Exec(ctx, "DELETE FROM orders WHERE customer_id = 3 OR total > 50")
	if err != nil {
		t.Fatal(err)
	}
	if tag.RowsAffected() != 0 {
		t.Fatalf("DELETE of another tenant's orders affected %d rows", tag.RowsAffected())
	}
	wantRows(t, column(t, direct, "SELECT count(*) FROM orders WHERE tenant_id = 2"), "2")

	// UPDATE ... FROM joins only the tenant's rows.
	if _, err := one.Exec(ctx, "UPDATE orders o SET total = o.total + 1 FROM customers c WHERE c.id = o.customer_id AND c.name = 'carol'"); err != nil {
		t.Fatal(err)
	}
	wantRows(t, column(t, direct, "SELECT total::int FROM orders WHERE id = 20"), "100")

	// The tenant column cannot be moved to another tenant.
	_, err = one.Exec(ctx, "UPDATE orders SET tenant_id = 2 WHERE id = 10")
	wantState(t, err, "42501")
	_, err = one.Exec(ctx, "UPDATE orders SET tenant_id = $1 WHERE id = 10", 2)
	wantState(t, err, "42501")
	wantRows(t, column(t, direct, "SELECT tenant_id FROM orders WHERE id = 10"), "1")
}

// INSERT fills the tenant column, and refuses rows naming another tenant
// whether as a literal or as a bound parameter.
func TestInsertFillsAndGuardsTheTenantColumn(t *testing.T) {
	e := newEnv(t)
	one := e.connect(t, "1")
	direct := e.direct(t)
	ctx := context.Background()

	if _, err := one.Exec(ctx, "INSERT INTO orders (customer_id, total) VALUES (1, 3), (2, 4)"); err != nil {
		t.Fatal(err)
	}
	if _, err := one.Exec(ctx, "INSERT INTO orders (tenant_id, customer_id, total) VALUES ($1, $2, $3)", 1, 1, 9); err != nil {
		t.Fatal(err)
	}
	if _, err := one.Exec(ctx, "INSERT INTO orders (tenant_id, customer_id, total) VALUES (1, 1, 8)", pgxSimple); err != nil {
		t.Fatal(err)
	}
	wantRows(t, column(t, direct, "SELECT tenant_id || ':' || total FROM orders WHERE id > 100 ORDER BY id"), "1:3", "1:4", "1:9", "1:8")

	_, err := one.Exec(ctx, "INSERT INTO orders (tenant_id, customer_id, total) VALUES (2, 3, 1)")
	wantState(t, err, "42501")
	_, err = one.Exec(ctx, "INSERT INTO orders (tenant_id, customer_id, total) VALUES ($1, $2, $3)", 2, 3, 1)
	wantState(t, err, "42501")
	_, err = one.Exec(ctx, "INSERT INTO orders (tenant_id, customer_id, total) VALUES ($1::text::int, 3, 1)", "2")
	wantState(t, err, "42501")
	wantRows(t, column(t, direct, "SELECT count(*) FROM orders WHERE tenant_id = 2"), "2")

	// RETURNING shows the filled tenant.
	wantRows(t, column(t, one, "INSERT INTO orders (customer_id, total) VALUES (1, 1) RETURNING tenant_id"), "1")
}

// An uncatalogued table, a disallowed function and an unsupported statement
// are refused with 42501 and a reason; the session carries on.
func TestRefusalsLeaveTheSessionUsable(t *testing.T) {
	e := newEnv(t)
	one := e.connect(t, "1")
	ctx := context.Background()
	for _, sql := range []string{
		"SELECT * FROM secrets",
		"SELECT query_to_xml('select * from secrets', true, true, '')",
		"DROP TABLE orders",
		"SET search_path = evil",
		"SELECT * FROM pg_catalog.pg_stat_activity",
		"SELECT pg_relation_size('orders')",
	} {
		_, err := one.Exec(ctx, sql)
		pgErr := wantState(t, err, "42501")
		if !strings.HasPrefix(pgErr.Message, "tenantproxy: ") || pgErr.Hint == "" {
			t.Errorf("%s: refusal %q (hint %q) should start with tenantproxy: and carry a hint", sql, pgErr.Message, pgErr.Hint)
		}
		wantRows(t, column(t, one, "SELECT count(*) FROM customers"), "2")
	}
	_, err := one.Exec(ctx, "SELEC 1")
	wantState(t, err, "42601")
	wantRows(t, column(t, one, "SELECT 1"), "1")
}

// A refused statement inside BEGIN aborts the transaction exactly as a
// Postgres error would: later statements fail until ROLLBACK.
func TestRefusalInsideTransactionAbortsIt(t *testing.T) {
	e := newEnv(t)
	one := e.connect(t, "1")
	ctx := context.Background()
	tx, err := one.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "UPDATE orders SET note = 'in tx'"); err != nil {
		t.Fatal(err)
	}
	_, err = tx.Exec(ctx, "SELECT * FROM secrets")
	wantState(t, err, "42501")
	if st := one.PgConn().TxStatus(); st != 'E' {
		t.Fatalf("transaction status after refusal = %q, want 'E'", st)
	}
	_, err = tx.Exec(ctx, "SELECT 1")
	wantState(t, err, "25P02")
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	wantRows(t, column(t, e.direct(t), "SELECT count(*) FROM orders WHERE note = 'in tx'"), "0")
	wantRows(t, column(t, one, "SELECT count(*) FROM orders"), "3")

	// Simple protocol, as psql sends it.
	res := one.PgConn().Exec(ctx, "BEGIN; SELECT 1")
	if _, err := res.ReadAll(); err != nil {
		t.Fatal(err)
	}
	_, err = one.Exec(ctx, "SELECT * FROM secrets", pgxSimple)
	wantState(t, err, "42501")
	if st := one.PgConn().TxStatus(); st != 'E' {
		t.Fatalf("transaction status after simple-protocol refusal = %q, want 'E'", st)
	}
	if _, err := one.Exec(ctx, "ROLLBACK"); err != nil {
		t.Fatal(err)
	}
	if st := one.PgConn().TxStatus(); st != 'I' {
		t.Fatalf("transaction status after ROLLBACK = %q, want 'I'", st)
	}
}
