// Package diffcorpus is the differential corpus shared by the isolation-
// equivalence suites: a schema, every tenant's rows, the catalog that
// describes them, and the statements to run. A statement runs for a tenant
// on the shared database (through the proxy, or rewritten in process) and
// directly on a database that holds only that tenant's rows; reads must
// return the same results, writes must leave the tenant's rows the same on
// both and every other tenant's rows untouched, and refusals must be
// refusals.
//
// The e2e suite (e2e/differential_test.go) is the authoritative one; the
// rewrite package runs the same corpus in process (rewrite/
// differential_test.go).
package diffcorpus

import (
	"fmt"
	"strings"

	"github.com/tenantproxy/tenantproxy/catalog"
)

// Schema is the DDL of the corpus: global tables (plans, read-only;
// settings, writable), tables bound to the tenant claim on tenant_id
// (customers, orders, order_items, "Mixed Case"), app.accounts (a schema
// other than public, bound on org_id to the tenant claim), projects (bound
// on org_id to the second claim "org"), docs (bound on tenant_id and on
// author to the claim "sub"), notes (path-bound through order_id to
// orders), and secrets, which is deliberately not catalogued. The search
// path is public.
const Schema = `
CREATE SCHEMA app;
CREATE TABLE public.plans (id int PRIMARY KEY, name text);
CREATE TABLE public.settings (name text PRIMARY KEY, value text);
CREATE TABLE public.customers (id int PRIMARY KEY, tenant_id int NOT NULL, name text, plan_id int);
CREATE TABLE public.orders (id serial PRIMARY KEY, tenant_id int NOT NULL, customer_id int, total numeric, note text);
CREATE TABLE public.order_items (id int PRIMARY KEY, tenant_id int NOT NULL, order_id int, qty int);
CREATE TABLE public.notes (id int PRIMARY KEY, order_id int REFERENCES public.orders, body text);
CREATE TABLE public.docs (id int PRIMARY KEY, tenant_id int NOT NULL, author text NOT NULL, title text);
CREATE TABLE public."Mixed Case" (id int PRIMARY KEY, tenant_id int NOT NULL, "Label" text);
CREATE TABLE app.accounts (id int PRIMARY KEY, org_id int NOT NULL, name text);
CREATE TABLE public.projects (id int PRIMARY KEY, org_id int NOT NULL, name text);
CREATE TABLE public.secrets (id int, value text);
`

// Tenants are the tenants the corpus holds rows of, and runs for.
var Tenants = []string{"1", "2", "3"}

// Subject is the sub claim of every tenant's session: docs are bound to it.
const Subject = "ann"

// Claims returns a tenant's session scope by claim: "" is the primary
// tenant claim, "org" the second dimension (the same value as the
// tenant), "sub" the subject.
func Claims(tenant string) map[string][]string {
	return map[string][]string{"": {tenant}, "org": {tenant}, "sub": {Subject}}
}

// Row is one INSERT of corpus data: Values are the rows' VALUES lists for
// Table. Tenant says which databases hold them: "" every database (global
// rows), a tenant's id the shared database and that tenant's own, Nobody
// only the shared database (rows no tenant sees).
type Row struct {
	Table, Tenant, Values string
}

// Nobody is the Row.Tenant of rows that belong to no session's tenant.
const Nobody = "-"

