package e2e_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/tenantproxy/tenantproxy/catalog"
)

// The client compatibility matrix: every client runs the same scenario
// through the proxy, once for each of two tenants.
//
// The scenario, in each client's own idiom: connect with a token as the
// password; introspect (whatever the driver or ORM does on connect and first
// use, plus a look at the accounts table's columns); create an account and a
// note (the tenant column left out and filled by the proxy, or set by the ORM
// to the app's tenant); read them back through a join; update; run a
// transaction that is rolled back; run a parameterised (prepared) query
// several times; try to read, update and delete the other tenant's rows by id
// (nothing is seen or changed); see only its own tenant; delete the note;
// have an uncatalogued table refused with 42501 and carry on.
//
// A script prints "version: ..." first and "ok <step>" per passed step; it
// fails by exiting non-zero. The Go side then checks the database directly:
// the kept account belongs to the client's tenant, the rolled-back one does
// not exist, the note is gone and the other tenant's rows are untouched.

// clientSchema is the scenario's tables: two tenant-bound tables with a
// foreign key between them, and one that is deliberately not catalogued.
const clientSchema = `
CREATE TABLE accounts (id bigserial PRIMARY KEY, tenant_id int NOT NULL, name text NOT NULL, created_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE notes (id bigserial PRIMARY KEY, tenant_id int NOT NULL, account_id bigint NOT NULL REFERENCES accounts(id), body text NOT NULL, stars int NOT NULL DEFAULT 0);
CREATE TABLE secrets (id int, value text);
INSERT INTO accounts (tenant_id, name) VALUES (1, 'seed-1'), (2, 'seed-2');
INSERT INTO notes (tenant_id, account_id, body) VALUES (1, 1, 'seed note 1'), (2, 2, 'seed note 2');
INSERT INTO secrets VALUES (1, 'do not leak');
`

// clientTables is the matrix's catalog: the scenario's tables and the
// Django app's (created by its migrations, run directly against Postgres).
var clientTables = []catalog.Table{
	{Schema: "public", Name: "accounts", Kind: catalog.TenantBound, TenantColumn: "tenant_id"},
	{Schema: "public", Name: "notes", Kind: catalog.TenantBound, TenantColumn: "tenant_id"},
	{Schema: "public", Name: "shop_account", Kind: catalog.TenantBound, TenantColumn: "tenant_id"},
	{Schema: "public", Name: "shop_note", Kind: catalog.TenantBound, TenantColumn: "tenant_id"},
}

// clientsDir holds the scripts of the clients that are not Go.
var clientsDir, _ = filepath.Abs("clients")

// systemPython is Debian's interpreter, which sees Debian's python3-*
// packages (a python3 earlier on PATH may be another installation).
const systemPython = "/usr/bin/python3"

// scriptClient is one client of the matrix that runs as a program.
type scriptClient struct {
	name string
	// argv is the scenario's command line; work is the subtest's directory,
	// where setup (when set) puts what it builds (e.g. compiled classes).
	argv  func(work string) []string
	setup func(t *testing.T, work string)
	// probe is a command that succeeds when the client's runtime and
	// packages are installed; install says how to install them.
	probe   []string
	install string
}

// script is a scenario command line that needs no setup: a runtime, the
// scenario file below clientsDir, and arguments.
func script(runtime, file string, args ...string) func(string) []string {
	argv := append([]string{runtime, filepath.Join(clientsDir, file)}, args...)
	return func(string) []string { return argv }
}

const jdbcJar = "/usr/share/java/postgresql.jar"

