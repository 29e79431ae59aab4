package e2e_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/tenantproxy/tenantproxy/internal/pgtest"
)

// differentialReads are statements whose results through the proxy, on the
// shared database, must equal their results on a database that holds only
// the session's tenant's rows (plus the global tables).
var differentialReads = []string{
	"SELECT * FROM customers",
	"SELECT * FROM orders",
	"TABLE orders",
	"SELECT id, name FROM customers WHERE plan_id = 2",
	"SELECT count(*), sum(total), min(id), max(id) FROM orders",
	"SELECT customer_id, count(*) FROM orders GROUP BY customer_id HAVING count(*) > 0",
	"SELECT * FROM orders ORDER BY total DESC LIMIT 2",
	"SELECT * FROM orders ORDER BY id OFFSET 1 FETCH FIRST 1 ROWS ONLY",
	"SELECT DISTINCT customer_id FROM orders",
	"SELECT DISTINCT ON (customer_id) customer_id, id FROM orders ORDER BY customer_id, id DESC",
	"SELECT o.id, c.name FROM orders o JOIN customers c ON c.id = o.customer_id",
	"SELECT o.id, c.name FROM orders o, customers c WHERE c.id = o.customer_id",
	"SELECT c.name, o.id FROM customers c LEFT JOIN orders o ON o.customer_id = c.id",
	"SELECT c.name, o.id FROM orders o RIGHT JOIN customers c ON o.customer_id = c.id",
	"SELECT c.name, o.id FROM customers c FULL JOIN orders o ON o.customer_id = c.id AND o.total > 9",
	"SELECT c.name, o.id FROM customers c LEFT JOIN orders o ON o.customer_id = c.id WHERE o.id IS NULL",
	"SELECT p.name, c.name FROM plans p LEFT JOIN customers c ON c.plan_id = p.id",
	"SELECT p.name, count(c.id) FROM plans p LEFT JOIN customers c ON c.plan_id = p.id GROUP BY p.name",
	"SELECT a.name, b.name FROM customers a JOIN customers b ON a.id < b.id",
	"SELECT * FROM customers NATURAL JOIN (SELECT id, tenant_id FROM orders) x",
	"SELECT * FROM customers JOIN orders USING (tenant_id)",
	"SELECT c.name, x.total FROM customers c CROSS JOIN LATERAL (SELECT sum(total) AS total FROM orders o WHERE o.customer_id = c.id) x",
	"SELECT c.name, x.id FROM customers c LEFT JOIN LATERAL (SELECT id FROM orders o WHERE o.customer_id = c.id ORDER BY id LIMIT 1) x ON true",
	"SELECT name FROM customers WHERE id IN (SELECT customer_id FROM orders)",
	"SELECT name FROM customers WHERE id NOT IN (SELECT customer_id FROM orders WHERE customer_id IS NOT NULL)",
	"SELECT name FROM customers c WHERE EXISTS (SELECT 1 FROM orders o WHERE o.customer_id = c.id AND o.total > 6)",
	"SELECT name, (SELECT count(*) FROM orders o WHERE o.customer_id = c.id) FROM customers c",
	"SELECT (SELECT count(*) FROM orders), (SELECT count(*) FROM customers)",
	"SELECT customer_id FROM orders GROUP BY customer_id HAVING sum(total) > (SELECT avg(total) FROM orders)",
	"SELECT id FROM orders ORDER BY (SELECT count(*) FROM customers c WHERE c.id = orders.customer_id), id",
	"SELECT * FROM (SELECT customer_id, sum(total) s FROM orders GROUP BY 1) t WHERE s > 5",
	"WITH t AS (SELECT * FROM orders) SELECT * FROM t",
	"WITH orders AS (SELECT * FROM orders WHERE total > 6) SELECT * FROM orders",
	"WITH a AS (SELECT * FROM customers), b AS (SELECT a.*, o.total FROM a JOIN orders o ON o.customer_id = a.id) SELECT * FROM b",
	"WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < (SELECT count(*) FROM orders)) SELECT * FROM r",
	"WITH x AS MATERIALIZED (SELECT * FROM customers) SELECT count(*) FROM x",
	"SELECT name FROM customers UNION SELECT note FROM orders",
	"SELECT customer_id FROM orders UNION ALL SELECT id FROM customers",
	"SELECT id FROM customers INTERSECT SELECT customer_id FROM orders",
	"SELECT id FROM customers EXCEPT SELECT customer_id FROM orders",
	"SELECT id FROM customers EXCEPT ALL SELECT customer_id FROM orders",
	"SELECT customer_id, total, sum(total) OVER (PARTITION BY customer_id ORDER BY id) FROM orders",
	"SELECT id, row_number() OVER (ORDER BY id), rank() OVER (ORDER BY total) FROM orders",
	"SELECT customer_id, count(*) FROM orders GROUP BY ROLLUP (customer_id)",
	"SELECT customer_id, note, count(*) FROM orders GROUP BY GROUPING SETS ((customer_id), (note), ())",
	"SELECT customer_id, note, count(*) FROM orders GROUP BY CUBE (customer_id, note)",
	"SELECT * FROM (VALUES (1), (2), (3)) v(x) WHERE x IN (SELECT customer_id FROM orders)",
	"SELECT coalesce(max(total), 0) FROM orders WHERE customer_id = 999",
	"SELECT json_agg(name ORDER BY name) FROM customers",
	"SELECT string_agg(name, ',' ORDER BY name) FILTER (WHERE plan_id IS NOT NULL) FROM customers",
	"SELECT upper(name), length(name) FROM customers WHERE name LIKE '%a%'",
	"SELECT * FROM customers c WHERE c.plan_id = ANY (SELECT id FROM plans)",
	"SELECT count(*) FROM orders WHERE total > ALL (SELECT total FROM orders o2 WHERE o2.id < orders.id)",
	"SELECT c FROM customers c",
	"SELECT c.* FROM customers c",
	"SELECT * FROM ONLY customers",
	"SELECT 1 FROM customers HAVING count(*) > 1",
	"SELECT * FROM orders FOR UPDATE",
	"SELECT * FROM orders o JOIN customers c ON c.id = o.customer_id FOR SHARE OF o",
}

