package catalog_test

import (
	"strings"
	"testing"

	"github.com/tenantproxy/tenantproxy/catalog"
)

func TestSnapshotValidation(t *testing.T) {
	cases := []struct {
		name   string
		tables []catalog.Table
		says   string
	}{
		{"no tenant column", []catalog.Table{{Schema: "public", Name: "t", Kind: catalog.TenantBound}}, "no tenant column"},
		{"column missing", []catalog.Table{{Schema: "public", Name: "t", Kind: catalog.TenantBound, TenantColumn: "x", Columns: []catalog.Column{{Name: "y"}}}}, `no column "x"`},
		{"duplicate", []catalog.Table{{Schema: "s", Name: "t", Kind: catalog.Global}, {Schema: "s", Name: "t", Kind: catalog.Global}}, "twice"},
		{"unknown kind", []catalog.Table{{Schema: "s", Name: "t", Kind: "odd"}}, "unknown kind"},
		{"no schema", []catalog.Table{{Name: "t", Kind: catalog.Global}}, "no schema"},
	}
	for _, c := range cases {
		if _, err := catalog.NewSnapshot(1, c.tables); err == nil || !strings.Contains(err.Error(), c.says) {
			t.Errorf("%s: %v", c.name, err)
		}
	}
	s := catalog.MustSnapshot(3, catalog.Table{Schema: "b", Name: "t", Kind: catalog.Global}, catalog.Table{Schema: "a", Name: "t", Kind: catalog.Global})
	if got := s.Tables(); got[0].Schema != "a" || s.Version() != 3 {
		t.Fatalf("%+v", got)
	}
	if _, ok := s.Lookup("A", "t"); ok {
		t.Fatal("lookup must be exact")
	}
}

func TestQuoteName(t *testing.T) {
	for in, want := range map[string]string{"orders": "orders", "Plans": `"Plans"`, "a b": `"a b"`, "x1$": "x1$", "1x": `"1x"`, `q"t`: `"q""t"`, "": `""`} {
		if got := catalog.QuoteName(in); got != want {
			t.Errorf("QuoteName(%q) = %s, want %s", in, got, want)
		}
	}
	if got := catalog.QuoteName("My Schema", "t"); got != `"My Schema".t` {
		t.Errorf("qualified: %s", got)
	}
}