var scriptClients = []scriptClient{
	{name: "psql", argv: func(string) []string {
		return []string{"psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-f", filepath.Join(clientsDir, "psql", "scenario.sql")}
	}, probe: []string{"psql", "--version"}, install: "apt-get install postgresql-client"},
	{name: "node-postgres", argv: script("node", "node/scenario.js"),
		probe: []string{"node", "-e", "require(\"pg\")"}, install: "npm ci --prefix e2e/clients/node"},
	{name: "postgres.js", argv: script("node", "node/postgresjs.js"),
		probe: []string{"node", "-e", "require(\"postgres\")"}, install: "npm ci --prefix e2e/clients/node"},
	{name: "knex", argv: script("node", "node/knex.js"),
		probe: []string{"node", "-e", "require(\"knex\")"}, install: "npm ci --prefix e2e/clients/node"},
	{name: "sequelize", argv: script("node", "node/sequelize.js"),
		probe: []string{"node", "-e", "require(\"sequelize\")"}, install: "npm ci --prefix e2e/clients/node"},
	{name: "typeorm", argv: script("node", "node/typeorm.js"),
		probe: []string{"node", "-e", "require(\"typeorm\")"}, install: "npm ci --prefix e2e/clients/node"},
	{name: "psycopg2", argv: script(systemPython, "python/psycopg2_scenario.py"),
		probe: []string{systemPython, "-c", "import psycopg2"}, install: "apt-get install python3-psycopg2"},
	{name: "psycopg3", argv: script(systemPython, "python/psycopg3_scenario.py"),
		probe: []string{systemPython, "-c", "import psycopg"}, install: "apt-get install python3-psycopg"},
	{name: "asyncpg", argv: script(systemPython, "python/asyncpg_scenario.py"),
		probe: []string{systemPython, "-c", "import asyncpg"}, install: "apt-get install python3-asyncpg"},
	{name: "sqlalchemy", argv: script(systemPython, "python/sqlalchemy_scenario.py"),
		probe: []string{systemPython, "-c", "import sqlalchemy, psycopg2"}, install: "apt-get install python3-sqlalchemy python3-psycopg2"},
	{name: "django", argv: script(systemPython, "python/django_scenario.py", "scenario"),
		probe: []string{systemPython, "-c", "import django, psycopg2"}, install: "apt-get install python3-django python3-psycopg2"},
	{name: "pgjdbc", setup: func(t *testing.T, work string) {
		out, err := exec.Command("javac", "-d", filepath.Join(work, "classes"), "-cp", jdbcJar,
			filepath.Join(clientsDir, "java", "Scenario.java")).CombinedOutput()
		if err != nil {
			t.Fatalf("javac: %v\n%s", err, out)
		}
	}, argv: func(work string) []string {
		return []string{"java", "-cp", filepath.Join(work, "classes") + ":" + jdbcJar, "Scenario"}
	}, probe: []string{"sh", "-c", "javac -version && test -f " + jdbcJar}, install: "apt-get install default-jdk-headless libpostgresql-jdbc-java"},
	{name: "ruby-pg", argv: script("ruby", "ruby/pg_scenario.rb"),
		probe: []string{"ruby", "-e", "require \"pg\""}, install: "apt-get install ruby-pg"},
	{name: "activerecord", argv: script("ruby", "ruby/activerecord_scenario.rb"),
		probe: []string{"ruby", "-e", "require \"active_record\"; require \"pg\""}, install: "apt-get install ruby-activerecord ruby-pg"},
}