// TestIsolationEquivalenceForReads is the product's promise for reads: for
// tenant T, an accepted statement returns exactly what it returns on a
// database holding only T's rows.
func TestIsolationEquivalenceForReads(t *testing.T) {
	e := newEnv(t)
	only := onlyTenantDatabase(t, "1")
	one := e.connect(t, "1")
	ctx := context.Background()
	for _, sql := range differentialReads {
		t.Run(sql, func(t *testing.T) {
			want, err := textRows(ctx, only.PgConn(), sql)
			if err != nil {
				t.Fatalf("on the single-tenant database: %v", err)
			}
			got, err := textRows(ctx, one.PgConn(), sql)
			if err != nil {
				t.Fatalf("through the proxy: %v", err)
			}
			if !slices.Equal(got, want) {
				t.Fatalf("through the proxy:\n  %v\nsingle-tenant database:\n  %v", got, want)
			}
		})
	}
}

// differentialWrites are statements that must change exactly what they change
// on a single-tenant database, and nothing of any other tenant.
var differentialWrites = []string{
	"UPDATE orders SET total = total * 2",
	"UPDATE orders SET note = 'x' WHERE customer_id = 3",
	"UPDATE orders o SET note = c.name FROM customers c WHERE c.id = o.customer_id",
	"UPDATE orders SET total = (SELECT count(*) FROM customers) WHERE id = 10",
	"UPDATE customers SET plan_id = 2 WHERE plan_id IS DISTINCT FROM 2 RETURNING id",
	"DELETE FROM orders WHERE total > 8",
	"DELETE FROM orders o USING customers c WHERE c.id = o.customer_id AND c.name IN ('bob', 'carol')",
	"DELETE FROM orders WHERE customer_id IN (SELECT id FROM customers WHERE plan_id = 1)",
	"DELETE FROM orders",
	"WITH gone AS (DELETE FROM orders WHERE total < 10 RETURNING customer_id) UPDATE customers SET name = name || '!' WHERE id IN (SELECT customer_id FROM gone)",
	"INSERT INTO orders (tenant_id, customer_id, total) SELECT 1, id, 1 FROM customers",
	"INSERT INTO customers (id, tenant_id, name) VALUES (100, 1, 'new'), (101, 1, 'newer')",
	"INSERT INTO orders (tenant_id, customer_id, total) VALUES (1, 1, 1) RETURNING id, tenant_id",
}

