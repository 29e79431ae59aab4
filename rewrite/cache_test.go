package rewrite_test

import (
	"reflect"
	"testing"

	"github.com/tenantproxy/tenantproxy/catalog"
	"github.com/tenantproxy/tenantproxy/rewrite"
)

// cacheScopes are the tenants every golden case runs as through the cache:
// its own scope, then the same shape with other values (a template made for
// one tenant must serve the next one exactly), and values the cache must
// step aside for.
func cacheScopes(c goldenCase) []rewrite.Scope {
	base := c.scope()
	out := []rewrite.Scope{base}
	for _, vals := range [][]string{{"7"}, {"acme-corp"}, {"1", "2"}, {"2", "1", "3"}, {"o'brien"}, {`back\slash`}, {"ünïcode"}} {
		s := rewrite.Scope{Values: map[string][]string{}}
		for k, v := range base.Values {
			s.Values[k] = v
		}
		s.Values[""] = vals
		out = append(out, s)
	}
	return out
}

// TestCacheMatchesTheRewriter: for every golden case and every tenant, the
// cached path (first a miss, then a hit) produces exactly what the
// uncached rewriter produces: the same SQL byte for byte, the same
// decision, parameter checks, rules and names, or the same refusal.
func TestCacheMatchesTheRewriter(t *testing.T) {
	snap := testCatalog()
	r := rewrite.New(rewrite.Config{})
	cache, err := rewrite.NewCache(r, 10000)
	if err != nil {
		t.Fatal(err)
	}
	compared := 0
	for file, cases := range loadGolden(t) {
		for _, c := range cases {
			for _, scope := range cacheScopes(c) {
				want, wantErr := r.Rewrite(c.SQL, scope, snap)
				for round := range 2 {
					got, gotErr := cache.Rewrite(c.SQL, scope, snap)
					if (wantErr == nil) != (gotErr == nil) || wantErr != nil && wantErr.Error() != gotErr.Error() {
						t.Fatalf("%s: %s as %v (round %d): uncached error %v, cached error %v", file, c.SQL, scope.Values, round, wantErr, gotErr)
					}
					if wantErr == nil && !reflect.DeepEqual(want, got) {
						t.Fatalf("%s: %s as %v (round %d):\nuncached %+v\ncached   %+v", file, c.SQL, scope.Values, round, want, got)
					}
					compared++
				}
			}
		}
	}
	st := cache.Stats()
	t.Logf("%d comparisons; cache: %d hits, %d misses, %d bypasses, %d templates", compared, st.Hits, st.Misses, st.Bypasses, st.Entries)
	if st.Hits == 0 {
		t.Fatal("the cache never hit")
	}
}

// A catalog reload empties the cache: a template made under one version is
// never used under another.
func TestCacheFollowsTheCatalogVersion(t *testing.T) {
	r := rewrite.New(rewrite.Config{})
	cache, err := rewrite.NewCache(r, 10)
	if err != nil {
		t.Fatal(err)
	}
	scope := rewrite.Scope{Values: map[string][]string{"": {"1"}}}
	snap := testCatalog()
	if _, err := cache.Rewrite("SELECT * FROM orders", scope, snap); err != nil {
		t.Fatal(err)
	}
	if _, err := cache.Rewrite("SELECT * FROM orders", scope, snap); err != nil || cache.Stats().Hits != 1 {
		t.Fatalf("no hit: %v %+v", err, cache.Stats())
	}
	// orders becomes global in the next version: the rewrite must change.
	next := catalog.MustSnapshot(8, catalog.Table{Schema: "public", Name: "orders", Kind: catalog.Global})
	res, err := cache.Rewrite("SELECT * FROM orders", scope, next)
	if err != nil || res.SQL != "SELECT * FROM public.orders" || cache.Stats().Hits != 1 || cache.Stats().Entries != 1 {
		t.Fatalf("after a reload: %v %+v %+v", err, res, cache.Stats())
	}
}

// The cache's size bounds the templates it holds.
func TestCacheIsBounded(t *testing.T) {
	cache, err := rewrite.NewCache(rewrite.New(rewrite.Config{}), 3)
	if err != nil {
		t.Fatal(err)
	}
	scope := rewrite.Scope{Values: map[string][]string{"": {"1"}}}
	for _, sql := range []string{"SELECT 1", "SELECT 2", "SELECT 3", "SELECT 4", "SELECT * FROM orders"} {
		if _, err := cache.Rewrite(sql, scope, testCatalog()); err != nil {
			t.Fatal(err)
		}
	}
	if n := cache.Stats().Entries; n != 3 {
		t.Fatalf("%d templates held, want 3", n)
	}
	if _, err := rewrite.NewCache(rewrite.New(rewrite.Config{}), 0); err == nil {
		t.Fatal("a cache of size 0 was made")
	}
}
