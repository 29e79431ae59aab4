package rewrite_test

import (
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/tenantproxy/tenantproxy/catalog"
	"github.com/tenantproxy/tenantproxy/rewrite"
)

// A rewritten statement, rewritten again, is still accepted and unchanged in
// meaning: the derived tables it produced are valid input. (A channel name
// is mapped again, into a longer name, which may then be too long.)
func TestRewriteOfOutputIsAccepted(t *testing.T) {
	snap := testCatalog()
	for _, cases := range loadGolden(t) {
		for _, c := range cases {
			if c.Reject != "" || c.Passed {
				continue
			}
			rw := rewrite.New(c.config())
			res, err := rw.Rewrite(c.SQL, c.scope(), snap)
			if err != nil {
				t.Fatalf("%s: %v", c.SQL, err)
			}
			again := res.SQL
			if res.CopyIn != nil && res.CopyIn.Keys != nil {
				again = res.CopyIn.Statement // the proxy's statements around it aside
			}
			if _, err := rw.Rewrite(again, c.scope(), snap); err != nil && !strings.Contains(err.Error(), "is too long: the proxy adds") {
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

// oltpStatements are the typical statements the rewrite benchmarks run.
var oltpStatements = []struct{ name, sql string }{
	{"passthrough", "SELECT 1"},
	{"begin", "BEGIN"},
	{"point-select", "SELECT * FROM orders WHERE id = $1"},
	{"join", "SELECT o.id, c.name FROM orders o JOIN customers c ON c.id = o.customer_id WHERE o.total > $1 ORDER BY o.id LIMIT 10"},
	{"insert", "INSERT INTO orders (customer_id, total) VALUES ($1, $2) RETURNING id"},
	{"update", "UPDATE orders SET total = total + $1 WHERE id = $2"},
	{"path-select", "SELECT p.title FROM posts p WHERE p.id = $1"},
}

// BenchmarkRewrite is the full path: parse, rewrite, deparse and verify.
func BenchmarkRewrite(b *testing.B) {
	rw := rewrite.New(rewrite.Config{})
	snap := testCatalog()
	scope := rewrite.Scope{Values: map[string][]string{"": {"42"}}}
	for _, bc := range oltpStatements {
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

// BenchmarkRewriteCached is a cache hit: the template of another tenant's
// rewrite with this session's value spliced in.
func BenchmarkRewriteCached(b *testing.B) {
	cache, err := rewrite.NewCache(rewrite.New(rewrite.Config{}), 1000)
	if err != nil {
		b.Fatal(err)
	}
	snap := testCatalog()
	other := rewrite.Scope{Values: map[string][]string{"": {"7"}}}
	scope := rewrite.Scope{Values: map[string][]string{"": {"42"}}}
	for _, bc := range oltpStatements {
		if _, err := cache.Rewrite(bc.sql, other, snap); err != nil {
			b.Fatal(err)
		}
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := cache.Rewrite(bc.sql, scope, snap); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkRewriteCachedConstants is a client on the simple protocol: the
// same statements with a new constant each time, served from the template
// their shape shares.
func BenchmarkRewriteCachedConstants(b *testing.B) {
	cache, err := rewrite.NewCache(rewrite.New(rewrite.Config{}), 1000)
	if err != nil {
		b.Fatal(err)
	}
	snap := testCatalog()
	scope := rewrite.Scope{Values: map[string][]string{"": {"42"}}}
	for _, bc := range []struct{ name, format string }{
		{"point-select", "SELECT * FROM orders WHERE id = %d"},
		{"join", "SELECT o.id, c.name FROM orders o JOIN customers c ON c.id = o.customer_id WHERE o.total > %d ORDER BY o.id LIMIT 10"},
		{"insert", "INSERT INTO orders (customer_id, total) VALUES (%d, 'note') RETURNING id"},
		{"update", "UPDATE orders SET total = total + 1 WHERE id = %d"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				i++
				if _, err := cache.Rewrite(fmt.Sprintf(bc.format, i), scope, snap); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// A system catalog can never be catalogued as a table: the snapshot refuses
// it, so its rows stay behind the system allowlist.
func TestSystemSchemaCannotBeCatalogued(t *testing.T) {
	for _, schema := range []string{"pg_catalog", "information_schema", "pg_toast", "pg_temp_3"} {
		_, err := catalog.NewSnapshot(1, []catalog.Table{{Schema: schema, Name: "t", Kind: catalog.Global}})
		if err == nil || !strings.Contains(err.Error(), "system schema") {
			t.Errorf("%s: %v", schema, err)
		}
	}
}

// The parser stops at a NUL byte; a statement carrying one is refused, so
// nothing hides behind it.
func TestNULByteRefused(t *testing.T) {
	_, err := rewrite.New(rewrite.Config{}).Rewrite("SELECT 1\x00; SELECT * FROM secrets", rewrite.Scope{}, testCatalog())
	rej, ok := err.(*rewrite.Rejection)
	if !ok || rej.Code != "42501" || rej.Position != 9 {
		t.Fatalf("got %#v", err)
	}
}

// Without a catalog nothing is accepted, not even a statement that reads no
// table.
func TestNoCatalogRefuses(t *testing.T) {
	if _, err := rewrite.New(rewrite.Config{}).Rewrite("SELECT 1", rewrite.Scope{}, nil); err == nil || !strings.Contains(err.Error(), "no tenant catalog") {
		t.Fatalf("got %v", err)
	}
}

// Rewriting is safe to call from many sessions at once.
func TestConcurrentRewrites(t *testing.T) {
	rw := rewrite.New(rewrite.Config{})
	snap := testCatalog()
	want, err := rw.Rewrite("SELECT o.id FROM orders o JOIN customers c ON c.id = o.customer_id", rewrite.Scope{Values: map[string][]string{"": {"7"}}}, snap)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 50 {
				got, err := rw.Rewrite("SELECT o.id FROM orders o JOIN customers c ON c.id = o.customer_id", rewrite.Scope{Values: map[string][]string{"": {"7"}}}, snap)
				if err != nil || got.SQL != want.SQL {
					t.Errorf("got %v, %v", got, err)
					return
				}
			}
		}()
	}
	wg.Wait()
}

// TestCatalogExtras: functions and system relations a catalog allows beyond
// the built-in lists pass, and an unqualified allowed user function is
// qualified so Postgres cannot pick a pg_catalog function of that name.
func TestCatalogExtras(t *testing.T) {
	rw := rewrite.New(rewrite.Config{SearchPath: []string{"public"}})
	scope := rewrite.Scope{Values: map[string][]string{"": {"42"}}}
	snap := testCatalog().WithExtras(catalog.Extras{
		Functions: []string{"public.slugify", "pg_backend_pid"},
		Relations: []string{"pg_catalog.pg_parameter_acl"},
	})
	cases := map[string]string{
		"SELECT slugify(name) FROM customers":             "SELECT public.slugify(name) FROM (SELECT * FROM public.customers WHERE customers.tenant_id = '42' OFFSET 0) customers",
		"SELECT public.slugify('x')":                      "SELECT public.slugify('x')",
		"SELECT pg_backend_pid()":                         "SELECT pg_backend_pid()",
		"SELECT parname FROM pg_catalog.pg_parameter_acl": "SELECT parname FROM pg_catalog.pg_parameter_acl",
	}
	for sql, want := range cases {
		res, err := rw.Rewrite(sql, scope, snap)
		if err != nil {
			t.Errorf("%s: %v", sql, err)
			continue
		}
		if res.SQL != want {
			t.Errorf("%s:\n got %s\nwant %s", sql, res.SQL, want)
		}
	}
	// The verifier's floor holds whatever the catalog allows.
	floor := testCatalog().WithExtras(catalog.Extras{Functions: []string{"query_to_xml"}, Relations: []string{"pg_catalog.pg_authid"}})
	for _, sql := range []string{"SELECT query_to_xml('select 1', true, true, '')", "SELECT * FROM pg_authid"} {
		if _, err := rw.Rewrite(sql, scope, floor); err == nil {
			t.Errorf("%s: accepted because the catalog allowed it", sql)
		}
	}
	for _, sql := range []string{"SELECT other.slugify('x')", "SELECT query_to_xml('x', true, true, '')", "SELECT * FROM pg_stat_activity"} {
		if _, err := rw.Rewrite(sql, scope, snap); err == nil {
			t.Errorf("%s: accepted", sql)
		}
	}
	// Without the extras the same statements are refused.
	if _, err := rw.Rewrite("SELECT slugify('x')", scope, testCatalog()); err == nil {
		t.Error("slugify accepted without the catalog allowing it")
	}
}

// A relation qualified with the current database's name is that relation,
// as in Postgres; any other database is refused.
func TestDatabaseQualifiedNames(t *testing.T) {
	rw := rewrite.New(rewrite.Config{SearchPath: []string{"public"}, Database: "app"})
	scope := rewrite.Scope{Values: map[string][]string{"": {"42"}}}
	res, err := rw.Rewrite("SELECT p.name, o.id FROM app.public.plans p, app.public.orders o", scope, testCatalog())
	if err != nil {
		t.Fatal(err)
	}
	want := "SELECT p.name, o.id FROM public.plans p, (SELECT * FROM public.orders WHERE orders.tenant_id = '42') o"
	if res.SQL != want {
		t.Fatalf("got  %s\nwant %s", res.SQL, want)
	}
	if _, err := rw.Rewrite("SELECT * FROM other.public.plans", scope, testCatalog()); err == nil || !strings.Contains(err.Error(), "another database") {
		t.Fatalf("other database: %v", err)
	}
}

// BenchmarkAuditFingerprint is what the audit stream adds per statement on
// top of the rewrite: pg_query's fingerprint (and, with --audit-redact, its
// normalisation).
func BenchmarkAuditFingerprint(b *testing.B) {
	const sql = "SELECT o.id, c.name FROM orders o JOIN customers c ON c.id = o.customer_id WHERE o.total > 10 ORDER BY o.id LIMIT 10"
	b.Run("fingerprint", func(b *testing.B) {
		for b.Loop() {
			rewrite.Fingerprint(sql)
		}
	})
	b.Run("redact", func(b *testing.B) {
		for b.Loop() {
			rewrite.Redact(sql)
		}
	})
}

// Every session mode records the prepared statements and cursors a
// statement defines, uses and drops, which the proxy tracks per session.
func TestNamesDefinedUsedAndDropped(t *testing.T) {
	snap := testCatalog()
	tenant := rewrite.Scope{Values: map[string][]string{"": {"1"}}}
	cases := []struct {
		sql                  string
		defines, uses, drops string
	}{
		{"PREPARE p AS SELECT * FROM orders", "stmt:p", "", ""},
		{"EXECUTE p", "", "stmt:p", ""},
		{"EXPLAIN EXECUTE p", "", "stmt:p", ""},
		{"DEALLOCATE p", "", "", "stmt:p"},
		{"DEALLOCATE ALL", "", "", "stmt:*"},
		{"DECLARE c CURSOR FOR SELECT * FROM orders", "cursor:c", "", ""},
		{"FETCH 10 FROM c", "", "cursor:c", ""},
		{"CLOSE c", "", "", "cursor:c"},
		{"CLOSE ALL", "", "", "cursor:*"},
		{"BEGIN; DECLARE c CURSOR FOR SELECT 1; FETCH c; CLOSE c; COMMIT", "cursor:c", "cursor:c", "cursor:c"},
	}
	for _, mode := range []struct {
		name  string
		scope rewrite.Scope
	}{{"tenant", tenant}, {"unscoped", rewrite.Scope{Unscoped: true}}} {
		for _, c := range cases {
			res, err := rewrite.New(rewrite.Config{SearchPath: []string{"public"}}).Rewrite(c.sql, mode.scope, snap)
			if err != nil {
				t.Fatalf("%s %q: %v", mode.name, c.sql, err)
			}
			got := [3]string{strings.Join(res.Defines, ","), strings.Join(res.Uses, ","), strings.Join(res.Drops, ",")}
			if want := [3]string{c.defines, c.uses, c.drops}; got != want {
				t.Errorf("%s %q: defines, uses, drops %q, want %q", mode.name, c.sql, got, want)
			}
		}
	}
}

// --explain says when a table was fenced by the security barrier.
func TestExplainSaysFenced(t *testing.T) {
	rw := rewrite.New(rewrite.Config{SearchPath: []string{"public"}})
	scope := rewrite.Scope{Values: map[string][]string{"": {"42"}}}
	for sql, want := range map[string]bool{"SELECT * FROM orders WHERE note ~ 'x'": true, "SELECT * FROM orders WHERE id = 1": false} {
		res, err := rw.Rewrite(sql, scope, testCatalog())
		if err != nil {
			t.Fatal(err)
		}
		fenced := false
		for _, r := range res.Rules {
			if r.Relation == "public.orders" && strings.HasPrefix(r.Rule, "fenced (OFFSET 0)") {
				fenced = true
			}
		}
		if fenced != want {
			t.Errorf("%s: rules %v, fenced note %v, want %v", sql, res.Rules, fenced, want)
		}
	}
}
