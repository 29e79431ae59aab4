package diffcorpus

import (
	"slices"
	"strings"
	"testing"

	pg "github.com/pganalyze/pg_query_go/v5"
	"github.com/tenantproxy/tenantproxy/catalog"
)

// The corpus is big enough, covers every category, parses, and holds no
// statement twice for the same tenants.
func TestCorpusShape(t *testing.T) {
	seen := map[string]bool{}
	writes := 0
	perCategory := map[string]int{}
	for _, s := range Statements {
		if !slices.Contains(Categories, s.Category) {
			t.Errorf("unknown category %q: %s", s.Category, s.SQL)
		}
		perCategory[s.Category]++
		key := s.SQL + "|" + strings.Join(s.Tenants, ",")
		if seen[key] {
			t.Errorf("duplicate: %s", key)
		}
		seen[key] = true
		if s.Write {
			writes++
		}
		if s.Write && s.Refused {
			t.Errorf("both a write and refused: %s", s.SQL)
		}
		for _, tenant := range s.Tenants {
			if !slices.Contains(Tenants, tenant) {
				t.Errorf("unknown tenant %q: %s", tenant, s.SQL)
			}
		}
		if _, err := pg.Parse(s.SQL); err != nil {
			t.Errorf("does not parse: %s: %v", s.SQL, err)
		}
	}
	for _, c := range Categories {
		if perCategory[c] == 0 {
			t.Errorf("category %q has no statement", c)
		}
	}
	if len(Statements) < 230 || writes < 60 {
		t.Errorf("%d statements, %d writes: want at least 230 and 60", len(Statements), writes)
	}
}

// The catalog validates, and every row belongs to a catalogued table (or
// to the uncatalogued one on purpose) and to a known tenant.
func TestCatalogAndRows(t *testing.T) {
	if _, err := catalog.NewSnapshot(1, Tables()); err != nil {
		t.Fatal(err)
	}
	for _, r := range Rows {
		if r.Table != "public.secrets" && !slices.ContainsFunc(Tables(), func(tb catalog.Table) bool {
			return catalog.QuoteName(tb.Schema, tb.Name) == r.Table
		}) {
			t.Errorf("rows for uncatalogued table %s", r.Table)
		}
		if r.Tenant != "" && r.Tenant != Nobody && !slices.Contains(Tenants, r.Tenant) {
			t.Errorf("rows of unknown tenant %q", r.Tenant)
		}
	}
}
