package e2e_test

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/jackc/pgx/v5"
	"github.com/tenantproxy/tenantproxy/auth"
	"github.com/tenantproxy/tenantproxy/catalog"
	"github.com/tenantproxy/tenantproxy/internal/pgtest"
)

var (
	binOnce sync.Once
	binPath string
	binErr  error
	binDir  string
)

func TestMain(m *testing.M) {
	code := pgtest.Main(m)
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// binary builds the tenantproxy command once per test run.
func binary(t testing.TB) string {
	t.Helper()
	binOnce.Do(func() {
		binDir, binErr = os.MkdirTemp("", "tenantproxy-bin-")
		if binErr != nil {
			return
		}
		binPath = filepath.Join(binDir, "tenantproxy")
		out, err := exec.Command("go", "build", "-o", binPath, "github.com/tenantproxy/tenantproxy/cmd/tenantproxy").CombinedOutput()
		if err != nil {
			binErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

// demoSchema is two tenant-bound tables, a path of foreign keys between them,
// a global table and one table that is deliberately not catalogued.
const demoSchema = `
CREATE TABLE plans (id int PRIMARY KEY, name text NOT NULL);
CREATE TABLE customers (id int PRIMARY KEY, tenant_id int NOT NULL, name text NOT NULL, plan_id int REFERENCES plans);
CREATE TABLE orders (id serial PRIMARY KEY, tenant_id int NOT NULL, customer_id int REFERENCES customers, total numeric NOT NULL, note text);
CREATE TABLE secrets (id int, value text);
INSERT INTO plans VALUES (1, 'free'), (2, 'pro');
INSERT INTO customers VALUES (1, 1, 'alice', 1), (2, 1, 'bob', 2), (3, 2, 'carol', 2), (4, 2, 'dave', NULL), (5, 3, 'erin', 1);
INSERT INTO orders (id, tenant_id, customer_id, total, note) VALUES
  (10, 1, 1, 10.50, 'first'), (11, 1, 2, 20, NULL), (12, 1, 1, 5, 'small'),
  (20, 2, 3, 100, 'big'), (21, 2, 4, 7, NULL),
  (30, 3, 5, 1, NULL);
SELECT setval('orders_id_seq', 100);
INSERT INTO secrets VALUES (1, 'do not leak');
`

// env is one database with the demo schema, its catalog, and a running proxy.
type env struct {
	upstream string // superuser DSN of the test database
	addr     string // proxy address
	database string
	secret   []byte
	keyFile  string
	dir      string
	proxy    *exec.Cmd
	logs     *syncBuffer
	poolMode string        // transaction unless extraArgs say --pool-mode session
	exited   chan struct{} // closed when the last started proxy has exited
}

type envOptions struct {
	extraArgs []string
	listen    string // default: a free loopback port
	// schema replaces demoSchema (DDL and any rows); tables, when set,
	// replace the demo catalog (imported with tenantproxy catalog import).
	schema string
	tables []catalog.Table
	// prepare runs after the schema, before the catalog and the proxy,
	// with the superuser DSN (for example an ORM's migrations).
	prepare func(t testing.TB, dsn string)
	// upstream, when set, is the superuser DSN of an empty database to
	// use instead of a new one on the shared cluster.
	upstream string
}

func newEnv(t testing.TB, opts ...envOptions) *env {
	t.Helper()
	var o envOptions
	if len(opts) > 0 {
		o = opts[0]
	}
	dsn := o.upstream
	if dsn == "" {
		dsn = pgtest.NewDatabase(t)
	}
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	schema := demoSchema
	if o.schema != "" {
		schema = o.schema
	}
	if _, err := conn.Exec(ctx, schema); err != nil {
		t.Fatal(err)
	}
	database := conn.Config().Database
	conn.Close(ctx)
	if o.prepare != nil {
		o.prepare(t, dsn)
	}

	e := &env{upstream: dsn, database: database, dir: t.TempDir(), secret: []byte("e2e-secret-0123456789-abcdefghijklmnop")}
	e.keyFile = filepath.Join(e.dir, "hmac.key")
	if err := os.WriteFile(e.keyFile, e.secret, 0o600); err != nil {
		t.Fatal(err)
	}
	e.cli(t, "catalog", "init")
	if o.tables != nil {
		e.importCatalog(t, o.tables)
	} else {
		e.cli(t, "catalog", "add-table", "customers", "--tenant-column", "tenant_id")
		e.cli(t, "catalog", "add-table", "orders", "--tenant-column", "tenant_id")
		e.cli(t, "catalog", "add-global", "plans")
	}
	e.poolMode = "transaction"
	for i, a := range o.extraArgs {
		if a == "--pool-mode" && i+1 < len(o.extraArgs) {
			e.poolMode = o.extraArgs[i+1]
		}
	}
	e.start(t, o.listen, o.extraArgs...)
	return e
}

// importCatalog replaces the catalog with tables, as a reviewed catalog
// file is applied: tenantproxy catalog import.
func (e *env) importCatalog(t testing.TB, tables []catalog.Table) {
	t.Helper()
	data, err := catalog.FileOf(0, tables, catalog.Extras{}).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(e.dir, "catalog.yaml")
	if err := os.WriteFile(file, data, 0o600); err != nil {
		t.Fatal(err)
	}
	e.cli(t, "catalog", "import", file)
}

// cli runs the tenantproxy binary against the env's database.
func (e *env) cli(t testing.TB, args ...string) string {
	t.Helper()
	cmd := exec.Command(binary(t), args...)
	cmd.Env = append(os.Environ(), "TENANTPROXY_UPSTREAM="+e.upstream)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("tenantproxy %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// start runs the proxy and waits until it accepts connections.
func (e *env) start(t testing.TB, listen string, extra ...string) {
	t.Helper()
	e.addr = listen
	if e.addr == "" {
		port, err := pgtest.FreePort()
		if err != nil {
			t.Fatal(err)
		}
		e.addr = fmt.Sprintf("127.0.0.1:%d", port)
	}
	args := []string{"serve", "--listen", e.addr, "--upstream", e.upstream,
		"--audit-file", filepath.Join(e.dir, "audit.jsonl"), "--log-level", "debug"}
	if !slices.Contains(extra, "--issuers") { // the issuers file holds every key
		args = append(args, "--jwt-key", e.keyFile)
	}
	args = append(args, extra...)
	// A test may start several proxies; each cleanup stops its own.
	logs := &syncBuffer{}
	proxy := exec.Command(binary(t), args...)
	proxy.Stdout, proxy.Stderr = logs, logs
	e.logs, e.proxy = logs, proxy
	if err := proxy.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	e.exited = exited
	go func() { _ = proxy.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = proxy.Process.Signal(os.Interrupt)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = proxy.Process.Kill()
		}
		if t.Failed() {
			t.Logf("proxy log:\n%s", logs.String())
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", e.addr, time.Second)
		if err == nil {
			c.Close()
			return
		}
		select {
		case <-exited:
			t.Fatalf("proxy exited at start:\n%s", e.logs.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("proxy did not start listening:\n%s", e.logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// token mints a valid token for the given tenants.
func (e *env) token(t testing.TB, tenants ...string) string {
	t.Helper()
	tok, err := auth.Mint(e.secret, auth.MintOptions{Tenants: tenants, Subject: "e2e", TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// claimsToken mints a valid token with the given claims (exp and iat
// added), for claims auth.Mint does not write, such as a second dimension.
func (e *env) claimsToken(t testing.TB, claims map[string]any) string {
	t.Helper()
	now := time.Now()
	all := jwt.MapClaims{"iat": now.Unix(), "exp": now.Add(time.Hour).Unix()}
	for k, v := range claims {
		all[k] = v
	}
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, all).SignedString(e.secret)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// connString is a libpq URL for the proxy with the token as password.
func (e *env) connString(token string) string {
	return fmt.Sprintf("postgres://app:%s@%s/%s?sslmode=disable", token, e.addr, e.database)
}

// connect opens a pgx connection through the proxy as the given tenants.
func (e *env) connect(t testing.TB, tenants ...string) *pgx.Conn {
	t.Helper()
	return e.connectToken(t, e.token(t, tenants...))
}

// connectToken opens a pgx connection through the proxy with token as the
// password.
func (e *env) connectToken(t testing.TB, token string) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, e.connString(token))
	if err != nil {
		t.Fatalf("connect through proxy: %v", err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// direct opens a superuser connection straight to the test database.
func (e *env) direct(t testing.TB) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), e.upstream)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// syncBuffer is a bytes.Buffer safe for a process's concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
