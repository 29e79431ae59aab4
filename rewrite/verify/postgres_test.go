package verify_test

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tenantproxy/tenantproxy/internal/pgtest"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// schema matches testSnapshot; tenants 42 and 43 both have rows.
const schema = `
CREATE SCHEMA app;
CREATE TABLE public.orders (id int PRIMARY KEY, tenant_id int NOT NULL, customer_id int, total int);
CREATE TABLE public.customers (id int PRIMARY KEY, tenant_id int NOT NULL, name text);
CREATE TABLE public.plans (id int PRIMARY KEY, name text);
CREATE TABLE public.settings (k text PRIMARY KEY, v text);
CREATE TABLE app.accounts (id int PRIMARY KEY, org_id int NOT NULL, email text);
CREATE TABLE public.sites (id int PRIMARY KEY, tenant_id int NOT NULL);
CREATE TABLE public.posts (id int PRIMARY KEY, site_id int REFERENCES public.sites, title text);
CREATE TABLE public.documents (id int PRIMARY KEY, org_id int NOT NULL, author_id int NOT NULL);
INSERT INTO public.sites VALUES (5, 42), (6, 43);
INSERT INTO public.customers VALUES (1, 42, 'ours'), (2, 43, 'theirs');
INSERT INTO public.orders VALUES (10, 42, 1, 5), (11, 43, 42, 7), (12, 43, 2, 9);
INSERT INTO public.plans VALUES (1, 'basic'), (2, 'pro');
`

func testDB(t *testing.T) (*pgx.Conn, context.Context) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	conn, err := pgx.Connect(ctx, pgtest.NewDatabase(t))
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	if _, err := conn.Exec(ctx, schema); err != nil {
		t.Fatalf("schema: %v", err)
	}
	return conn, ctx
}

// TestAcceptedShapesRunOnPostgres shows that every accepted shape is real
// SQL that Postgres executes, so the shapes reported to the rewriter are
// usable. Statements with parameters or transaction control are skipped.
func TestAcceptedShapesRunOnPostgres(t *testing.T) {
	conn, ctx := testDB(t)
	var server int
	if err := conn.QueryRow(ctx, "SELECT current_setting('server_version_num')::int").Scan(&server); err != nil {
		t.Fatal(err)
	}
	for _, tc := range accepted {
		if tc.sql == "" || strings.Contains(tc.sql, "$") || strings.Contains(tc.sql, "BEGIN") || strings.HasPrefix(tc.sql, "COPY") { // COPY needs the copy sub-protocol
			continue
		}
		t.Run(tc.name, func(t *testing.T) {
			if server < tc.minServer {
				t.Skipf("needs server_version_num %d, have %d", tc.minServer, server)
			}
			tx, err := conn.Begin(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer tx.Rollback(ctx)
			if _, err := tx.Exec(ctx, tc.sql, pgx.QueryExecModeSimpleProtocol); err != nil {
				t.Fatalf("Postgres refused accepted statement %q: %v", tc.sql, err)
			}
		})
	}
}

// TestPostgresFactsTheVerifierReliesOn pins the Postgres behaviours behind
// rules that might look over-cautious.
func TestPostgresFactsTheVerifierReliesOn(t *testing.T) {
	conn, ctx := testDB(t)
	count := func(t *testing.T, sql string) int {
		t.Helper()
		var n int
		if err := conn.QueryRow(ctx, sql).Scan(&n); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
		return n
	}

	t.Run("an aliased join hides its tables, so a WHERE reference resolves to the outer query", func(t *testing.T) {
		// For the outer row of tenant 42 the inner "o.tenant_id = 42" is the
		// outer o's column: every tenant's orders are counted.
		n := count(t, `SELECT (SELECT count(*) FROM (public.orders o JOIN public.plans p ON p.id = 1) AS j WHERE o.tenant_id = 42)
			FROM public.orders o WHERE o.id = 10`)
		if n != 3 {
			t.Fatalf("inner count = %d, want all 3 orders (predicate bound to the outer query)", n)
		}
	})

	t.Run("column aliases can rename another column to the tenant column's name", func(t *testing.T) {
		n := count(t, `SELECT count(*) FROM public.orders AS o(id, x, tenant_id) WHERE o.tenant_id = 42`)
		if n != 1 { // order 11 of tenant 43 has customer_id 42
			t.Fatalf("count = %d, want the one foreign row whose customer_id is 42", n)
		}
	})

	t.Run("a non-recursive CTE does not see later siblings", func(t *testing.T) {
		n := count(t, `WITH x AS (SELECT * FROM orders), orders AS (SELECT 1 AS id) SELECT count(*) FROM x`)
		if n != 3 {
			t.Fatalf("count = %d, want the table's 3 rows", n)
		}
	})

	t.Run("field selection and function notation reach system columns", func(t *testing.T) {
		n := count(t, `SELECT count(*) FROM public.orders o WHERE (o).xmin IS NOT NULL AND ctid(o) IS NOT NULL`)
		if n != 3 {
			t.Fatalf("count = %d, want 3", n)
		}
	})

	t.Run("INSERT with a column list needs exactly that many values", func(t *testing.T) {
		for _, sql := range []string{
			`INSERT INTO public.orders (id, tenant_id) SELECT 1`,
			`INSERT INTO public.orders (id, tenant_id) SELECT 1, 42, 3`,
			`INSERT INTO public.orders (id, tenant_id) SELECT * FROM (SELECT 1, 42, 3) AS x`,
		} {
			if _, err := conn.Exec(ctx, sql); err == nil {
				t.Errorf("Postgres accepted %q; counting INSERT positions from the end would be unsound", sql)
			}
		}
	})
}
