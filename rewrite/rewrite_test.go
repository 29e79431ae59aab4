package rewrite_test

import (
	"testing"

	"github.com/tenantproxy/tenantproxy/rewrite"
)

// A rewritten statement, rewritten again, is still accepted and unchanged in
// meaning: the derived tables it produced are valid input.
func TestRewriteOfOutputIsAccepted(t *testing.T) {
	rw := rewrite.New(rewrite.Config{})
	snap := testCatalog()
	for _, cases := range loadGolden(t) {
		for _, c := range cases {
			if c.Reject != "" || c.Passed {
				continue
			}
			res, err := rw.Rewrite(c.SQL, c.scope(), snap)
			if err != nil {
				t.Fatalf("%s: %v", c.SQL, err)
			}
			if _, err := rw.Rewrite(res.SQL, c.scope(), snap); err != nil {
				t.Errorf("rewriting the output of %q: %v", c.SQL, err)
			}
		}
	}
}

// Parse errors carry SQLSTATE 42601 and the parser's position.
func TestSyntaxErrorPosition(t *testing.T) {
	_, err := rewrite.New(rewrite.Config{}).Rewrite("SELECT * FROM orders WHERE", rewrite.Scope{}, testCatalog())
	rej, ok := err.(*rewrite.Rejection)
	if !ok || rej.Code != "42601" || rej.Position == 0 {
		t.Fatalf("got %#v", err)
	}
}

// Parameter checks carry the tenant column's catalogued type.
func TestParamCheckCarriesType(t *testing.T) {
	res, err := rewrite.New(rewrite.Config{}).Rewrite("INSERT INTO orders (tenant_id) VALUES ($1)", rewrite.Scope{Values: map[string][]string{"": {"1"}}}, testCatalog())
	if err != nil {
		t.Fatal(err)
	}
	if len(res.ParamChecks) != 1 || res.ParamChecks[0] != (rewrite.ParamCheck{Index: 1, Claim: "", Type: "integer"}) {
		t.Fatalf("got %+v", res.ParamChecks)
	}
}

func BenchmarkRewrite(b *testing.B) {
	rw := rewrite.New(rewrite.Config{})
	snap := testCatalog()
	scope := rewrite.Scope{Values: map[string][]string{"": {"42"}}}
	for _, bc := range []struct{ name, sql string }{
		{"passthrough", "SELECT 1"},
		{"point-select", "SELECT * FROM orders WHERE id = $1"},
		{"join", "SELECT o.id, c.name FROM orders o JOIN customers c ON c.id = o.customer_id WHERE o.total > $1 ORDER BY o.id LIMIT 10"},
		{"insert", "INSERT INTO orders (customer_id, total) VALUES ($1, $2) RETURNING id"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := rw.Rewrite(bc.sql, scope, snap); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
