package e2e_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/tenantproxy/tenantproxy/catalog"
)

// upstreamBackends counts the proxy's client backends on the test
// database (every other backend but the caller's own and the catalog
// watcher's).
func upstreamBackends(t *testing.T, direct *pgx.Conn, database string) int {
	t.Helper()
	var n int
	if err := direct.QueryRow(context.Background(), `SELECT count(*) FROM pg_stat_activity
		WHERE datname = $1 AND backend_type = 'client backend' AND pid <> pg_backend_pid()
		AND application_name <> $2`, database, catalog.WatcherApplicationName).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// pgCode is the SQLSTATE of err, or "".
func pgCode(err error) string {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code
	}
	return ""
}

// TestPoolingInterleavesTenantsOnOneConnection: with one upstream
// connection, two tenants' transactions take turns on it, each seeing and
// changing only its own rows, each keeping its own settings and its own
// protocol prepared statements, and only one backend ever exists.
func TestPoolingInterleavesTenantsOnOneConnection(t *testing.T) {
	e := newEnv(t, envOptions{extraArgs: []string{"--pool-size", "1"}})
	ctx := context.Background()
	direct := e.direct(t)
	one, two := e.connect(t, "1"), e.connect(t, "2")
	if _, err := one.Exec(ctx, "SET statement_timeout = '4321ms'", pgx.QueryExecModeSimpleProtocol); err != nil {
		t.Fatal(err)
	}
	if _, err := two.Exec(ctx, "SET application_name = 'tenant-two'", pgx.QueryExecModeSimpleProtocol); err != nil {
		t.Fatal(err)
	}
	for round := range 20 {
		for _, c := range []struct {
			conn          *pgx.Conn
			tenant, names string
		}{{one, "1", "alice,bob"}, {two, "2", "carol,dave"}} {
			tx, err := c.conn.Begin(ctx)
			if err != nil {
				t.Fatal(err)
			}
			note := fmt.Sprintf("round %d of %s", round, c.tenant)
			if _, err := tx.Exec(ctx, "INSERT INTO orders (customer_id, total, note) VALUES (NULL, $1, $2)", round, note); err != nil {
				t.Fatal(err)
			}
			var names string
			if err := tx.QueryRow(ctx, "SELECT string_agg(name, ',' ORDER BY id) FROM customers").Scan(&names); err != nil {
				t.Fatal(err)
			}
			if names != c.names {
				t.Fatalf("round %d, tenant %s sees customers %q, want %q", round, c.tenant, names, c.names)
			}
			var foreign int
			if err := tx.QueryRow(ctx, "SELECT count(*) FROM orders WHERE tenant_id <> $1", c.tenant).Scan(&foreign); err != nil || foreign != 0 {
				t.Fatalf("round %d, tenant %s sees %d rows of other tenants (%v)", round, c.tenant, foreign, err)
			}
			if err := tx.Commit(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}
	wantRows(t, column(t, one, "SHOW statement_timeout"), "4321ms")
	wantRows(t, column(t, two, "SHOW statement_timeout"), "0")
	wantRows(t, column(t, two, "SHOW application_name"), "tenant-two")
	wantRows(t, column(t, direct, "SELECT tenant_id || ':' || count(*) FROM orders WHERE note LIKE 'round %' GROUP BY tenant_id ORDER BY 1"), "1:20", "2:20")
	wantRows(t, column(t, direct, "SELECT count(*)::text FROM orders WHERE note LIKE 'round % of ' || tenant_id"), "40")
	if n := upstreamBackends(t, direct, e.database); n != 1 {
		t.Fatalf("%d upstream backends with --pool-size 1", n)
	}
}

// TestPoolingPreparedStatementsMoveBetweenConnections: a protocol prepared
// statement is prepared again on whichever connection serves its client,
// under a name of the proxy's, and a client can never reach a statement
// it did not prepare.
func TestPoolingPreparedStatementsMoveBetweenConnections(t *testing.T) {
	e := newEnv(t, envOptions{extraArgs: []string{"--pool-size", "2"}})
	ctx := context.Background()
	direct := e.direct(t)
	one, two := e.connect(t, "1"), e.connect(t, "2")
	if _, err := one.Prepare(ctx, "names", "SELECT string_agg(name, ',' ORDER BY id) FROM customers WHERE id > $1"); err != nil {
		t.Fatal(err)
	}
	names := func(c *pgx.Conn) string {
		t.Helper()
		var s string
		if err := c.QueryRow(ctx, "names", 0).Scan(&s); err != nil {
			t.Fatal(err)
		}
		return s
	}
	if got := names(one); got != "alice,bob" {
		t.Fatalf("names: %q", got)
	}
	// Tenant 2 holds the connection the statement was prepared on, so
	// tenant 1's next execution is served by another one.
	tx, err := two.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if got := names(one); got != "alice,bob" {
			t.Fatalf("names on the second connection: %q", got)
		}
	}
	if n := upstreamBackends(t, direct, e.database); n != 2 {
		t.Fatalf("%d upstream backends, want 2", n)
	}
	// The same name prepared by tenant 2 is tenant 2's own statement.
	if _, err := tx.Prepare(ctx, "names", "SELECT string_agg(name, ',' ORDER BY id) FROM customers WHERE id > $1"); err != nil {
		t.Fatal(err)
	}
	var s string
	if err := tx.QueryRow(ctx, "names", 0).Scan(&s); err != nil || s != "carol,dave" {
		t.Fatalf("tenant 2's names: %q, %v", s, err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if got := names(one); got != "alice,bob" {
			t.Fatalf("names after tenant 2's commit: %q", got)
		}
	}

	// Names the session did not prepare never reach upstream, where they
	// could be another session's statements.
	pc := two.PgConn()
	for _, name := range []string{"tpx_0123456789abcdef_1", "names_of_someone_else", ""} {
		rr := pc.ExecPrepared(ctx, name, nil, nil, nil).Read()
		if code := pgCode(rr.Err); code != "26000" {
			t.Errorf("Bind of %q: %v, want 26000", name, rr.Err)
		}
		if _, err := pc.Prepare(ctx, "probe", "SELECT 1", nil); err != nil {
			t.Fatalf("the session is unusable after the Bind of %q: %v", name, err)
		}
		if err := pc.Deallocate(ctx, "probe"); err != nil {
			t.Fatal(err)
		}
	}
	// A second Parse of a name fails as it does in Postgres.
	if _, err := pc.Prepare(ctx, "twice", "SELECT 1", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := pc.Prepare(ctx, "twice", "SELECT 2", nil); pgCode(err) != "42P05" {
		t.Fatalf("second Parse of a name: %v, want 42P05", err)
	}
}

// TestPoolingNeverLendsADirtyConnection: a connection in an aborted
// transaction stays with its client (others wait, then get the pool
// timeout); a client that leaves mid-transaction takes its connection with
// it (closed, rolled back), and the next client gets a clean one.
func TestPoolingNeverLendsADirtyConnection(t *testing.T) {
	e := newEnv(t, envOptions{extraArgs: []string{"--pool-size", "1", "--query-wait-timeout", "500ms"}})
	ctx := context.Background()
	direct := e.direct(t)
	one, two := e.connect(t, "1"), e.connect(t, "2")

	tx, err := one.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "INSERT INTO orders (customer_id, total, note) VALUES (NULL, 1, 'aborted')"); err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "SELECT 1/0"); pgCode(err) != "22012" {
		t.Fatalf("division by zero: %v", err)
	}
	// Aborted, and still held: tenant 2 waits and times out.
	start := time.Now()
	_, err = two.Exec(ctx, "SELECT count(*) FROM orders")
	if pgCode(err) != "53300" || !strings.Contains(err.Error(), "no database connection became free within 500ms") {
		t.Fatalf("while the only connection is held: %v, want 53300 after the wait", err)
	}
	if waited := time.Since(start); waited < 400*time.Millisecond {
		t.Fatalf("failed after %s, before the wait timeout", waited)
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	wantRows(t, column(t, two, "SELECT count(*)::text FROM orders"), "2")
	wantRows(t, column(t, direct, "SELECT count(*)::text FROM orders WHERE note = 'aborted'"), "0")

	// Leaving mid-transaction: the connection goes with the client.
	leaver := e.connect(t, "1")
	tx, err = leaver.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "INSERT INTO orders (customer_id, total, note) VALUES (NULL, 1, 'left behind')"); err != nil {
		t.Fatal(err)
	}
	var pid int
	if err := direct.QueryRow(ctx, `SELECT pid FROM pg_stat_activity WHERE datname = $1 AND state LIKE 'idle in transaction%'`, e.database).Scan(&pid); err != nil {
		t.Fatalf("the held backend: %v", err)
	}
	if err := leaver.PgConn().Conn().Close(); err != nil { // abrupt: no Terminate
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "the abandoned backend to end", func() error {
		var n int
		if err := direct.QueryRow(ctx, "SELECT count(*) FROM pg_stat_activity WHERE pid = $1", pid).Scan(&n); err != nil || n != 0 {
			return fmt.Errorf("backend %d still there (%v)", pid, err)
		}
		return nil
	})
	var status string
	if err := two.QueryRow(ctx, "SELECT count(*)::text FROM orders").Scan(&status); err != nil || status != "2" {
		t.Fatalf("tenant 2 after the abandoned transaction: %q %v", status, err)
	}
	if tx := two.PgConn().TxStatus(); tx != 'I' {
		t.Fatalf("tenant 2's connection is in transaction state %q", tx)
	}
	wantRows(t, column(t, direct, "SELECT count(*)::text FROM orders WHERE note = 'left behind'"), "0")
}

// TestPoolingRefusesSessionState: in transaction mode what would outlive
// the transaction on a shared connection is refused with the reason.
func TestPoolingRefusesSessionState(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	c := e.connect(t, "1")
	for _, sql := range []string{
		"PREPARE p AS SELECT 1",
		"EXECUTE p",
		"DECLARE c CURSOR WITH HOLD FOR SELECT * FROM orders",
		"SELECT pg_advisory_lock(1)",
		"LISTEN events",
	} {
		_, err := c.Exec(ctx, sql, pgx.QueryExecModeSimpleProtocol)
		if pgCode(err) != "42501" {
			t.Errorf("%s: %v, want a 42501 refusal", sql, err)
		}
		if strings.HasPrefix(sql, "PREPARE") && !strings.Contains(err.Error(), "transaction pooling") {
			t.Errorf("%s: %v does not say why", sql, err)
		}
	}
	tx, err := c.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "DECLARE c CURSOR FOR SELECT id FROM orders ORDER BY id"); err != nil {
		t.Fatal(err)
	}
	wantRows(t, column(t, c, "FETCH 2 FROM c"), "10", "11")
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestNewClientStartsWithItsOwnSettings: a client that connects onto a
// pooled connection another client's startup settings were applied to
// starts with the connection's defaults, not with the other's values.
func TestNewClientStartsWithItsOwnSettings(t *testing.T) {
	e := newEnv(t, envOptions{extraArgs: []string{"--pool-size", "1"}})
	want := column(t, e.direct(t), "SHOW TimeZone")[0]
	other := "Asia/Tokyo"
	if want == other {
		other = "America/Lima"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	first, err := pgx.Connect(ctx, e.connString(e.token(t, "1"))+"&timezone="+other+"&application_name=first")
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close(context.Background())
	wantRows(t, column(t, first, "SHOW TimeZone"), other)
	second := e.connect(t, "2")
	wantRows(t, column(t, second, "SHOW TimeZone"), want)
	if got := column(t, second, "SHOW application_name")[0]; got == "first" {
		t.Fatalf("the second client inherited the first's application_name")
	}
	wantRows(t, column(t, first, "SHOW TimeZone"), other)
}