// Rows are every tenant's rows, tenants interleaved. Ids are unique across
// tenants (tenant t owns ids t01..t99), so keys never collide between the
// shared and a tenant's own database; some rows point at another tenant's
// rows, some hold NULLs and empty strings.
var Rows = []Row{
	{"public.plans", "", "(1, 'basic'), (2, 'pro'), (3, 'unused')"},
	{"public.settings", "", "('theme', 'dark'), ('x', NULL), ('empty', '')"},
	{"public.customers", "2", "(201, 2, 'ann', 1), (202, 2, 'dee', 3)"},
	{"public.customers", "1", "(101, 1, 'ann', 1), (102, 1, 'bob', 2), (103, 1, 'cy', NULL)"},
	{"public.customers", "3", "(301, 3, 'eve', 2), (302, 3, '', NULL)"},
	{"public.orders", "2", "(201, 2, 201, 50, 'theirs'), (202, 2, 101, 7, NULL)"},
	{"public.orders", "1", "(101, 1, 101, 10, 'a'), (102, 1, 101, 5.5, NULL), (103, 1, 102, 7, 'c'), (104, 1, 201, 3, 'points at tenant 2'), (105, 1, NULL, 0, '')"},
	{"public.orders", "3", "(301, 3, 301, 10, 'a'), (302, 3, 102, 1, 'points at tenant 1')"},
	{"public.order_items", "1", "(101, 1, 101, 2), (102, 1, 101, 1), (103, 1, 202, 9)"},
	{"public.order_items", "3", "(301, 3, 301, 5), (302, 3, NULL, NULL)"},
	{"public.order_items", "2", "(201, 2, 201, 4), (202, 2, 101, 8)"},
	{"public.notes", "1", "(101, 102, 'n1'), (102, 103, 'n2')"},
	{"public.notes", "2", "(201, 201, 'n3')"},
	{"public.notes", "3", "(301, 301, 'n4')"},
	{"public.notes", Nobody, "(999, NULL, 'orphan')"},
	{"public.docs", "1", "(101, 1, 'ann', 'mine')"},
	{"public.docs", Nobody, "(102, 1, 'bob', 'colleague'), (202, 2, 'bob', 'colleague of 2')"},
	{"public.docs", "2", "(201, 2, 'ann', 't2 ann')"},
	{"public.docs", "3", "(301, 3, 'ann', 't3 ann')"},
	{`public."Mixed Case"`, "1", "(101, 1, 'one')"},
	{`public."Mixed Case"`, "2", "(201, 2, 'two')"},
	{"app.accounts", "1", "(101, 1, 'one'), (102, 1, NULL)"},
	{"app.accounts", "2", "(201, 2, 'two')"},
	{"app.accounts", "3", "(301, 3, '')"},
	{"public.projects", "1", "(101, 1, 'p1')"},
	{"public.projects", "3", "(301, 3, 'p3'), (302, 3, 'one')"},
	{"public.secrets", Nobody, "(1, 'do not leak')"},
}

// SequenceStart is where Load sets public.orders_id_seq: rows a statement
// adds from the sequence get ids above it on every database.
const SequenceStart = 1000

// Tables returns the catalog the corpus runs under, columns in table order.
func Tables() []catalog.Table {
	tenant := func(name string, cols []catalog.Column, b ...catalog.Binding) catalog.Table {
		return catalog.Table{Schema: "public", Name: name, Kind: catalog.TenantBound, TenantColumn: b[0].Column, Claim: b[0].Claim, Bindings: b, Columns: cols}
	}
	byTenant := catalog.Binding{Column: "tenant_id"}
	accounts := tenant("accounts", columns("id integer", "org_id integer", "name text"), catalog.Binding{Column: "org_id"})
	accounts.Schema = "app"
	return []catalog.Table{
		{Schema: "public", Name: "plans", Kind: catalog.Global, Columns: columns("id integer", "name text")},
		{Schema: "public", Name: "settings", Kind: catalog.Global, Writable: true, Columns: columns("name text", "value text")},
		tenant("customers", columns("id integer", "tenant_id integer", "name text", "plan_id integer"), byTenant),
		tenant("orders", columns("id integer", "tenant_id integer", "customer_id integer", "total numeric", "note text"), byTenant),
		tenant("order_items", columns("id integer", "tenant_id integer", "order_id integer", "qty integer"), byTenant),
		{Schema: "public", Name: "notes", Kind: catalog.PathBound, Parent: "public.orders", Via: "order_id", ParentKey: "id", Columns: columns("id integer", "order_id integer", "body text")},
		tenant("docs", columns("id integer", "tenant_id integer", "author text", "title text"), byTenant, catalog.Binding{Column: "author", Claim: "sub"}),
		tenant("Mixed Case", columns("id integer", "tenant_id integer", "Label text"), byTenant),
		accounts,
		tenant("projects", columns("id integer", "org_id integer", "name text"), catalog.Binding{Column: "org_id", Claim: "org"}),
	}
}

// columns turns "name type" pairs into catalog columns.
func columns(defs ...string) []catalog.Column {
	out := make([]catalog.Column, len(defs))
	for i, d := range defs {
		name, typ, _ := strings.Cut(d, " ")
		out[i] = catalog.Column{Name: name, Type: typ}
	}
	return out
}

// SoloDefaults is the DDL that makes a tenant's own database fill in its
// bound columns, as the proxy does when an INSERT leaves them out.
func SoloDefaults(tenant string) string {
	var b strings.Builder
	claims := Claims(tenant)
	for _, t := range Tables() {
		for _, bind := range t.Bindings {
			fmt.Fprintf(&b, "ALTER TABLE %s ALTER %s SET DEFAULT %s;\n",
				catalog.QuoteName(t.Schema, t.Name), catalog.QuoteName(bind.Column), quoteLiteral(claims[bind.Claim][0]))
		}
	}
	return b.String()
}

// quoteLiteral writes s as a SQL string literal.
func quoteLiteral(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }
