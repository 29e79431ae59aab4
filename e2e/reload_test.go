package e2e_test

import (
	"context"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// eventually retries check until it passes or a deadline (the catalog
// must reach every proxy within a second; allow for a loaded machine).
func eventually(t *testing.T, within time.Duration, what string, check func() error) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		err := check()
		if err == nil {
			return time.Since(start)
		}
		if time.Since(start) > within {
			t.Fatalf("%s: still failing after %v: %v", what, within, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// countNotes counts the rows of notes the connection sees.
func countNotes(ctx context.Context, conn *pgx.Conn) (string, error) {
	var n string
	err := conn.QueryRow(ctx, "SELECT count(*)::text FROM notes", pgxSimple).Scan(&n)
	return n, err
}

// TestCatalogChangesReachRunningProxies: a change made with the CLI is
// enforced by two running proxies within a second; statements prepared
// under the old catalog are refused instead of running with the old rules;
// a catalog that does not validate is kept out; SIGHUP reloads.
func TestCatalogChangesReachRunningProxies(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	direct := e.direct(t)
	if _, err := direct.Exec(ctx, `CREATE TABLE notes (id int PRIMARY KEY, tenant_id int NOT NULL, body text);
		INSERT INTO notes VALUES (1, 1, 'a'), (2, 1, 'b'), (3, 2, 'c')`); err != nil {
		t.Fatal(err)
	}
	e.cli(t, "catalog", "add-global", "notes")
	e.start(t, "", "--pool-mode", "session") // SQL PREPARE below needs session mode
	first := e.connect(t, "1")
	e.start(t, "") // a second proxy on the same catalog, in transaction mode
	second := e.connect(t, "1")

	for _, c := range []*pgx.Conn{first, second} {
		if n, err := countNotes(ctx, c); err != nil || n != "3" {
			t.Fatalf("global notes: %s, %v", n, err)
		}
	}
	if _, err := first.Prepare(ctx, "old", "SELECT count(*) FROM notes"); err != nil {
		t.Fatal(err)
	}
	if _, err := first.Exec(ctx, "PREPARE sqlold AS SELECT count(*) FROM notes", pgxSimple); err != nil {
		t.Fatal(err)
	}

	e.cli(t, "catalog", "add-table", "notes", "--tenant-column", "tenant_id")
	for i, c := range []*pgx.Conn{first, second} {
		took := eventually(t, 5*time.Second, "tenant-bound notes", func() error {
			if n, err := countNotes(ctx, c); err != nil || n != "2" {
				return fmt.Errorf("sees %s rows (%v)", n, err)
			}
			return nil
		})
		t.Logf("proxy %d enforced the change after %v", i+1, took)
	}
	_, err := first.Exec(ctx, "old")
	if pe := wantState(t, err, "42501"); !strings.Contains(pe.Message, "tenant catalog changed") {
		t.Errorf("stale protocol statement: %s", pe.Message)
	}
	_, err = first.Exec(ctx, "EXECUTE sqlold", pgxSimple)
	if pe := wantState(t, err, "42501"); !strings.Contains(pe.Message, "tenant catalog changed") {
		t.Errorf("stale SQL statement: %s", pe.Message)
	}
	if _, err := first.Exec(ctx, "DEALLOCATE sqlold; PREPARE sqlold AS SELECT count(*) FROM notes", pgxSimple); err != nil {
		t.Fatal(err)
	}
	wantRows(t, column(t, first, "EXECUTE sqlold", pgxSimple), "2")

	// A catalog edited by hand into nonsense is kept out; the proxies keep
	// serving the last good one.
	if _, err := direct.Exec(ctx, `UPDATE tenantproxy.tables SET kind = 'path', tenant_column = NULL, parent_schema = 'public',
		parent_table = 'nope', via_column = 'id', parent_key = 'id' WHERE table_name = 'notes';
		UPDATE tenantproxy.version SET version = version + 1;
		SELECT pg_notify('tenantproxy_catalog', 'by hand')`); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "the bad catalog is logged", func() error {
		if !strings.Contains(e.logs.String(), "catalog reload failed") {
			return fmt.Errorf("no log line yet")
		}
		return nil
	})
	if n, err := countNotes(ctx, second); err != nil || n != "2" {
		t.Fatalf("after a bad catalog: %s, %v", n, err)
	}

	// A proxy whose catalog connection drops reconnects and re-reads.
	if _, err := direct.Exec(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query = 'LISTEN tenantproxy_catalog'`); err != nil {
		t.Fatal(err)
	}
	if _, err := direct.Exec(ctx, `UPDATE tenantproxy.tables SET kind = 'tenant', tenant_column = 'tenant_id', parent_schema = NULL,
		parent_table = NULL, via_column = NULL, parent_key = NULL WHERE table_name = 'notes';
		UPDATE tenantproxy.version SET version = version + 1`); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "re-read after reconnecting", func() error {
		if n, err := countNotes(ctx, first); err != nil || n != "2" {
			return fmt.Errorf("sees %s rows (%v)", n, err)
		}
		return nil
	})

	// SIGHUP re-reads a catalog changed without a notification.
	if _, err := direct.Exec(ctx, `UPDATE tenantproxy.tables SET kind = 'global', tenant_column = NULL, parent_schema = NULL, parent_table = NULL,
		via_column = NULL, parent_key = NULL WHERE table_name = 'notes';
		UPDATE tenantproxy.version SET version = version + 1`); err != nil {
		t.Fatal(err)
	}
	if err := e.proxy.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "SIGHUP reload", func() error {
		if n, err := countNotes(ctx, second); err != nil || n != "3" {
			return fmt.Errorf("sees %s rows (%v)", n, err)
		}
		return nil
	})
}

// TestDuplicateParseDoesNotReplaceTheChecks: a second Parse of a name that
// exists fails upstream, so the first statement is what runs on Bind, and
// its tenant checks must still apply.
func TestDuplicateParseDoesNotReplaceTheChecks(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	one := e.connect(t, "1")
	pc := one.PgConn()
	if _, err := pc.Prepare(ctx, "s1", "INSERT INTO orders (tenant_id, customer_id, total) VALUES ($1, 1, 1)", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := pc.Prepare(ctx, "s1", "SELECT $1::int", nil); err == nil {
		t.Fatal("the second Parse of s1 succeeded")
	}
	res := pc.ExecPrepared(ctx, "s1", [][]byte{[]byte("2")}, nil, nil).Read()
	wantState(t, res.Err, "42501")
	res = pc.ExecPrepared(ctx, "s1", [][]byte{[]byte("1")}, nil, nil).Read()
	if res.Err != nil {
		t.Fatalf("own tenant: %v", res.Err)
	}
	wantRows(t, column(t, e.direct(t), "SELECT count(*) FROM orders WHERE tenant_id = 2"), "2")
}
