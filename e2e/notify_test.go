package e2e_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/tenantproxy/tenantproxy/internal/pgtest"
)

// upstreamChannel is the name a tenant's channel has in Postgres: "tp", the
// first 16 hex digits of SHA-256 of the tenant value, "_", the channel.
// Computed here from the README's description, not by the proxy's code.
func upstreamChannel(tenant, channel string) string {
	sum := sha256.Sum256([]byte(tenant))
	return "tp" + hex.EncodeToString(sum[:8]) + "_" + channel
}

// listen runs LISTEN on conn for each channel (quoted as written).
func listen(t *testing.T, conn *pgx.Conn, channels ...string) {
	t.Helper()
	for _, ch := range channels {
		if _, err := conn.Exec(context.Background(), "LISTEN "+pgx.Identifier{ch}.Sanitize()); err != nil {
			t.Fatalf("LISTEN %s: %v", ch, err)
		}
	}
}

// mustExec runs statements on conn, failing the test on an error.
func mustExec(t *testing.T, conn *pgx.Conn, sql string, args ...any) {
	t.Helper()
	if _, err := conn.Exec(context.Background(), sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// notification is what a listener received, spelt "channel:payload".
func notification(n *pgconn.Notification) string { return n.Channel + ":" + n.Payload }

// wantNotifications waits (10 s at most) for exactly the given
// notifications, in order, and returns them.
func wantNotifications(t *testing.T, conn *pgx.Conn, want ...string) []*pgconn.Notification {
	t.Helper()
	var got []*pgconn.Notification
	var spelt []string
	for len(got) < len(want) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		n, err := conn.WaitForNotification(ctx)
		cancel()
		if err != nil {
			t.Fatalf("waiting for %v, got %v: %v", want, spelt, err)
		}
		got, spelt = append(got, n), append(spelt, notification(n))
	}
	if strings.Join(spelt, " | ") != strings.Join(want, " | ") {
		t.Fatalf("notifications %v, want %v", spelt, want)
	}
	return got
}

// wantSilence fails if a notification arrives on conn within d.
func wantSilence(t *testing.T, conn *pgx.Conn, d time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	n, err := conn.WaitForNotification(ctx)
	if err == nil {
		t.Fatalf("unexpected notification %s (pid %d)", notification(n), n.PID)
	}
	if !errors.Is(err, context.DeadlineExceeded) && !pgconn.Timeout(err) {
		t.Fatalf("waiting for silence: %v", err)
	}
}

// TestNotifyStaysWithinTheTenant: through a session-mode proxy, tenants 1
// and 2 both LISTEN on "orders"; what tenant 1 sends (NOTIFY, pg_notify
// with constants and with parameters) reaches tenant 1's listener only,
// named "orders" with its payloads, while Postgres sees the channel under
// tenant 1's prefix. A direct LISTEN on the raw "orders" hears nothing.
// Tenant 2 writing tenant 1's upstream name itself (NOTIFY and LISTEN)
// stays in its own space. UNLISTEN, self-notification with the client's
// own process id, and the refusals (pg_listening_channels, a token
// naming two tenants, an over-long channel) are checked on the way.
func TestNotifyStaysWithinTheTenant(t *testing.T) {
	e := newEnv(t, envOptions{extraArgs: []string{"--pool-mode", "session"}})
	ctx := context.Background()
	l1, l2 := e.connect(t, "1"), e.connect(t, "2")
	listen(t, l1, "orders")
	listen(t, l2, "orders", upstreamChannel("1", "orders"))
	raw, mapped1, mapped2 := e.direct(t), e.direct(t), e.direct(t)
	listen(t, raw, "orders")
	listen(t, mapped1, upstreamChannel("1", "orders"))
	listen(t, mapped2, upstreamChannel("2", upstreamChannel("1", "orders")))

	s1, s2 := e.connect(t, "1"), e.connect(t, "2")
	mustExec(t, s1, "NOTIFY orders, 'x'")
	mustExec(t, s1, "SELECT pg_notify('orders', 'y')")
	mustExec(t, s1, "SELECT pg_notify($1, $2)", "orders", "z") // extended protocol, parameters
	got := wantNotifications(t, l1, "orders:x", "orders:y", "orders:z")
	if got[0].PID == l1.PgConn().PID() {
		t.Fatalf("a notification from another session carries the listener's own pid %d", got[0].PID)
	}
	u1 := upstreamChannel("1", "orders")
	wantNotifications(t, mapped1, u1+":x", u1+":y", u1+":z")

	// Tenant 2 names tenant 1's upstream channel itself: it is mapped
	// again, into tenant 2's space, where tenant 2's own LISTEN on that
	// name hears it under the name tenant 2 wrote.
	mustExec(t, s2, "NOTIFY "+pgx.Identifier{u1}.Sanitize()+", 'evil'")
	mustExec(t, s2, "SELECT pg_notify($1, 'evil2')", u1)
	wantNotifications(t, mapped2, upstreamChannel("2", u1)+":evil", upstreamChannel("2", u1)+":evil2")
	wantNotifications(t, l2, u1+":evil", u1+":evil2")
	// Notifications arrive in commit order: had tenant 2's reached tenant
	// 1's space, tenant 1's listener would get them before this one.
	mustExec(t, s1, "NOTIFY orders, 'after'")
	wantNotifications(t, l1, "orders:after")

	// A listener notifying its own channel gets it with its own pid (the
	// one the proxy gave the client), as straight from Postgres.
	mustExec(t, l1, "NOTIFY orders, 'self'")
	if n := wantNotifications(t, l1, "orders:self"); n[0].PID != l1.PgConn().PID() {
		t.Fatalf("self-notification pid %d, want the client's %d", n[0].PID, l1.PgConn().PID())
	}

	// UNLISTEN stops them; UNLISTEN * too.
	mustExec(t, l1, "UNLISTEN orders")
	mustExec(t, s1, "NOTIFY orders, 'unheard'")
	wantSilence(t, l1, 500*time.Millisecond)
	mustExec(t, l1, "LISTEN orders; LISTEN other; UNLISTEN *")
	mustExec(t, s1, "NOTIFY orders, 'unheard'; NOTIFY other, 'unheard'")
	wantSilence(t, l1, 500*time.Millisecond)

	// Refusals, each with its reason and hint.
	_, err := s1.Exec(ctx, "SELECT * FROM pg_listening_channels()")
	if pg := wantState(t, err, "42501"); !strings.Contains(pg.Hint, "LISTENs on") {
		t.Errorf("pg_listening_channels: hint %q", pg.Hint)
	}
	both := e.connect(t, "1", "2")
	for _, sql := range []string{"LISTEN orders", "NOTIFY orders", "SELECT pg_notify('orders', 'x')"} {
		_, err := both.Exec(ctx, sql)
		if pg := wantState(t, err, "42501"); !strings.Contains(pg.Message, "naming 2 tenants") || !strings.Contains(pg.Hint, "one tenant") {
			t.Errorf("%s with two tenants: %s (hint %q)", sql, pg.Message, pg.Hint)
		}
	}
	_, err = s1.Exec(ctx, "LISTEN "+strings.Repeat("c", 45))
	if pg := wantState(t, err, "42501"); !strings.Contains(pg.Hint, "at most 44 bytes") {
		t.Errorf("long channel: %s (hint %q)", pg.Message, pg.Hint)
	}
	mustExec(t, s1, "LISTEN "+strings.Repeat("c", 44)) // the longest that fits

	// Tenant 2 heard nothing of tenant 1's, the raw channel nothing at
	// all, and tenant 1's upstream channel only what tenant 1 sent.
	wantSilence(t, l2, time.Second)
	wantSilence(t, raw, 100*time.Millisecond)
	wantNotifications(t, mapped1, u1+":after", u1+":self", u1+":unheard", u1+":unheard")
	wantSilence(t, mapped1, 100*time.Millisecond)
}

// The catalog's reload channel cannot be reached from a tenant: NOTIFY
// tenantproxy_catalog through the proxy lands in the tenant's space.
func TestNotifyCannotReachTheCatalogChannel(t *testing.T) {
	e := newEnv(t, envOptions{extraArgs: []string{"--pool-mode", "session"}})
	watcher := e.direct(t)
	listen(t, watcher, "tenantproxy_catalog")
	mustExec(t, e.connect(t, "1"), "NOTIFY tenantproxy_catalog, '999'")
	wantSilence(t, watcher, 500*time.Millisecond)
}

// TestNotifyInTransactionMode: a transaction-mode proxy refuses LISTEN with
// a hint to use session mode; its NOTIFY and pg_notify (inside a
// transaction too) reach a session-mode listener of the same tenant, and
// another tenant's do not.
func TestNotifyInTransactionMode(t *testing.T) {
	e := newEnv(t) // transaction mode
	ctx := context.Background()
	tx1, tx2 := e.connect(t, "1"), e.connect(t, "2")
	_, err := tx1.Exec(ctx, "LISTEN orders")
	pg := wantState(t, err, "42501")
	if !strings.Contains(pg.Message, "transaction pooling") || !strings.Contains(pg.Hint, "--pool-mode session") {
		t.Fatalf("LISTEN in transaction mode: %s (hint %q)", pg.Message, pg.Hint)
	}
	mustExec(t, tx1, "UNLISTEN *")
	mustExec(t, tx1, "UNLISTEN orders")

	// A second proxy on the same database, in session mode.
	e.start(t, "", "--pool-mode", "session", "--audit-file", filepath.Join(e.dir, "audit-session.jsonl"))
	listener := e.connect(t, "1")
	listen(t, listener, "orders")

	mustExec(t, tx2, "NOTIFY orders, 'tenant 2'")
	mustExec(t, tx1, "NOTIFY orders, 'from transaction mode'")
	// In commit order: tenant 2's would have come first.
	wantNotifications(t, listener, "orders:from transaction mode")
	tx, err := tx1.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "SELECT pg_notify('orders', $1)", "at commit"); err != nil {
		t.Fatal(err)
	}
	wantSilence(t, listener, 300*time.Millisecond) // not before the commit
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	wantNotifications(t, listener, "orders:at commit")
	wantSilence(t, listener, 500*time.Millisecond)
}

