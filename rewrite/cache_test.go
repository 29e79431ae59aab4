package rewrite_test

import (
	"strings"

	pg_query "github.com/pganalyze/pg_query_go/v5"
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
	type pair struct {
		r     *rewrite.Rewriter
		cache *rewrite.Cache
	}
	pairs := map[bool]pair{}
	for _, pooling := range []bool{false, true} {
		r := rewrite.New(rewrite.Config{TransactionPooling: pooling})
		cache, err := rewrite.NewCache(r, 10000)
		if err != nil {
			t.Fatal(err)
		}
		pairs[pooling] = pair{r, cache}
	}
	compared := 0
	for file, cases := range loadGolden(t) {
		for _, c := range cases {
			r, cache := pairs[c.TransactionPooling].r, pairs[c.TransactionPooling].cache
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
	st := pairs[false].cache.Stats()
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
	// Statements that differ only in constants share a template: these
	// five have five shapes.
	for _, sql := range []string{"SELECT 1", "SELECT 1, 2", "SELECT 'a'", "SELECT true", "SELECT * FROM orders"} {
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

// literalVariants are ways to change every constant of a statement while
// keeping its token kinds: a template made from the original must serve
// each of them exactly as the uncached rewriter does, including when the
// new constant is a tenant value (a decision that read a constant must
// not be reused).
var literalVariants = []struct {
	name   string
	str    func(old string) string
	number func(old string, float bool) string
}{
	{"changed", func(old string) string {
		if old[0] == '$' {
			return "$$x$$"
		}
		return old[:len(old)-1] + "x'"
	}, func(old string, float bool) string {
		if float {
			return "2.5"
		}
		return "1" + old
	}},
	{"other spellings", func(string) string { return `$q$o'b\r$q$` }, func(old string, float bool) string {
		if float {
			return "1e3"
		}
		return "00" + old
	}},
	{"escapes", func(string) string { return `E'\t''x\\'` }, func(_ string, float bool) string {
		if float {
			return "99999999999"
		}
		return "2147483647"
	}},
	{"tenant values", func(string) string { return "'42'" }, func(_ string, float bool) string {
		if float {
			return "42.0"
		}
		return "42"
	}},
	{"undecodable", func(string) string { return `E'\x41\101'` }, func(old string, _ bool) string { return old }},
}

// variant rewrites every string and number constant of sql.
func variant(t *testing.T, sql string, v func(string) string, n func(string, bool) string) string {
	scan, err := pg_query.Scan(sql)
	if err != nil {
		return sql
	}
	var b strings.Builder
	prev := 0
	for _, tk := range scan.GetTokens() {
		var repl string
		old := sql[tk.GetStart():tk.GetEnd()]
		switch tk.GetToken() {
		case pg_query.Token_SCONST:
			repl = v(old)
		case pg_query.Token_ICONST:
			repl = n(old, false)
		case pg_query.Token_FCONST:
			repl = n(old, true)
		default:
			continue
		}
		b.WriteString(sql[prev:tk.GetStart()])
		b.WriteString(repl)
		prev = int(tk.GetEnd())
	}
	b.WriteString(sql[prev:])
	return b.String()
}

// TestCacheServesOtherConstants: statements that differ only in their
// constants share a template, and what it gives is byte for byte what the
// uncached rewriter gives for each of them, for every golden case, every
// tenant and every variant, refusals included.
func TestCacheServesOtherConstants(t *testing.T) {
	snap := testCatalog()
	r := rewrite.New(rewrite.Config{})
	cache, err := rewrite.NewCache(r, 100000)
	if err != nil {
		t.Fatal(err)
	}
	compared := 0
	for file, cases := range loadGolden(t) {
		for _, c := range cases {
			for _, scope := range cacheScopes(c) {
				if _, err := cache.Rewrite(c.SQL, scope, snap); err != nil && !isRejection(err) {
					t.Fatal(err)
				}
				for _, lv := range literalVariants {
					sql := variant(t, c.SQL, lv.str, lv.number)
					if sql == c.SQL {
						continue
					}
					want, wantErr := r.Rewrite(sql, scope, snap)
					got, gotErr := cache.Rewrite(sql, scope, snap)
					if (wantErr == nil) != (gotErr == nil) || wantErr != nil && wantErr.Error() != gotErr.Error() {
						t.Fatalf("%s: %s (%s) as %v: uncached error %v, cached error %v", file, sql, lv.name, scope.Values, wantErr, gotErr)
					}
					if wantErr == nil && !reflect.DeepEqual(want, got) {
						t.Fatalf("%s: %s (%s) as %v:\nuncached %+v\ncached   %+v", file, sql, lv.name, scope.Values, want, got)
					}
					compared++
				}
			}
		}
	}
	st := cache.Stats()
	t.Logf("%d comparisons; cache: %d hits, %d misses, %d bypasses, %d templates", compared, st.Hits, st.Misses, st.Bypasses, st.Entries)
	if st.Hits < int64(compared)/4 {
		t.Fatalf("only %d hits in %d comparisons: constants are not sharing templates", st.Hits, compared)
	}
}

func isRejection(err error) bool {
	_, ok := err.(*rewrite.Rejection)
	return ok
}
