package e2e_test

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgproto3"
)

// A thousand connections that send a startup packet and never a password
// do not keep a client with a valid token out: connections still
// authenticating are counted apart from --max-client-conn, and past
// --max-unauthenticated-conn the oldest of them is closed.
func TestUnauthenticatedCannotCrowdOut(t *testing.T) {
	e := newEnv(t, envOptions{extraArgs: []string{"--max-client-conn", "5", "--max-unauthenticated-conn", "50", "--startup-timeout", "60s"}})
	var idle []net.Conn
	defer func() {
		for _, c := range idle {
			c.Close()
		}
	}()
	for i := 0; i < 1000; i++ {
		c, err := net.Dial("tcp", e.addr)
		if err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
		idle = append(idle, c)
		fe := pgproto3.NewFrontend(c, c)
		fe.Send(&pgproto3.StartupMessage{ProtocolVersion: pgproto3.ProtocolVersionNumber,
			Parameters: map[string]string{"user": "app", "database": e.database}})
		if err := fe.Flush(); err != nil {
			continue // closed to make room already
		}
		// The proxy has taken it in once it asks for the password (or
		// has closed it to make room for a newer one).
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := fe.Receive(); err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				t.Fatalf("connection %d: the proxy never answered its startup packet", i)
			}
		}
	}
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, e.connString(e.token(t, "1")))
	if err != nil {
		t.Fatalf("a valid token after 1000 password-less connections: %v", err)
	}
	defer conn.Close(context.Background())
	wantRows(t, column(t, conn, "SELECT count(*)::text FROM customers"), "2")
	t.Logf("connected in %v", time.Since(start).Round(time.Millisecond))

	// The first ones were closed to make room; the last ones still wait.
	_ = idle[0].SetReadDeadline(time.Now().Add(2 * time.Second))
	buf := make([]byte, 512)
	for {
		if _, err := idle[0].Read(buf); err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				t.Fatal("the oldest password-less connection is still open")
			}
			break
		}
	}
	// Four more authenticated clients fit under --max-client-conn 5.
	for i := 0; i < 4; i++ {
		c, err := pgx.Connect(ctx, e.connString(e.token(t, "2")))
		if err != nil {
			t.Fatalf("authenticated client %d: %v", i+2, err)
		}
		defer c.Close(context.Background())
	}
	_, err = pgx.Connect(ctx, e.connString(e.token(t, "2")))
	wantState(t, err, "53300")
}

// Two clients that send a query with a large result and never read it do
// not hold the pool: past --client-write-timeout their sessions end and
// their connections leave the pool, and another tenant is served.
func TestNeverReadingClientsAreEnded(t *testing.T) {
	// --pool-tenant-share 2: the write timeout alone frees the pool here.
	e := newEnv(t, envOptions{extraArgs: []string{"--pool-size", "2", "--pool-tenant-share", "2", "--client-write-timeout", "1s", "--query-wait-timeout", "20s"}})
	for i := 0; i < 2; i++ {
		r := e.raw(t, "1")
		if tc, ok := r.conn.(*net.TCPConn); ok {
			_ = tc.SetReadBuffer(4096) // fill up quickly
		}
		r.send(&pgproto3.Query{String: "SELECT repeat('x', 10000) FROM generate_series(1, 1000000)"})
		// ... and never read.
	}
	time.Sleep(200 * time.Millisecond) // both hold a connection now
	waited := tenant2Served(t, e)
	t.Logf("tenant 2 served after %v (client write timeout 1s)", waited.Round(time.Millisecond))
	if waited > 10*time.Second {
		t.Errorf("tenant 2 waited %v", waited)
	}
	if !strings.Contains(e.logs.String(), "client-write-timeout") {
		t.Errorf("the proxy did not say why it ended the sessions:\n%s", e.logs.String())
	}
}

// One tenant's clients hold at most their share of the pool (three
// quarters, at least one): beside two never-reading clients of tenant 1
// on a pool of two, tenant 2 is served at once, long before the write
// timeout ends them.
func TestOneTenantCannotHoldThePool(t *testing.T) {
	e := newEnv(t, envOptions{extraArgs: []string{"--pool-size", "2", "--query-wait-timeout", "20s"}})
	// Both connect first (startup borrows a connection for a moment),
	// then both send a query whose result they never read: the first
	// holds tenant 1's share, the second waits for it.
	var raws []*rawSession
	for i := 0; i < 2; i++ {
		r := e.raw(t, "1")
		if tc, ok := r.conn.(*net.TCPConn); ok {
			_ = tc.SetReadBuffer(4096)
		}
		raws = append(raws, r)
	}
	for _, r := range raws {
		r.send(&pgproto3.Query{String: "SELECT repeat('x', 10000) FROM generate_series(1, 1000000)"})
	}
	time.Sleep(200 * time.Millisecond)
	waited := tenant2Served(t, e)
	t.Logf("tenant 2 served after %v beside two never-reading clients of tenant 1 (pool of 2)", waited.Round(time.Millisecond))
	if waited > time.Second {
		t.Errorf("tenant 2 waited %v", waited)
	}
}

// tenant2Served connects as tenant 2, reads its customers and returns how
// long that took.
func tenant2Served(t *testing.T, e *env) time.Duration {
	t.Helper()
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, e.connString(e.token(t, "2")))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var n int
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM customers").Scan(&n); err != nil || n != 2 {
		t.Fatalf("tenant 2: %v %d", err, n)
	}
	return time.Since(start)
}
