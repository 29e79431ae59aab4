// Command demo runs tenantproxy against a throwaway PostgreSQL with two
// tenants, prints ready-to-paste psql commands, and cleans everything up on
// Ctrl-C. Run it with `make demo`.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/tenantproxy/tenantproxy/internal/pgtest"
)

const schema = `
CREATE TABLE plans (id int PRIMARY KEY, name text NOT NULL);
CREATE TABLE customers (id int PRIMARY KEY, tenant_id int NOT NULL, name text NOT NULL, plan_id int REFERENCES plans);
CREATE TABLE orders (id serial PRIMARY KEY, tenant_id int NOT NULL, customer_id int REFERENCES customers, total numeric NOT NULL);
CREATE TABLE order_notes (id serial PRIMARY KEY, order_id int NOT NULL REFERENCES orders, body text);
CREATE TABLE internal_notes (id int PRIMARY KEY, body text);
INSERT INTO plans VALUES (1, 'free'), (2, 'pro');
INSERT INTO customers VALUES (1, 1, 'alice (tenant 1)', 1), (2, 1, 'bob (tenant 1)', 2), (3, 2, 'carol (tenant 2)', 2);
INSERT INTO orders (tenant_id, customer_id, total) VALUES (1, 1, 10.50), (1, 2, 20), (2, 3, 99);
INSERT INTO order_notes (order_id, body) VALUES (1, 'gift wrap (tenant 1)'), (3, 'urgent (tenant 2)');
INSERT INTO internal_notes VALUES (1, 'not in the catalog: every tenant is refused');
`

func main() {
	bin := flag.String("bin", "bin/tenantproxy", "the tenantproxy binary")
	listen := flag.String("listen", "127.0.0.1:6432", "where the proxy listens")
	flag.Parse()
	if err := run(*bin, *listen); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

func run(bin, listen string) error {
	bin, err := filepath.Abs(bin)
	if err != nil {
		return err
	}
	if l, err := net.Listen("tcp", listen); err != nil {
		return fmt.Errorf("%s is busy (%v); pass -listen with a free address", listen, err)
	} else {
		l.Close()
	}
	fmt.Println("starting a throwaway PostgreSQL ...")
	pg, err := pgtest.StartCluster()
	if err != nil {
		return err
	}
	defer pg.Stop()
	dir, err := os.MkdirTemp("", "tenantproxy-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	ctx := context.Background()
	admin, err := pgx.Connect(ctx, pg.DSN)
	if err != nil {
		return err
	}
	for _, q := range []string{
		"CREATE ROLE tenantproxy LOGIN PASSWORD 'demo-proxy-password'",
		"CREATE DATABASE demo OWNER tenantproxy",
	} {
		if _, err := admin.Exec(ctx, q); err != nil {
			return err
		}
	}
	admin.Close(ctx)
	upstream := strings.Replace(pg.WithDatabase("demo"), "postgres:"+pgtest.Password+"@", "tenantproxy:demo-proxy-password@", 1)
	conn, err := pgx.Connect(ctx, upstream)
	if err != nil {
		return err
	}
	if _, err := conn.Exec(ctx, schema); err != nil {
		return err
	}
	conn.Close(ctx)

	env := append(os.Environ(), "TENANTPROXY_UPSTREAM="+upstream)
	cli := func(args ...string) (string, error) {
		cmd := exec.Command(bin, args...)
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		if err != nil {
			return "", fmt.Errorf("tenantproxy %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return strings.TrimSpace(string(out)), nil
	}
	for _, args := range [][]string{
		{"catalog", "init"},
		// customers and orders have tenant_id; order_notes reaches orders
		// through its foreign key; plans and internal_notes are unknown.
		{"catalog", "discover", "--apply"},
		{"catalog", "add-global", "plans"},
	} {
		if _, err := cli(args...); err != nil {
			return err
		}
	}
	secret := filepath.Join(dir, "hmac.key")
	if err := os.WriteFile(secret, []byte("demo-secret-"+randomish()), 0o600); err != nil {
		return err
	}
	tokens := map[string]string{}
	for _, tenant := range []string{"1", "2"} {
		tok, err := cli("token", "--secret-file", secret, "--tenant", tenant, "--ttl", "24h", "--subject", "demo-user-"+tenant)
		if err != nil {
			return err
		}
		tokens[tenant] = tok
	}

	proxy := exec.Command(bin, "serve", "--listen", listen, "--jwt-key", secret, "--audit-file", filepath.Join(dir, "audit.jsonl"))
	proxy.Env = env
	proxy.Stdout, proxy.Stderr = os.Stdout, os.Stderr
	if err := proxy.Start(); err != nil {
		return err
	}
	exited := make(chan struct{})
	go func() { _ = proxy.Wait(); close(exited) }()
	defer func() {
		_ = proxy.Process.Signal(os.Interrupt)
		<-exited
		// The audit file the session wrote must verify.
		out, err := exec.Command(bin, "audit", "verify", filepath.Join(dir, "audit.jsonl")).CombinedOutput()
		fmt.Printf("tenantproxy audit verify: %s", out)
		if err != nil {
			fmt.Println("the audit file did not verify:", err)
		}
	}()
	for i := 0; ; i++ {
		c, err := net.Dial("tcp", listen)
		if err == nil {
			c.Close()
			break
		}
		if i > 100 {
			return fmt.Errorf("the proxy did not start")
		}
		time.Sleep(100 * time.Millisecond)
	}
	host, port, _ := net.SplitHostPort(listen)
	fmt.Printf(`
tenantproxy is running on %s in front of a throwaway database "demo".
Tables (catalogued with discover --apply): customers and orders (tenant-bound on tenant_id),
order_notes (path-bound through orders), plans (global), internal_notes (not catalogued).
The audit stream goes to %s.

Tenant 1:
  psql "host=%s port=%s dbname=demo user=app sslmode=disable password=%s"

Tenant 2:
  psql "host=%s port=%s dbname=demo user=app sslmode=disable password=%s"

Try: SELECT * FROM customers;   SELECT * FROM orders JOIN customers c ON c.id = customer_id;
     UPDATE orders SET total = 0;   SELECT * FROM internal_notes;   INSERT INTO orders (customer_id, total) VALUES (1, 5) RETURNING *;

Press Ctrl-C to stop and clean up.
`, listen, filepath.Join(dir, "audit.jsonl"), host, port, tokens["1"], host, port, tokens["2"])

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	select {
	case <-sig:
	case <-exited:
		return fmt.Errorf("the proxy exited")
	}
	fmt.Println("\nstopping ...")
	return nil
}

func randomish() string {
	b := make([]byte, 24)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
