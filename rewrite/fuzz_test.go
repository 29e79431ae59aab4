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
		again := res.SQL
		if res.CopyIn != nil && res.CopyIn.Keys != nil {
			again = res.CopyIn.Statement // the proxy's statements around it aside
		}
		// (A mapped channel name is mapped again, and may then be too long.)
		if _, err := rw.Rewrite(again, scope(a), snap); err != nil && !strings.Contains(err.Error(), "is too long: the proxy adds") {
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

// FuzzModes checks the session modes on every input:
//   - read-only accepts a subset of what read-write accepts, with the same
//     result, and what it accepts writes and locks nothing;
//   - an unscoped session's accepted statement goes out unchanged;
//   - in schema-per-tenant isolation, tenant A's output never names tenant
//     B's schema, A and B get the same text up to the schema name, and the
//     cache serves exactly the uncached rewrite (read-write and read-only).
func FuzzModes(f *testing.F) {
	for _, cases := range loadGolden(f) {
		for _, c := range cases {
			f.Add(c.SQL)
		}
	}
	snap := testCatalog()
	rows := rewrite.New(rewrite.Config{SearchPath: []string{"public"}})
	schemas := rewrite.New(rewrite.Config{SearchPath: []string{"public"}, TenantSchema: "tenant_{tenant}"})
	schemaCache, err := rewrite.NewCache(schemas, 1000)
	if err != nil {
		f.Fatal(err)
	}
	scope := func(v string, readOnly bool) rewrite.Scope {
		return rewrite.Scope{Values: map[string][]string{"": {v}, "org": {v + "-org"}}, ReadOnly: readOnly}
	}
	same := func(a, b *rewrite.Result, errA, errB error) bool {
		return (errA == nil) == (errB == nil) && (errA != nil && errA.Error() == errB.Error() || errA == nil && reflect.DeepEqual(a, b))
	}
	f.Fuzz(func(t *testing.T, sql string) {
		rw, rwErr := rows.Rewrite(sql, scope("7", false), snap)
		ro, roErr := rows.Rewrite(sql, scope("7", true), snap)
		if roErr == nil {
			if rwErr != nil {
				t.Fatalf("read-only accepts what read-write refuses (%v)", rwErr)
			}
			if ro.SQL != rw.SQL || ro.Decision != rw.Decision {
				t.Fatalf("read-only output differs:\n%s\n%s", ro.SQL, rw.SQL)
			}
			if w := writes(t, ro.SQL); w != "" {
				t.Fatalf("read-only output holds %s:\n%s", w, ro.SQL)
			}
		}
		un, unErr := rows.Rewrite(sql, rewrite.Scope{Unscoped: true}, snap)
		if unErr == nil && (un.Decision != rewrite.Unscoped || un.SQL != sql) {
			t.Fatalf("unscoped statement changed or decided %s:\n%s", un.Decision, un.SQL)
		}

		_, _ = schemaCache.Rewrite(sql, scope("zq1", false), snap) // makes the template
		var outA, outB *rewrite.Result
		var errA, errB error
		for _, readOnly := range []bool{false, true} {
			for _, v := range []string{"zq2", "zq1"} {
				want, wantErr := schemas.Rewrite(sql, scope(v, readOnly), snap)
				got, gotErr := schemaCache.Rewrite(sql, scope(v, readOnly), snap)
				if !same(want, got, wantErr, gotErr) {
					t.Fatalf("tenant %s read-only %v: uncached %+v (%v), cached %+v (%v)", v, readOnly, want, wantErr, got, gotErr)
				}
				if !readOnly && v == "zq1" {
					outA, errA = want, wantErr
				} else if !readOnly {
					outB, errB = want, wantErr
				}
			}
		}
		if strings.Contains(sql, "zq") {
			return
		}
		if (errA == nil) != (errB == nil) {
			t.Fatalf("schema mode accepted for one tenant and not the other: %v / %v", errA, errB)
		}
		if errA != nil {
			return
		}
		if strings.Contains(outA.SQL, "zq2") {
			t.Fatalf("tenant zq1's output names tenant zq2 or its schema:\n%s", outA.SQL)
		}
		aToB := strings.NewReplacer("zq1", "zq2", rewrite.ChannelPrefix("zq1"), rewrite.ChannelPrefix("zq2"))
		if aToB.Replace(outA.SQL) != outB.SQL {
			t.Fatalf("schema mode output depends on the tenant beyond its schema:\n%s\n%s", outA.SQL, outB.SQL)
		}
	})
}

// writes names the first node of sql's parse tree that writes or locks
// rows, or returns "".
func writes(t *testing.T, sql string) string {
	t.Helper()
	tree, err := pg.ParseToJSON(sql)
	if err != nil {
		t.Fatalf("output does not parse: %v\n%s", err, sql)
	}
	for _, w := range []string{`"InsertStmt"`, `"UpdateStmt"`, `"DeleteStmt"`, `"MergeStmt"`, `"lockingClause"`, `"intoClause"`, `"is_from":true`} {
		if strings.Contains(tree, w) {
			return w
		}
	}
	return ""
}