// TestClientMatrix runs every client's scenario for two tenants.
func TestClientMatrix(t *testing.T) {
	if testing.Short() {
		t.Skip("the client matrix starts real clients; run without -short")
	}
	e := newEnv(t, envOptions{schema: clientSchema, tables: clientTables, prepare: djangoMigrate})
	t.Logf("version: pgx %s, Go %s", moduleVersion("github.com/jackc/pgx/v5"), runtime.Version())
	refusals := 0 // SELECT * FROM secrets, once per run; twice for psql and pgjdbc
	for _, mode := range []struct {
		name string
		mode pgx.QueryExecMode
	}{{"pgx-simple", pgx.QueryExecModeSimpleProtocol}, {"pgx-extended", pgx.QueryExecModeCacheStatement}, {"pgx-describe", pgx.QueryExecModeDescribeExec}} {
		t.Run(mode.name, func(t *testing.T) {
			for _, tenant := range []string{"1", "2"} {
				e.pgxScenario(t, mode.name, tenant, mode.mode)
			}
		})
		refusals += 4
	}
	t.Run("database-sql", func(t *testing.T) {
		for _, tenant := range []string{"1", "2"} {
			e.stdlibScenario(t, "database-sql", tenant, "pgx")
		}
	})
	t.Run("lib-pq", func(t *testing.T) {
		t.Logf("version: lib/pq %s", moduleVersion("github.com/lib/pq"))
		for _, tenant := range []string{"1", "2"} {
			e.stdlibScenario(t, "lib-pq", tenant, "postgres")
		}
	})
	refusals += 4
	for _, c := range scriptClients {
		t.Run(c.name, func(t *testing.T) {
			probe := exec.Command(c.probe[0], c.probe[1:]...)
			probe.Dir = filepath.Join(clientsDir, "node") // where require("pg") finds node_modules
			if out, err := probe.CombinedOutput(); err != nil {
				missingClient(t, c.name, c.install, fmt.Errorf("%v: %s", err, bytes.TrimSpace(out)))
			}
			work := t.TempDir()
			if c.setup != nil {
				c.setup(t, work)
			}
			for _, tenant := range []string{"1", "2"} {
				e.runScenario(t, c.name, tenant, c.argv(work))
			}
			switch c.name {
			case "psycopg3":
				e.sawResets(t, "DEALLOCATE ALL", "DEALLOCATE _pg3_")
			case "asyncpg":
				e.sawResets(t, "SELECT pg_advisory_unlock_all();")
			}
		})
		refusals += 2
		if c.name == "psql" || c.name == "pgjdbc" || c.name == "sequelize" {
			refusals += 2 // sequelize: describeTable, which reads pg_statio_all_tables
		}
	}
	if !t.Failed() {
		e.onlyDeliberateRefusals(t, refusals)
	}
	// SQL-level PREPARE outlives a transaction, so transaction pooling
	// refuses it and the scenarios skip it there: the clients that use it
	// run again through a proxy in session mode. So do the pooled drivers
	// whose resets the proxy passes to the client's own connection there
	// (asyncpg's RESET ALL, psycopg 3's DEALLOCATE).
	t.Run("session-mode", func(t *testing.T) {
		e := newEnv(t, envOptions{schema: clientSchema, tables: clientTables, prepare: djangoMigrate, extraArgs: []string{"--pool-mode", "session"}})
		refusals := 0
		for _, c := range scriptClients {
			if c.name != "psql" && c.name != "psycopg2" && c.name != "psycopg3" && c.name != "asyncpg" {
				continue
			}
			t.Run(c.name, func(t *testing.T) {
				probe := exec.Command(c.probe[0], c.probe[1:]...)
				if out, err := probe.CombinedOutput(); err != nil {
					missingClient(t, c.name, c.install, fmt.Errorf("%v: %s", err, bytes.TrimSpace(out)))
				}
				for _, tenant := range []string{"1", "2"} {
					e.runScenario(t, c.name, tenant, c.argv(t.TempDir()))
				}
			})
			refusals += map[string]int{"psql": 4, "psycopg2": 2, "psycopg3": 2, "asyncpg": 2}[c.name]
		}
		if !t.Failed() {
			e.onlyDeliberateRefusals(t, refusals)
		}
	})
}

