package rewrite_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	pg "github.com/pganalyze/pg_query_go/v5"
	"github.com/tenantproxy/tenantproxy/catalog"
	"github.com/tenantproxy/tenantproxy/rewrite"
)

var update = flag.Bool("update", false, "rewrite the want values of the golden files (review the diff!)")

// testCatalog is the catalog every golden case runs against (search path
// ["public"]):
//
//	public.orders      tenant-bound on tenant_id (id, tenant_id, customer_id, total, note)
//	public.customers   tenant-bound on tenant_id (id, tenant_id, name, plan_id)
//	public.order_items tenant-bound on tenant_id, columns unknown
//	public.plans       global, read-only
//	public.settings    global, writable
//	app.accounts       tenant-bound on org_id (id, org_id, name)
//	public.projects    tenant-bound on org_id for claim "org" (id, org_id, name)
//	public."Audit Log" tenant-bound on "Tenant Id", columns unknown
//	public.sites       tenant-bound on tenant_id (id, tenant_id, name)
//	public.posts       path-bound: site_id -> sites.id (id, site_id, title)
//	public.comments    path-bound: post_id -> posts.id (id, post_id, body)
//	public.documents   tenant-bound on org_id (primary claim) and author_id
//	                   (claim "sub") (id, org_id, author_id, title)
//
// A case's scope holds its "tenants" (default ["42"]) for the primary claim
// and its "claims" for the others.
func testCatalog() *catalog.Snapshot {
	cols := func(names ...string) []catalog.Column {
		out := make([]catalog.Column, len(names))
		for i, n := range names {
			out[i] = catalog.Column{Name: n, Type: "integer"}
		}
		return out
	}
	return catalog.MustSnapshot(7,
		catalog.Table{Schema: "public", Name: "orders", Kind: catalog.TenantBound, TenantColumn: "tenant_id", Columns: cols("id", "tenant_id", "customer_id", "total", "note")},
		catalog.Table{Schema: "public", Name: "customers", Kind: catalog.TenantBound, TenantColumn: "tenant_id", Columns: cols("id", "tenant_id", "name", "plan_id")},
		catalog.Table{Schema: "public", Name: "order_items", Kind: catalog.TenantBound, TenantColumn: "tenant_id"},
		catalog.Table{Schema: "public", Name: "plans", Kind: catalog.Global},
		catalog.Table{Schema: "public", Name: "settings", Kind: catalog.Global, Writable: true},
		catalog.Table{Schema: "app", Name: "accounts", Kind: catalog.TenantBound, TenantColumn: "org_id", Columns: cols("id", "org_id", "name")},
		catalog.Table{Schema: "public", Name: "Audit Log", Kind: catalog.TenantBound, TenantColumn: "Tenant Id"},
		catalog.Table{Schema: "public", Name: "projects", Kind: catalog.TenantBound, TenantColumn: "org_id", Claim: "org", Columns: cols("id", "org_id", "name")},
		catalog.Table{Schema: "public", Name: "sites", Kind: catalog.TenantBound, TenantColumn: "tenant_id", Columns: cols("id", "tenant_id", "name")},
		catalog.Table{Schema: "public", Name: "posts", Kind: catalog.PathBound, Parent: "public.sites", Via: "site_id", ParentKey: "id", Columns: cols("id", "site_id", "title")},
		catalog.Table{Schema: "public", Name: "comments", Kind: catalog.PathBound, Parent: "public.posts", Via: "post_id", ParentKey: "id", Columns: cols("id", "post_id", "body")},
		catalog.Table{Schema: "public", Name: "documents", Kind: catalog.TenantBound, Columns: cols("id", "org_id", "author_id", "title"),
			Bindings: []catalog.Binding{{Column: "org_id"}, {Column: "author_id", Claim: "sub"}}},
	)
}

// goldenCase is one entry of a testdata/*.json file.
type goldenCase struct {
	Comment string              `json:"comment"`
	SQL     string              `json:"sql"`
	Tenants []string            `json:"tenants,omitempty"`
	Claims  map[string][]string `json:"claims,omitempty"`
	Want    string              `json:"want,omitempty"`
	Reject  string              `json:"reject,omitempty"`
	Hint    string              `json:"hint,omitempty"`
	Passed  bool                `json:"passed,omitempty"`
	Params  []int               `json:"params,omitempty"`
	// Unscoped and ReadOnly set the session modes of the scope.
	Unscoped bool `json:"unscoped,omitempty"`
	ReadOnly bool `json:"read_only,omitempty"`
	// TenantSchema turns on schema-per-tenant isolation with this pattern.
	TenantSchema string `json:"tenant_schema,omitempty"`
	// TransactionPooling rewrites as a proxy in transaction pooling mode.
	TransactionPooling bool `json:"transaction_pooling,omitempty"`
}

