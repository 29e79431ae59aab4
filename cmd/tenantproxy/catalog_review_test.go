package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/tenantproxy/tenantproxy/catalog"
	"github.com/tenantproxy/tenantproxy/internal/pgtest"
)

// reviewSchema is a realistic schema: direct tenant tables, a two-step path
// (comment -> post -> site), an ambiguous table, a partitioned table, a
// table in another schema with every risk check looks for, and tables that
// belong to nobody.
const reviewSchema = `
CREATE SCHEMA crm;
CREATE TABLE plans (id int PRIMARY KEY, name text);
CREATE TABLE sites (id int PRIMARY KEY, tenant_id int NOT NULL, name text);
CREATE INDEX ON sites (tenant_id);
CREATE TABLE posts (id int PRIMARY KEY, site_id int NOT NULL REFERENCES sites, title text);
CREATE TABLE comments (id int PRIMARY KEY, post_id int NOT NULL REFERENCES posts, body text);
CREATE TABLE links (id int PRIMARY KEY, from_post int REFERENCES posts, to_post int REFERENCES posts);
CREATE TABLE events (id int, tenant_id int NOT NULL, at date) PARTITION BY RANGE (at);
CREATE TABLE events_2026 PARTITION OF events FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
CREATE TABLE crm.contacts (id int PRIMARY KEY, tenant_id int, site_id int REFERENCES sites, email text UNIQUE);
CREATE TABLE audit_log (id int, msg text);
`

func reviewDB(t *testing.T) (map[string]string, *pgx.Conn) {
	t.Helper()
	dsn := pgtest.NewDatabase(t)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	if _, err := conn.Exec(ctx, reviewSchema); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"TENANTPROXY_UPSTREAM": dsn}
	if out, err := catalogCLI(t, env, "catalog", "init"); err != nil {
		t.Fatal(out, err)
	}
	return env, conn
}

func mustContain(t *testing.T, what, out string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(out, w) {
			t.Errorf("%s: output lacks %q:\n%s", what, w, out)
		}
	}
}