// onlyDeliberateRefusals checks the audit stream: the only statements the
// proxy refused during the matrix are the scenarios' reads of the
// uncatalogued table, so no driver or ORM had something refused that it
// then worked around (or swallowed).
func (e *env) onlyDeliberateRefusals(t *testing.T, want int) {
	t.Helper()
	path := filepath.Join(e.dir, "audit.jsonl")
	var refused []string
	eventually(t, 10*time.Second, "every refusal on disk", func() error {
		refused = refused[:0]
		for _, ev := range auditEvents(t, path) {
			if ev.Decision == "rejected" {
				refused = append(refused, ev.SQL)
			}
		}
		if len(refused) < want {
			return fmt.Errorf("%d refusals in the audit stream, want %d", len(refused), want)
		}
		return nil
	})
	for _, sql := range refused {
		if !strings.Contains(sql, "secrets") && !strings.Contains(sql, "pg_statio_all_tables") {
			t.Errorf("a client's statement was refused: %s", sql)
		}
	}
	if len(refused) != want {
		t.Errorf("%d refusals in the audit stream, want %d: %q", len(refused), want, refused)
	}
}

// sawResets checks that the audit stream holds an accepted statement
// starting with each prefix: what a pooled driver sends to reset its
// statements went through, it was not merely absent.
func (e *env) sawResets(t *testing.T, prefixes ...string) {
	t.Helper()
	for _, p := range prefixes {
		eventually(t, 10*time.Second, "a "+p+" in the audit stream", func() error {
			for _, ev := range auditEvents(t, filepath.Join(e.dir, "audit.jsonl")) {
				if strings.HasPrefix(ev.SQL, p) && ev.Decision != "rejected" {
					return nil
				}
			}
			return fmt.Errorf("no accepted statement starting with %q", p)
		})
	}
}

// moduleVersion is the version of a module the test binary was built with.
func moduleVersion(path string) string {
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, d := range info.Deps {
			if d.Path == path {
				return d.Version
			}
		}
	}
	return "unknown"
}

// missingClient fails the test (the matrix must run in make test): a client
// that is not installed is a setup error, unless TENANTPROXY_SKIP_CLIENTS
// says the clients are deliberately absent on this machine.
func missingClient(t *testing.T, name, install string, err error) {
	t.Helper()
	if os.Getenv("TENANTPROXY_SKIP_CLIENTS") != "" {
		t.Skipf("%s is not installed (%v); TENANTPROXY_SKIP_CLIENTS is set", name, err)
	}
	t.Fatalf("%s is not installed (%v): run .ci/run, or %s (TENANTPROXY_SKIP_CLIENTS=1 skips the missing clients)", name, err, install)
}

// scenarioEnv is the environment a client's scenario reads.
func (e *env) scenarioEnv(t *testing.T, name, tenant string) (tag string, vars []string) {
	other := map[string]string{"1": "2", "2": "1"}[tenant]
	direct := e.direct(t)
	otherID := column(t, direct, "SELECT id::text FROM accounts WHERE name = $1", "seed-"+other)
	otherShop := column(t, direct, "SELECT coalesce(min(id), 0)::text FROM shop_account WHERE tenant_id = $1", other)
	host, port, _ := net.SplitHostPort(e.addr)
	tok := e.token(t, tenant)
	tag = fmt.Sprintf("%s-t%s", name, tenant)
	vars = []string{
		"DATABASE_URL=" + e.connString(tok),
		"TP_HOST=" + host, "TP_PORT=" + port, "TP_DB=" + e.database, "TP_USER=app", "TP_PASSWORD=" + tok,
		"TP_TENANT=" + tenant, "TP_TAG=" + tag, "TP_POOL_MODE=" + e.poolMode, "TP_OTHER_ID=" + otherID[0], "TP_OTHER_SHOP_ID=" + otherShop[0],
		// psql reads its connection and variables from the environment.
		"PGHOST=" + host, "PGPORT=" + port, "PGDATABASE=" + e.database, "PGUSER=app", "PGPASSWORD=" + tok, "PGSSLMODE=disable",
		"PGAPPNAME=tenantproxy-client-matrix",
	}
	return tag, vars
}

