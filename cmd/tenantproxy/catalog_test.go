package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/tenantproxy/tenantproxy/catalog"
	"github.com/tenantproxy/tenantproxy/internal/pgtest"
)

// TestMain stops the throwaway Postgres the catalog command tests start.
func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// catalogCLI runs the root command with args and the given environment
// (TENANTPROXY_* variables not named are cleared).
func catalogCLI(t *testing.T, env map[string]string, args ...string) (string, error) {
	t.Helper()
	for _, name := range []string{"TENANTPROXY_UPSTREAM", "TENANTPROXY_SEARCH_PATH"} {
		t.Setenv(name, "")
		os.Unsetenv(name)
	}
	for k, v := range env {
		t.Setenv(k, v)
	}
	cmd := newRootCmd()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SetArgs(args)
	err := cmd.Execute()
	return out.String(), err
}

func TestCatalogCommands(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `CREATE SCHEMA app; CREATE TABLE app.orders (id int, tenant_id int);
		CREATE TABLE "Plans" (id int); CREATE TABLE projects (org_id text)`); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"TENANTPROXY_UPSTREAM": dsn}
	steps := []struct {
		name string
		env  map[string]string
		args []string
		want []string // substrings of the output, or of the error
		fail bool
	}{
		{name: "list before init", env: env, args: []string{"catalog", "list"}, fail: true, want: []string{"run: tenantproxy catalog init"}},
		{name: "init", env: env, args: []string{"catalog", "init"}, want: []string{fmt.Sprintf("version %d", catalog.SchemaVersion)}},
		{name: "init again", env: env, args: []string{"catalog", "init"}, want: []string{fmt.Sprintf("version %d", catalog.SchemaVersion)}},
		{name: "add-table via env search path", args: []string{"catalog", "add-table", "orders", "--tenant-column", "tenant_id"},
			env: map[string]string{"TENANTPROXY_UPSTREAM": dsn, "TENANTPROXY_SEARCH_PATH": "nosuch,app"}, want: []string{`added "app"."orders"`, "catalog version 2"}},
		{name: "add-table without column", env: env, args: []string{"catalog", "add-table", "projects"}, fail: true, want: []string{"tenant-column"}},
		{name: "add-table with claim and flag", args: []string{"catalog", "--upstream", dsn, "add-table", "projects", "--tenant-column", "org_id", "--claim", "org"},
			want: []string{"catalog version 3"}},
		{name: "add-global quoted", env: env, args: []string{"catalog", "add-global", `"Plans"`}, want: []string{"global, read-only"}},
		{name: "add-global again", env: env, args: []string{"catalog", "add-global", `"Plans"`, "--writable"}, want: []string{"already catalogued", "global, writable"}},
		{name: "add-global missing", env: env, args: []string{"catalog", "add-global", "nosuch"}, fail: true, want: []string{`table "nosuch" does not exist`}},
		{name: "list", env: env, args: []string{"catalog", "list"}, want: []string{
			"TABLE", `public."Plans"`, "global", "yes", "app.orders", "tenant_id", "(tenant claim)", "public.projects", "org_id", "org", "catalog version 5, 3 tables"}},
		{name: "bad output", env: env, args: []string{"catalog", "list", "-o", "yaml"}, fail: true, want: []string{"use table or json"}},
		{name: "remove", env: env, args: []string{"catalog", "remove", "app.orders"}, want: []string{`removed "app"."orders"`, "catalog version 6"}},
		{name: "remove again", env: env, args: []string{"catalog", "remove", "app.orders"}, fail: true, want: []string{"not in the catalog"}},
		{name: "no upstream", args: []string{"catalog", "list"}, fail: true, want: []string{"set --upstream or TENANTPROXY_UPSTREAM to the database's URL"}},
	}
	for _, s := range steps {
		out, err := catalogCLI(t, s.env, s.args...)
		if (err != nil) != s.fail {
			t.Fatalf("%s: error %v, want failure %v; output:\n%s", s.name, err, s.fail, out)
		}
		if err != nil {
			out += err.Error()
		}
		for _, w := range s.want {
			if !strings.Contains(out, w) {
				t.Errorf("%s: output lacks %q:\n%s", s.name, w, out)
			}
		}
	}

	out, err := catalogCLI(t, env, "catalog", "list", "--output", "json")
	if err != nil {
		t.Fatal(err)
	}
	var tables []catalog.Table
	if err := json.Unmarshal([]byte(out), &tables); err != nil {
		t.Fatalf("%v:\n%s", err, out)
	}
	if len(tables) != 2 || tables[0].Name != "Plans" || !tables[0].Writable || tables[1].Claim != "org" {
		t.Fatalf("%+v", tables)
	}
	var by string
	if err := conn.QueryRow(ctx, "SELECT by FROM tenantproxy.changes ORDER BY id DESC LIMIT 1").Scan(&by); err != nil || !strings.HasSuffix(by, "(cli)") {
		t.Fatalf("change logged by %q: %v", by, err)
	}
}