// TestDiscoverCheckExportImport walks the catalog from an empty schema to a
// checked one, and moves it through a file and back.
func TestDiscoverCheckExportImport(t *testing.T) {
	env, conn := reviewDB(t)
	ctx := context.Background()

	out, err := catalogCLI(t, env, "catalog", "discover")
	if err != nil {
		t.Fatal(out, err)
	}
	mustContain(t, "discover", out,
		"public.sites ", "crm.contacts", "public.events", "public.events_2026",
		"public.posts", "site_id -> public.sites.id", "public.comments", "post_id -> public.posts.id",
		"events_2026 follows its parent public.events",
		"public.links: --via from_post (-> public.posts) or --via to_post (-> public.posts)",
		"unknown", "public.audit_log", "public.plans", "run again with --apply")
	if tables, _, _ := catalog.List(ctx, conn); len(tables) != 0 {
		t.Fatalf("discover without --apply wrote %d tables", len(tables))
	}
	if out, err = catalogCLI(t, env, "catalog", "discover", "--apply"); err != nil {
		t.Fatal(out, err)
	}
	mustContain(t, "discover --apply", out, "imported 6 tables")
	out, _ = catalogCLI(t, env, "catalog", "discover")
	mustContain(t, "discover again", out, "nothing new to propose", "already catalogued")
	if out, err = catalogCLI(t, env, "catalog", "add-global", "plans"); err != nil {
		t.Fatal(out, err)
	}

	out, err = catalogCLI(t, env, "catalog", "check")
	if err != nil {
		t.Fatalf("check with warnings only failed: %v\n%s", err, out)
	}
	mustContain(t, "check", out,
		"tenant column tenant_id is nullable", "no index starts with tenant_id",
		"constraint contacts_email_key is unique without tenant_id",
		"info     crm.contacts        foreign key contacts_site_id_fkey (site_id) to public.sites is guarded",
		"public.audit_log", "not in the catalog", "0 errors")
	if _, err := catalogCLI(t, env, "catalog", "check", "--strict"); err == nil {
		t.Error("check --strict passed with warnings")
	}
	out, _ = catalogCLI(t, env, "catalog", "show", "crm.contacts")
	mustContain(t, "show", out, "crm.contacts", "tenant_id", "email text", "warning: tenant column tenant_id is nullable")

	// Export, change the file, diff, import, and round-trip.
	dir := t.TempDir()
	file := filepath.Join(dir, "catalog.yaml")
	if out, err = catalogCLI(t, env, "catalog", "export", "--file", file); err != nil {
		t.Fatal(out, err)
	}
	original, _ := os.ReadFile(file)
	if out, err = catalogCLI(t, env, "catalog", "diff", file); err != nil {
		t.Fatalf("diff of an unchanged export: %v\n%s", err, out)
	}
	edited := strings.Replace(string(original), "kind: global\n", "kind: global\n    writable: true\n", 1)
	if edited == string(original) {
		t.Fatalf("could not edit the export:\n%s", original)
	}
	if err := os.WriteFile(file, []byte(edited), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err = catalogCLI(t, env, "catalog", "diff", file)
	if err == nil {
		t.Fatalf("diff of a changed file exited 0:\n%s", out)
	}
	mustContain(t, "diff", out, "~ table public.plans: global, read-only => global, writable")
	if out, err = catalogCLI(t, env, "catalog", "import", file); err != nil {
		t.Fatal(out, err)
	}
	mustContain(t, "import", out, "imported 7 tables")
	if err := os.WriteFile(file, original, 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err = catalogCLI(t, env, "catalog", "import", file); err != nil {
		t.Fatal(out, err)
	}
	again := filepath.Join(dir, "again.yaml")
	if out, err = catalogCLI(t, env, "catalog", "export", "--file", again); err != nil {
		t.Fatal(out, err)
	}
	roundTrip, _ := os.ReadFile(again)
	body := func(b []byte) string { return string(b[strings.IndexByte(string(b), '\n'):]) } // past the version line
	if body(roundTrip) != body(original) {
		t.Fatalf("export -> import -> export differs:\n%s\n---\n%s", original, roundTrip)
	}
}

// TestBadCatalogInputChangesNothing: malformed and inconsistent files,
// unknown tables and columns, a path that leads nowhere, a version
// conflict and a type mismatch each get a clear message, and the stored
// catalog stays as it was.
func TestBadCatalogInputChangesNothing(t *testing.T) {
	env, conn := reviewDB(t)
	ctx := context.Background()
	if out, err := catalogCLI(t, env, "catalog", "discover", "--apply"); err != nil {
		t.Fatal(out, err)
	}
	before, err := catalog.Export(ctx, conn)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for name, c := range map[string]struct{ file, want string }{
		"not yaml":       {"tables: [", "catalog file"},
		"unknown field":  {"tables:\n- name: public.sites\n  kind: tenant\n  colour: red\n", "field colour not found"},
		"unknown kind":   {"tables:\n- name: public.sites\n  kind: sometimes\n", `kind "sometimes"`},
		"unqualified":    {"tables:\n- name: sites\n  kind: global\n", "write tables as schema.name"},
		"no bindings":    {"tables:\n- name: public.sites\n  kind: tenant\n", "needs bindings"},
		"dangling path":  {"tables:\n- name: public.posts\n  kind: path\n  via: site_id\n  parent: public.sites\n  parent_key: id\n", "parent public.sites is not a tenant- or path-bound table"},
		"missing table":  {"tables:\n- name: public.nope\n  kind: global\n", "does not exist"},
		"missing column": {"tables:\n- name: public.sites\n  kind: tenant\n  bindings: [{column: org}]\n", `has no column "org"`},
		"duplicate":      {"tables:\n- name: public.plans\n  kind: global\n- name: public.plans\n  kind: global\n", "listed twice"},
	} {
		file := filepath.Join(dir, strings.ReplaceAll(name, " ", "_")+".yaml")
		if err := os.WriteFile(file, []byte(c.file), 0o644); err != nil {
			t.Fatal(err)
		}
		out, err := catalogCLI(t, env, "catalog", "import", file)
		if err == nil {
			t.Errorf("%s: import accepted it:\n%s", name, out)
			continue
		}
		if msg := out + err.Error(); !strings.Contains(msg, c.want) {
			t.Errorf("%s: message lacks %q: %s", name, c.want, msg)
		}
	}
	for _, args := range [][]string{
		{"catalog", "add-table", "nope", "--tenant-column", "tenant_id"},
		{"catalog", "add-table", "sites", "--tenant-column", "nope"},
		{"catalog", "add-path", "links", "--via", "from_post", "--parent", "plans", "--parent-key", "id"},
		{"catalog", "add-path", "audit_log", "--via", "msg"},
		{"catalog", "remove", "sites"},
	} {
		if out, err := catalogCLI(t, env, args...); err == nil {
			t.Errorf("%v succeeded:\n%s", args, out)
		}
	}
	// A plan made against an older version is refused whole.
	stale := *before
	if _, err := catalog.AddGlobal(ctx, conn, catalog.TableRef{Name: "plans"}, false, "someone else"); err != nil {
		t.Fatal(err)
	}
	if _, err := catalog.Import(ctx, conn, &stale, before.Version, "me"); !errorsIs(err, catalog.ErrVersionConflict) {
		t.Fatalf("stale import: %v", err)
	}
	after, err := catalog.Export(ctx, conn)
	if err != nil {
		t.Fatal(err)
	}
	if len(after.Tables) != len(before.Tables)+1 {
		t.Fatalf("tables before %d, after %d (want the one concurrent add only)", len(before.Tables), len(after.Tables))
	}
	// A claim bound to columns of different types is a check error.
	if _, err := conn.Exec(ctx, "CREATE TABLE docs (id int, tenant_id text NOT NULL)"); err != nil {
		t.Fatal(err)
	}
	if out, err := catalogCLI(t, env, "catalog", "add-table", "docs", "--tenant-column", "tenant_id"); err != nil {
		t.Fatal(out, err)
	}
	// A table or column dropped after it was catalogued is a check error.
	if _, err := conn.Exec(ctx, "CREATE TABLE gone (id int, tenant_id int); CREATE TABLE thin (id int, tenant_id int)"); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"gone", "thin"} {
		if out, err := catalogCLI(t, env, "catalog", "add-table", name, "--tenant-column", "tenant_id"); err != nil {
			t.Fatal(out, err)
		}
	}
	if _, err := conn.Exec(ctx, "DROP TABLE gone; ALTER TABLE thin DROP COLUMN tenant_id"); err != nil {
		t.Fatal(err)
	}
	out, err := catalogCLI(t, env, "catalog", "check")
	if err == nil {
		t.Fatalf("check passed with errors:\n%s", out)
	}
	mustContain(t, "check", out, "columns bound to the tenant claim have different types",
		"public.gone", "table does not exist", `tenant column "tenant_id" does not exist`, "3 errors")
}

func errorsIs(err, target error) bool {
	return err != nil && strings.Contains(err.Error(), target.Error())
}

// TestDiscoverTenantSchemas: with --tenant-schema, the tenant schemas are
// listed with their tables, never proposed, and a shared table that shares
// a tenant table's name is noted.
func TestDiscoverTenantSchemas(t *testing.T) {
	env, conn := reviewDB(t)
	if _, err := conn.Exec(context.Background(), `
		CREATE SCHEMA tenant_acme; CREATE SCHEMA tenant_globex; CREATE SCHEMA tenant_initech;
		CREATE TABLE tenant_acme.invoices (id int, total numeric);
		CREATE TABLE tenant_globex.invoices (id int, total numeric);
		CREATE TABLE tenant_initech.invoices (id int, total numeric);
		CREATE TABLE tenant_acme.plans (id int);`); err != nil {
		t.Fatal(err)
	}
	out, err := catalogCLI(t, env, "catalog", "discover", "--tenant-schema", "tenant_{tenant}")
	if err != nil {
		t.Fatal(out, err)
	}
	mustContain(t, "discover --tenant-schema", out,
		"tenant schemas (each session reaches its own; no catalog entries needed):\n  tenant_acme, tenant_globex, tenant_initech",
		"invoices (3 of 3)", "plans (1 of 3)",
		"public.plans has the name of a table in tenant schemas")
	if strings.Contains(out, "tenant_acme.invoices") {
		t.Errorf("a tenant schema's table was proposed or listed as unknown:\n%s", out)
	}
}