// runScenario runs one client's scenario as tenant and checks its effects
// directly in the database.
func (e *env) runScenario(t *testing.T, name, tenant string, argv []string) {
	t.Helper()
	tag, vars := e.scenarioEnv(t, name, tenant)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Dir = clientsDir
	cmd.Env = append(cleanEnv(), vars...)
	if name == "psql" {
		cmd.Args = append(cmd.Args, "-v", "tag="+tag, "-v", "tenant="+tenant, "-v", "other_id="+envValue(vars, "TP_OTHER_ID"),
			"-v", "pool_mode="+e.poolMode)
	}
	out, err := cmd.CombinedOutput()
	text := string(out)
	if err != nil {
		t.Fatalf("%s as tenant %s: %v\n%s", name, tenant, err, text)
	}
	steps := 0
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "version: ") && tenant == "1":
			t.Log(line)
		case strings.HasPrefix(line, "ok "):
			steps++
		case strings.HasPrefix(line, "FAIL"):
			t.Fatalf("%s as tenant %s: %s\n%s", name, tenant, line, text)
		}
	}
	if steps < 8 {
		t.Fatalf("%s as tenant %s passed only %d steps:\n%s", name, tenant, steps, text)
	}
	e.checkScenarioEffects(t, name, tenant, tag)
}

// checkScenarioEffects looks at what the scenario left, directly.
func (e *env) checkScenarioEffects(t *testing.T, name, tenant, tag string) {
	t.Helper()
	direct := e.direct(t)
	table, notes := "accounts", "notes"
	if name == "django" {
		table, notes = "shop_account", "shop_note"
	}
	wantRows(t, column(t, direct, fmt.Sprintf("SELECT tenant_id::text FROM %s WHERE name = $1", table), tag), tenant)
	wantRows(t, column(t, direct, fmt.Sprintf("SELECT count(*)::text FROM %s WHERE name = $1", table), tag+"-rollback"), "0")
	wantRows(t, column(t, direct, fmt.Sprintf("SELECT count(*)::text FROM %s n JOIN %s a ON a.id = n.account_id WHERE a.name = $1", notes, table), tag), "0")
	wantRows(t, column(t, direct, fmt.Sprintf("SELECT count(*)::text FROM %s WHERE name = 'stolen'", table)), "0")
	wantRows(t, column(t, direct, "SELECT string_agg(name || ':' || tenant_id, ',' ORDER BY id) FROM accounts WHERE name LIKE 'seed-%'"), "seed-1:1,seed-2:2")
	wantRows(t, column(t, direct, "SELECT count(*)::text FROM notes WHERE body LIKE 'seed note %'"), "2")
}

// cleanEnv is the test's environment without libpq settings that would
// point a client elsewhere.
func cleanEnv() []string {
	var out []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "PG") || strings.HasPrefix(kv, "DATABASE_URL=") {
			continue
		}
		out = append(out, kv)
	}
	return out
}

func envValue(vars []string, name string) string {
	for _, kv := range vars {
		if v, ok := strings.CutPrefix(kv, name+"="); ok {
			return v
		}
	}
	return ""
}

// djangoMigrate runs the Django app's migrations directly against Postgres,
// as a team would deploy them, and seeds one account per tenant.
func djangoMigrate(t testing.TB, dsn string) {
	t.Helper()
	if exec.Command(systemPython, "-c", "import django, psycopg2").Run() != nil {
		// The django subtest reports it; the catalog still names the tables.
		conn, err := pgx.Connect(context.Background(), dsn)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(context.Background())
		if _, err := conn.Exec(context.Background(), `CREATE TABLE shop_account (id bigserial PRIMARY KEY, tenant_id int NOT NULL, name text NOT NULL);
			CREATE TABLE shop_note (id bigserial PRIMARY KEY, tenant_id int NOT NULL, account_id bigint NOT NULL, body text NOT NULL)`); err != nil {
			t.Fatal(err)
		}
		return
	}
	cmd := exec.Command(systemPython, filepath.Join(clientsDir, "python", "django_scenario.py"), "migrate")
	cmd.Dir = clientsDir
	cmd.Env = append(cleanEnv(), "TP_DIRECT_URL="+dsn)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("django migrate: %v\n%s", err, out)
	}
}
