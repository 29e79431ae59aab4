package catalog_test

import (
	"context"
	"strings"
	"testing"

	"github.com/tenantproxy/tenantproxy/catalog"
)

// TestPathsDimensionsAndAllowances: add-path resolves the parent from the
// foreign key, a second add-table adds a dimension, allowances load into
// the snapshot, and a change that would break a path is refused.
func TestPathsDimensionsAndAllowances(t *testing.T) {
	conn := connect(t)
	ctx := context.Background()
	if _, err := conn.Exec(ctx, `
		CREATE TABLE sites (id int PRIMARY KEY, tenant_id int);
		CREATE TABLE posts (id int PRIMARY KEY, site_id int REFERENCES sites, title text);
		CREATE TABLE comments (id int, post_id int REFERENCES posts, alt_post int REFERENCES posts, body text);
		CREATE TABLE docs (id int, org_id int, author_id text);`); err != nil {
		t.Fatal(err)
	}
	if err := catalog.Init(ctx, conn); err != nil {
		t.Fatal(err)
	}
	ref := func(n string) catalog.TableRef { return catalog.TableRef{Name: n} }
	must := func(msg string, err error) string {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return msg
	}
	if _, err := catalog.AddPath(ctx, conn, ref("posts"), "site_id", catalog.TableRef{}, "", "test"); err == nil || !strings.Contains(err.Error(), "must be catalogued as tenant-bound or path-bound first") {
		t.Fatalf("path to an uncatalogued parent: %v", err)
	}
	must(catalog.AddTable(ctx, conn, ref("sites"), "tenant_id", "", "test"))
	if msg := must(catalog.AddPath(ctx, conn, ref("posts"), "site_id", catalog.TableRef{}, "", "test")); !strings.Contains(msg, "site_id references public.sites.id") {
		t.Fatalf("add-path said %q", msg)
	}
	must(catalog.AddPath(ctx, conn, ref("comments"), "post_id", catalog.TableRef{}, "", "test"))
	if _, err := catalog.AddPath(ctx, conn, ref("comments"), "body", catalog.TableRef{}, "", "test"); err == nil || !strings.Contains(err.Error(), "no single-column foreign key") {
		t.Fatalf("path without a foreign key: %v", err)
	}
	must(catalog.AddTable(ctx, conn, ref("docs"), "org_id", "", "test"))
	if msg := must(catalog.AddTable(ctx, conn, ref("docs"), "author_id", "sub", "test")); !strings.Contains(msg, `now also bound on "author_id"`) {
		t.Fatalf("second dimension said %q", msg)
	}
	must(catalog.AddTable(ctx, conn, ref("docs"), "org_id", "", "test")) // re-adding keeps the dimension
	must(catalog.Allow(ctx, conn, "function", "public.slugify", "test"))
	must(catalog.Allow(ctx, conn, "relation", "pg_catalog.pg_parameter_acl", "test"))
	if _, err := catalog.Allow(ctx, conn, "relation", "public.orders", "test"); err == nil {
		t.Fatal("allow-relation accepted a user table")
	}
	if _, err := catalog.Remove(ctx, conn, ref("posts"), "test"); err == nil || !strings.Contains(err.Error(), "would leave the catalog invalid") {
		t.Fatalf("removing a parent: %v", err)
	}

	snap, err := catalog.Load(ctx, conn)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := snap.Lookup("public", "comments")
	if c.Kind != catalog.PathBound || c.Parent != "public.posts" || c.Via != "post_id" || c.ParentKey != "id" || c.ColumnType("post_id") != "integer" {
		t.Fatalf("comments loaded as %+v", c)
	}
	d, _ := snap.Lookup("public", "docs")
	if len(d.Bindings) != 2 || d.Bindings[1] != (catalog.Binding{Column: "author_id", Claim: "sub"}) {
		t.Fatalf("docs loaded with bindings %+v", d.Bindings)
	}
	if !snap.FunctionAllowed("public.slugify") || !snap.SystemRelationAllowed("pg_catalog", "pg_parameter_acl") {
		t.Fatal("allowances did not load")
	}
	// Turning the table global drops its extra dimensions.
	must(catalog.AddGlobal(ctx, conn, ref("docs"), false, "test"))
	if snap, err = catalog.Load(ctx, conn); err != nil {
		t.Fatal(err)
	}
	if d, _ := snap.Lookup("public", "docs"); d.Kind != catalog.Global || len(d.Bindings) != 0 {
		t.Fatalf("docs after add-global: %+v", d)
	}
}
