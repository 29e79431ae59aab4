package rewrite_test

import (
	"strings"
	"testing"

	pg "github.com/pganalyze/pg_query_go/v5"
	"github.com/tenantproxy/tenantproxy/rewrite"
)

// FuzzRewrite: the rewriter never panics, is deterministic, and every
// accepted output parses and names no tenant but the session's.
func FuzzRewrite(f *testing.F) {
	for _, cases := range loadGolden(f) {
		for _, c := range cases {
			f.Add(c.SQL)
		}
	}
	rw := rewrite.New(rewrite.Config{SearchPath: []string{"public"}})
	snap := testCatalog()
	scope := rewrite.Scope{Values: map[string][]string{"": {"tenant-under-test"}}}
	f.Fuzz(func(t *testing.T, sql string) {
		res, err := rw.Rewrite(sql, scope, snap)
		res2, err2 := rw.Rewrite(sql, scope, snap)
		if (err == nil) != (err2 == nil) || (err == nil && res.SQL != res2.SQL) {
			t.Fatalf("not deterministic for %q", sql)
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
		if !strings.Contains(res.SQL, "tenant-under-test") && len(res.Tables) > 0 && len(res.ParamChecks) == 0 {
			t.Fatalf("scoped output without the tenant literal: %s", res.SQL)
		}
	})
}
