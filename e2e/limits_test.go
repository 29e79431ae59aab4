package e2e_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/tenantproxy/tenantproxy/auth"
)

// dial opens a connection through the proxy and returns it with its error
// instead of failing the test.
func (e *env) dial(t *testing.T, tenants ...string) (*pgx.Conn, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, e.connString(e.token(t, tenants...)))
	if err == nil {
		t.Cleanup(func() { conn.Close(context.Background()) })
	}
	return conn, err
}

// TestConnectionLimits: --max-client-conn and --max-tenant-conn turn the
// next client away with 53300 and a message that names the limit; a slot
// is free again once a client leaves.
func TestConnectionLimits(t *testing.T) {
	e := newEnv(t, envOptions{extraArgs: []string{"--max-client-conn", "3", "--max-tenant-conn", "2"}})
	ctx := context.Background()
	first := e.connect(t, "1")
	e.connect(t, "1")
	_, err := e.dial(t, "1")
	if pgCode(err) != "53300" || !strings.Contains(err.Error(), `too many connections for tenant "1"`) {
		t.Fatalf("third connection of tenant 1: %v, want 53300 naming the tenant", err)
	}
	e.connect(t, "2") // another tenant still gets in
	_, err = e.dial(t, "3")
	if pgCode(err) != "53300" || !strings.Contains(err.Error(), "too many client connections") {
		t.Fatalf("fourth client: %v, want 53300 about the proxy's limit", err)
	}
	if err := first.Close(ctx); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "a slot to free up", func() error {
		c, err := e.dial(t, "1")
		if err == nil {
			c.Close(ctx)
		}
		return err
	})
}

// TestIdleTimeouts: a client silent for --client-idle-timeout outside a
// transaction, or for --idle-in-transaction-timeout inside one, is ended
// with Postgres's codes (57P05, 25P03); the open transaction is rolled
// back and its connection released; a client waiting for a long statement
// is not timed out.
func TestIdleTimeouts(t *testing.T) {
	e := newEnv(t, envOptions{extraArgs: []string{"--client-idle-timeout", "1500ms", "--idle-in-transaction-timeout", "700ms", "--pool-size", "1"}})
	ctx := context.Background()
	direct := e.direct(t)

	busy := e.connect(t, "1")
	// Upstream work longer than both timeouts: the client is waiting, not
	// idle. A row lock held directly for 2.5 s makes the wait exact.
	locker, err := direct.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := locker.Exec(ctx, "SELECT 1 FROM orders WHERE id = 10 FOR UPDATE"); err != nil {
		t.Fatal(err)
	}
	go func() {
		time.Sleep(2500 * time.Millisecond)
		_ = locker.Commit(ctx)
	}()
	started := time.Now()
	if _, err := busy.Exec(ctx, "UPDATE orders SET note = note WHERE id = 10"); err != nil {
		t.Fatalf("a statement waiting 2.5 s for a lock was cut short: %v", err)
	}
	if took := time.Since(started); took < 2*time.Second {
		t.Fatalf("the statement waited only %s for the lock", took)
	}

	idleTx := e.connect(t, "1")
	tx, err := idleTx.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "INSERT INTO orders (customer_id, total, note) VALUES (NULL, 1, 'idle in transaction')"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1200 * time.Millisecond)
	_, err = tx.Exec(ctx, "SELECT 1")
	if err == nil || !strings.Contains(err.Error(), "idle-in-transaction timeout") {
		t.Fatalf("after an idle transaction: %v, want the idle-in-transaction timeout", err)
	}
	// The only upstream connection is free again: another client runs.
	other := e.connect(t, "2")
	wantRows(t, column(t, other, "SELECT count(*)::text FROM orders"), "2")
	wantRows(t, column(t, direct, "SELECT count(*)::text FROM orders WHERE note = 'idle in transaction'"), "0")

	idle := e.connect(t, "1")
	time.Sleep(2200 * time.Millisecond)
	if _, err := idle.Exec(ctx, "SELECT 1"); err == nil || !strings.Contains(err.Error(), "idle-session timeout") {
		t.Fatalf("after an idle session: %v, want the idle-session timeout", err)
	}
	if !strings.Contains(e.logs.String(), "25P03") || !strings.Contains(e.logs.String(), "57P05") {
		t.Fatalf("the proxy did not log the codes:\n%s", e.logs.String())
	}
}

// TestTokenExpiresDuringSession: a session whose token expires is ended at
// its next statement with a FATAL that says so (28P01), and the audit
// stream records why.
func TestTokenExpiresDuringSession(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	tok, err := auth.Mint(e.secret, auth.MintOptions{Tenants: []string{"1"}, Subject: "short", TTL: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	c := e.connectToken(t, tok)
	wantRows(t, column(t, c, "SELECT count(*)::text FROM orders"), "3")
	time.Sleep(2500 * time.Millisecond)
	_, err = c.Exec(ctx, "SELECT count(*) FROM orders")
	if pgCode(err) != "28P01" || !strings.Contains(err.Error(), "token expired") {
		t.Fatalf("after the token expired: %v, want FATAL 28P01 about the token", err)
	}
	eventually(t, 5*time.Second, "session.expired in the audit stream", func() error {
		for _, ev := range auditEvents(t, e.dir+"/audit.jsonl") {
			if ev.Kind == "session.expired" {
				return nil
			}
		}
		return errors.New("no session.expired event")
	})
}