// psql, as a person would use it: LISTEN, NOTIFY, and psql prints the
// notification with the channel name the client used.
func TestNotifyWithPsql(t *testing.T) {
	psql, err := exec.LookPath("psql")
	if err != nil {
		if bin, berr := pgtest.FindBinDir(); berr == nil {
			psql = bin + "/psql"
		}
	}
	if _, err := os.Stat(psql); err != nil {
		t.Fatal("psql is needed for the e2e tests: apt-get install postgresql-client")
	}
	e := newEnv(t, envOptions{extraArgs: []string{"--pool-mode", "session"}})
	host, port, _ := net.SplitHostPort(e.addr)
	cmd := exec.Command(psql, "-X", "-v", "ON_ERROR_STOP=1", "-h", host, "-p", port, "-U", "app", "-d", e.database,
		"-c", "LISTEN orders", "-c", "NOTIFY orders, 'hello'")
	cmd.Env = append(os.Environ(), "PGPASSWORD="+e.token(t, "1"), "PGSSLMODE=disable", "PGCONNECT_TIMEOUT=10")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("psql: %v\n%s", err, out)
	}
	want := `Asynchronous notification "orders" with payload "hello" received from server process with PID `
	if !strings.Contains(string(out), want) || strings.Contains(string(out), upstreamChannel("1", "")) {
		t.Fatalf("psql printed:\n%s\nwant a line starting %q", out, want)
	}
}
