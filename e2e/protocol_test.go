package e2e_test

import (
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/tenantproxy/tenantproxy/internal/pgtest"
)

// A client's cancel request reaches the upstream backend running its query.
func TestCancelReachesTheRunningQuery(t *testing.T) {
	e := newEnv(t)
	one := e.connect(t, "1")
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := one.Exec(ctx, "SELECT count(*) FROM generate_series(1, 2000000000)")
	if err == nil {
		t.Fatal("the long query finished; it should have been cancelled")
	}
	if time.Since(start) > 20*time.Second {
		t.Fatalf("cancel took %v", time.Since(start))
	}
	// pgx reports the context error; the connection may be closed by pgx.
	// A fresh connection works, and the server saw the cancel (57014).
	if !errors.Is(err, context.DeadlineExceeded) && sqlState(err) != "57014" {
		t.Fatalf("unexpected error %v", err)
	}
	two := e.connect(t, "1")
	wantRows(t, column(t, two, "SELECT count(*) FROM orders"), "3")
}

// Garbage and truncated packets on one connection do not disturb another
// session; the proxy answers with an error where the protocol allows.
func TestGarbageDoesNotDisturbOtherSessions(t *testing.T) {
	e := newEnv(t)
	one := e.connect(t, "1")
	inputs := [][]byte{
		[]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"),
		{0, 0, 0, 8, 0xde, 0xad, 0xbe, 0xef},
		{0xff, 0xff, 0xff, 0xff},
		{0, 0, 0},
		{0, 0, 0, 100, 0, 3, 0, 0, 'u', 's', 'e', 'r'},
	}
	for _, in := range inputs {
		c, err := net.Dial("tcp", e.addr)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = c.Write(in)
		if tc, ok := c.(*net.TCPConn); ok {
			_ = tc.CloseWrite()
		}
		_ = c.SetReadDeadline(time.Now().Add(15 * time.Second))
		buf := make([]byte, 4096)
		for {
			if _, err := c.Read(buf); err != nil {
				break // the proxy closed it
			}
		}
		c.Close()
		wantRows(t, column(t, one, "SELECT count(*) FROM customers"), "2")
	}
	// A client that sends nothing is cut off after the startup timeout,
	// without holding anything else up.
	idle, err := net.Dial("tcp", e.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	wantRows(t, column(t, one, "SELECT count(*) FROM orders"), "3")
}

// A client that never finishes startup is disconnected after --startup-timeout.
func TestStartupTimeout(t *testing.T) {
	e := newEnv(t, envOptions{extraArgs: []string{"--startup-timeout", "500ms"}})
	c, err := net.Dial("tcp", e.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	start := time.Now()
	buf := make([]byte, 512)
	for {
		if _, err := c.Read(buf); err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				t.Fatal("the proxy did not close an idle startup")
			}
			break
		}
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("closed after %v", d)
	}
}

// psql, the real client, works through the proxy and sees one tenant.
func TestPsql(t *testing.T) {
	psql, err := exec.LookPath("psql")
	if err != nil {
		if bin, berr := pgtest.FindBinDir(); berr == nil {
			psql = bin + "/psql"
		}
	}
	if _, err := os.Stat(psql); err != nil {
		t.Fatal("psql is needed for the e2e tests: apt-get install postgresql-client")
	}
	e := newEnv(t)
	host, port, _ := net.SplitHostPort(e.addr)
	run := func(tenant, sql string) (string, error) {
		cmd := exec.Command(psql, "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", host, "-p", port, "-U", "app", "-d", e.database, "-c", sql)
		cmd.Env = append(os.Environ(), "PGPASSWORD="+e.token(t, tenant), "PGSSLMODE=disable", "PGCONNECT_TIMEOUT=10")
		out, err := cmd.CombinedOutput()
		return strings.TrimSpace(string(out)), err
	}
	for tenant, want := range map[string]string{"1": "alice\nbob", "2": "carol\ndave"} {
		out, err := run(tenant, "SELECT name FROM customers ORDER BY id")
		if err != nil {
			t.Fatalf("psql as tenant %s: %v\n%s", tenant, err, out)
		}
		if out != want {
			t.Fatalf("psql as tenant %s printed %q, want %q", tenant, out, want)
		}
	}
	out, err := run("1", "SELECT * FROM secrets")
	if err == nil || !strings.Contains(out, "tenantproxy: ") {
		t.Fatalf("psql: want a refusal, got %v: %s", err, out)
	}
	// psql's describe commands read schema metadata, which is allowed.
	for cmd, want := range map[string]string{`\dt`: "customers", `\d orders`: "tenant_id", `\d+ customers`: "plan_id", `\dn`: "public", `\df`: "", `\l`: e.database} {
		out, err := run("1", cmd)
		if err != nil || !strings.Contains(out, want) {
			t.Errorf("psql %s: %v\n%s", cmd, err, out)
		}
	}
}

var _ = pgx.ErrNoRows