// config is the rewriter configuration a case runs under.
func (c goldenCase) config() rewrite.Config {
	return rewrite.Config{SearchPath: []string{"public"}, TenantSchema: c.TenantSchema, TransactionPooling: c.TransactionPooling}
}

// rewriterPair is an uncached rewriter and a cache in front of it.
type rewriterPair struct {
	r     *rewrite.Rewriter
	cache *rewrite.Cache
}

// rewritersByConfig gives each case configuration its own rewriter and
// cache, made on first use.
func rewritersByConfig(t testing.TB, size int) func(goldenCase) rewriterPair {
	pairs := map[string]rewriterPair{}
	return func(c goldenCase) rewriterPair {
		cfg := c.config()
		key := fmt.Sprint(cfg.TenantSchema, cfg.TransactionPooling)
		if p, ok := pairs[key]; ok {
			return p
		}
		r := rewrite.New(cfg)
		cache, err := rewrite.NewCache(r, size)
		if err != nil {
			t.Fatal(err)
		}
		pairs[key] = rewriterPair{r, cache}
		return pairs[key]
	}
}

func (c goldenCase) scope() rewrite.Scope {
	tenants := c.Tenants
	if len(tenants) == 0 {
		tenants = []string{"42"}
	}
	values := map[string][]string{"": tenants}
	for k, v := range c.Claims {
		values[k] = v
	}
	return rewrite.Scope{Values: values, Unscoped: c.Unscoped, ReadOnly: c.ReadOnly}
}

func loadGolden(t testing.TB) map[string][]goldenCase {
	files, err := filepath.Glob("testdata/*.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no golden files: %v", err)
	}
	out := map[string][]goldenCase{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var cases []goldenCase
		if err := json.Unmarshal(b, &cases); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		out[f] = cases
	}
	return out
}

func TestGolden(t *testing.T) {
	snap := testCatalog()
	for file, cases := range loadGolden(t) {
		changed := false
		for i, c := range cases {
			name := strings.TrimSuffix(filepath.Base(file), ".json") + "/" + c.Comment
			t.Run(name, func(t *testing.T) {
				res, err := rewrite.New(c.config()).Rewrite(c.SQL, c.scope(), snap)
				if c.Reject != "" {
					if err == nil {
						t.Fatalf("accepted, want rejection containing %q; got:\n%s", c.Reject, res.SQL)
					}
					if !strings.Contains(err.Error(), c.Reject) {
						t.Fatalf("rejection %q does not contain %q", err.Error(), c.Reject)
					}
					var rej *rewrite.Rejection
					if !asRejection(err, &rej) || rej.Hint == "" && rej.Code == "42501" {
						t.Errorf("refusal without a hint: %v", err)
					}
					if rej != nil && !strings.Contains(rej.Hint, c.Hint) {
						t.Errorf("hint %q does not contain %q", rej.Hint, c.Hint)
					}
					return
				}
				if err != nil {
					t.Fatalf("rejected: %v", err)
				}
				if c.Unscoped {
					if res.Decision != rewrite.Unscoped || res.SQL != c.SQL {
						t.Fatalf("want unscoped and unchanged, got %s: %s", res.Decision, res.SQL)
					}
					return
				}
				if c.Passed {
					if res.Decision != rewrite.Passed || res.SQL != c.SQL {
						t.Fatalf("want passed unchanged, got %s: %s", res.Decision, res.SQL)
					}
					return
				}
				if *update {
					cases[i].Want = res.SQL
					changed = true
				}
				if res.SQL != cases[i].Want {
					t.Fatalf("got:\n%s\nwant:\n%s", res.SQL, cases[i].Want)
				}
				if _, err := pg.Parse(res.SQL); err != nil {
					t.Fatalf("output does not parse: %v", err)
				}
				var params []int
				for _, p := range res.ParamChecks {
					params = append(params, p.Index)
				}
				if !slices.Equal(params, c.Params) {
					t.Fatalf("param checks %v, want %v", params, c.Params)
				}
			})
		}
		if changed {
			var b bytes.Buffer
			enc := json.NewEncoder(&b)
			enc.SetEscapeHTML(false) // keep < and > readable in SQL
			enc.SetIndent("", "  ")
			if err := enc.Encode(cases); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(file, b.Bytes(), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func asRejection(err error, out **rewrite.Rejection) bool {
	r, ok := err.(*rewrite.Rejection)
	*out = r
	return ok
}
