package e2e_test

import (
	"context"
	"net/url"
	"strings"
	"testing"
)

// leastPrivilegeGrants are the privileges the README's Security model
// names for the proxy's upstream role: DML on the application's tables,
// their sequences, and reading the catalog. Nothing else.
const leastPrivilegeGrants = `
CREATE ROLE tp_app LOGIN PASSWORD 'tp-app-secret' NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS;
GRANT USAGE ON SCHEMA public TO tp_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO tp_app;
GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO tp_app;
GRANT USAGE ON SCHEMA tenantproxy TO tp_app;
GRANT SELECT ON ALL TABLES IN SCHEMA tenantproxy TO tp_app;
`

// TestLeastPrivilegeRole: the proxy serves reads, writes, refusals and
// pooled transactions with an upstream role that holds only the grants
// the README documents, and is not a superuser.
func TestLeastPrivilegeRole(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	direct := e.direct(t)
	if _, err := direct.Exec(ctx, leastPrivilegeGrants); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_, _ = direct.Exec(context.Background(), "DROP OWNED BY tp_app; DROP ROLE tp_app")
	})
	u, err := url.Parse(e.upstream)
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.UserPassword("tp_app", "tp-app-secret")
	e.start(t, "", "--upstream", u.String())

	c := e.connect(t, "1")
	wantRows(t, column(t, c, "SELECT current_user::text"), "tp_app")
	wantRows(t, column(t, c, "SELECT rolsuper::text FROM pg_roles WHERE rolname = current_user"), "false")
	wantRows(t, column(t, c, "SELECT string_agg(name, ',' ORDER BY id) FROM customers"), "alice,bob")
	tx, err := c.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "INSERT INTO orders (customer_id, total, note) VALUES (1, 3, 'least privilege')"); err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "UPDATE orders SET total = total + 1 WHERE note = 'least privilege'"); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	wantRows(t, column(t, direct, "SELECT tenant_id || ':' || total FROM orders WHERE note = 'least privilege'"), "1:4")
	if _, err := c.Exec(ctx, "SELECT * FROM secrets"); pgCode(err) != "42501" || !strings.Contains(err.Error(), "tenantproxy") {
		t.Fatalf("uncatalogued table: %v, want the proxy's refusal", err)
	}
	other := e.connect(t, "2")
	wantRows(t, column(t, other, "SELECT count(*)::text FROM orders WHERE note = 'least privilege'"), "0")
}
