package e2e_test

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/tenantproxy/tenantproxy/internal/pgtest"
)

// With TLS configured, clients connect with sslmode=require and the token
// travels encrypted.
func TestTLS(t *testing.T) {
	e := newEnv(t, envOptions{extraArgs: []string{"--tls-self-signed"}})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	url := strings.Replace(e.connString(e.token(t, "2")), "sslmode=disable", "sslmode=require", 1)
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if conn.PgConn().Conn().RemoteAddr() == nil {
		t.Fatal("no connection")
	}
	wantRows(t, column(t, conn, "SELECT name FROM customers ORDER BY id"), "carol", "dave")
}

// On a listener that is not loopback, a token is refused without TLS unless
// --allow-plaintext-password is given.
func TestPlaintextPasswordNeedsLoopbackOrTLS(t *testing.T) {
	ip := nonLoopbackIP(t)
	port, err := pgtest.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	addr := net.JoinHostPort(ip, fmt.Sprint(port))
	e := newEnv(t, envOptions{listen: addr})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err = pgx.Connect(ctx, e.connString(e.token(t, "1")))
	pgErr := wantState(t, err, "28000")
	if !strings.Contains(pgErr.Message, "TLS") {
		t.Fatalf("message %q should say TLS is needed", pgErr.Message)
	}
}

func nonLoopbackIP(t *testing.T) string {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && !n.IP.IsLoopback() && n.IP.To4() != nil {
			return n.IP.String()
		}
	}
	t.Skip("this machine has no non-loopback IPv4 address")
	return ""
}