// TestIsolationEquivalenceForWrites: an accepted write changes only the
// session's tenant's rows, exactly as on a single-tenant database.
func TestIsolationEquivalenceForWrites(t *testing.T) {
	for _, sql := range differentialWrites {
		t.Run(sql, func(t *testing.T) {
			e := newEnv(t)
			only := onlyTenantDatabase(t, "1")
			one := e.connect(t, "1")
			direct := e.direct(t)
			ctx := context.Background()
			othersBefore := snapshotRows(t, direct, "tenant_id <> 1")
			if _, err := only.Exec(ctx, sql); err != nil {
				t.Fatalf("on the single-tenant database: %v", err)
			}
			if _, err := one.Exec(ctx, sql); err != nil {
				t.Fatalf("through the proxy: %v", err)
			}
			if after := snapshotRows(t, direct, "tenant_id <> 1"); !slices.Equal(after, othersBefore) {
				t.Fatalf("other tenants' rows changed:\nbefore %v\nafter  %v", othersBefore, after)
			}
			mine, want := snapshotRows(t, direct, "tenant_id = 1"), snapshotRows(t, only, "true")
			if !slices.Equal(mine, want) {
				t.Fatalf("tenant 1's rows differ from the single-tenant database:\n  %v\n  %v", mine, want)
			}
		})
	}
}

// onlyTenantDatabase is a database with the demo schema and only one
// tenant's rows of the tenant-bound tables (global tables complete).
func onlyTenantDatabase(t *testing.T, tenant string) *pgx.Conn {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, pgtest.NewDatabase(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	if _, err := conn.Exec(ctx, demoSchema); err != nil {
		t.Fatal(err)
	}
	for _, table := range []string{"orders", "customers"} {
		if _, err := conn.Exec(ctx, fmt.Sprintf("DELETE FROM %s WHERE tenant_id <> %s", table, tenant)); err != nil {
			t.Fatal(err)
		}
	}
	return conn
}

// snapshotRows returns every row of the tenant-bound tables matching cond, as
// sorted text.
func snapshotRows(t *testing.T, conn *pgx.Conn, cond string) []string {
	t.Helper()
	var out []string
	for _, table := range []string{"orders", "customers"} {
		rows, err := textRows(context.Background(), conn.PgConn(), fmt.Sprintf("SELECT %s::text FROM %s WHERE %s", table, table, cond))
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rows {
			out = append(out, table+r)
		}
	}
	slices.Sort(out)
	return out
}

// textRows runs sql with the simple protocol and returns each row as its text
// values joined, sorted (result order is compared only where ORDER BY makes
// it part of the answer, through LIMIT/OFFSET).
func textRows(ctx context.Context, conn *pgconn.PgConn, sql string) ([]string, error) {
	results, err := conn.Exec(ctx, sql).ReadAll()
	if err != nil {
		return nil, err
	}
	var out []string
	for _, res := range results {
		for _, row := range res.Rows {
			vals := make([]string, len(row))
			for i, v := range row {
				if v == nil {
					vals[i] = "NULL"
				} else {
					vals[i] = string(v)
				}
			}
			out = append(out, strings.Join(vals, "|"))
		}
	}
	slices.Sort(out)
	return out, nil
}
