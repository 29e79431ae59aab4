package rewrite_test

import (
	"reflect"
	"strings"
	"testing"

	pg "github.com/pganalyze/pg_query_go/v5"
	"github.com/tenantproxy/tenantproxy/rewrite"
)

// FuzzRewrite checks properties that hold for every input:
//   - the rewriter never panics and only ever returns a *Rejection;
//   - it is deterministic;
//   - an accepted output parses, and is accepted again when rewritten
//     (unless a channel name it maps again grows too long);
//   - a passed statement is returned unchanged;
//   - the tenant only enters the output through the proxy's own literals
//     and channel prefixes: rewriting for tenant A and for tenant B gives
//     the same text up to replacing A by B and A's channel prefix by B's
//     (unless the input itself names one of them);
//   - a scoped output carries the tenant literal.
func FuzzRewrite(f *testing.F) {
	for _, cases := range loadGolden(f) {
		for _, c := range cases {
			f.Add(c.SQL)
		}
	}
	rw := rewrite.New(rewrite.Config{SearchPath: []string{"public"}})
	snap := testCatalog()
	const a, b = "tnt-a", "tnt-b"
	scope := func(v string) rewrite.Scope {
		return rewrite.Scope{Values: map[string][]string{"": {v}, "org": {v + "-org"}}}
	}
	f.Fuzz(func(t *testing.T, sql string) {
		res, err := rw.Rewrite(sql, scope(a), snap)
		res2, err2 := rw.Rewrite(sql, scope(a), snap)
		if (err == nil) != (err2 == nil) || err == nil && res.SQL != res2.SQL || err != nil && err.Error() != err2.Error() {
			t.Fatalf("not deterministic for %q", sql)
		}
		resB, errB := rw.Rewrite(sql, scope(b), snap)
		namesTenant := strings.Contains(sql, "tnt-")
		if (err == nil) != (errB == nil) && !namesTenant {
			t.Fatalf("accepted for one tenant and not the other: %v / %v", err, errB)
		}
		if err != nil {
			if _, ok := err.(*rewrite.Rejection); !ok {
				t.Fatalf("error is %T, want *Rejection", err)
			}
			return
		}
		if res.Decision == rewrite.Passed {
			if res.SQL != sql {
				t.Fatalf("passed statement was changed")
			}
			return
		}
		if _, err := pg.Parse(res.SQL); err != nil {
			t.Fatalf("output does not parse: %v\n%s", err, res.SQL)
		}
		// A channel name carries the tenant as its prefix (a hash of it).
		aToB := strings.NewReplacer(a, b, rewrite.ChannelPrefix(a), rewrite.ChannelPrefix(b))
		if errB == nil && !namesTenant && aToB.Replace(res.SQL) != resB.SQL {
			t.Fatalf("the output depends on the tenant beyond its literals:\n%s\n%s", res.SQL, resB.SQL)
		}
		// (COPY FROM carries the tenant in the row checks of CopyIn instead.)
		if len(res.Tables) > 0 && len(res.ParamChecks) == 0 && res.CopyIn == nil && !strings.Contains(res.SQL, a) {
			t.Fatalf("scoped output without the tenant literal: %s", res.SQL)
		}
		// (A mapped channel name is mapped again, and may then be too long.)
		if _, err := rw.Rewrite(res.SQL, scope(a), snap); err != nil && !strings.Contains(err.Error(), "is too long: the proxy adds") {
			t.Fatalf("the output is refused when rewritten again: %v\n%s", err, res.SQL)
		}
	})
}

// FuzzCache checks that a rewrite served from the cache, from a template
// another tenant's statement made (with other constants, too), is exactly
// the uncached rewrite: the same SQL and Result, or the same refusal.
func FuzzCache(f *testing.F) {
	for _, cases := range loadGolden(f) {
		for _, c := range cases {
			f.Add(c.SQL)
		}
	}
	rw := rewrite.New(rewrite.Config{SearchPath: []string{"public"}})
	cache, err := rewrite.NewCache(rw, 1000)
	if err != nil {
		f.Fatal(err)
	}
	snap := testCatalog()
	scope := func(v ...string) rewrite.Scope {
		return rewrite.Scope{Values: map[string][]string{"": v, "org": {"o-" + v[0]}}}
	}
	f.Fuzz(func(t *testing.T, sql string) {
		_, _ = cache.Rewrite(sql, scope("41"), snap) // makes the template
		sqls := []string{sql}
		for _, lv := range literalVariants {
			sqls = append(sqls, variant(t, sql, lv.str, lv.number))
		}
		for _, s := range []rewrite.Scope{scope("42"), scope("tenant-7"), scope("1", "2")} {
			for _, sql := range sqls {
				want, wantErr := rw.Rewrite(sql, s, snap)
				got, gotErr := cache.Rewrite(sql, s, snap)
				if (wantErr == nil) != (gotErr == nil) || wantErr != nil && wantErr.Error() != gotErr.Error() {
					t.Fatalf("%q as %v: uncached %v, cached %v", sql, s.Values, wantErr, gotErr)
				}
				if wantErr == nil && !reflect.DeepEqual(want, got) {
					t.Fatalf("%q as %v:\nuncached %+v\ncached   %+v", sql, s.Values, want, got)
				}
			}
		}
	})
}
