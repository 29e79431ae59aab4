package catalog_test

import (
	"context"
	"slices"
	"testing"

	"github.com/tenantproxy/tenantproxy/catalog"
)

// Load reads each table's unique keys; only those "=" decides are plain.
func TestLoadReadsUniqueKeys(t *testing.T) {
	conn := connect(t)
	ctx := context.Background()
	if _, err := conn.Exec(ctx, `
		CREATE COLLATION ci (provider = icu, locale = 'und-u-ks-level2', deterministic = false);
		CREATE TABLE keyed (id int PRIMARY KEY, tenant_id int NOT NULL, code text, name text COLLATE ci, v varchar(10), n int,
		  CONSTRAINT keyed_code_key UNIQUE (tenant_id, code),
		  CONSTRAINT keyed_n_key UNIQUE (n) DEFERRABLE);
		CREATE UNIQUE INDEX keyed_lower ON keyed (lower(code));
		CREATE UNIQUE INDEX keyed_partial ON keyed (code) WHERE n > 0;
		CREATE UNIQUE INDEX keyed_name_c ON keyed (name COLLATE "C");
		CREATE UNIQUE INDEX keyed_pattern ON keyed (code text_pattern_ops);
		CREATE UNIQUE INDEX keyed_v ON keyed (v) INCLUDE (n);
		CREATE UNIQUE INDEX keyed_nnd ON keyed (n, tenant_id) NULLS NOT DISTINCT;
		CREATE INDEX keyed_plain ON keyed (tenant_id);`); err != nil {
		t.Fatal(err)
	}
	if err := catalog.Init(ctx, conn); err != nil {
		t.Fatal(err)
	}
	if _, err := catalog.AddTable(ctx, conn, catalog.TableRef{Name: "keyed", SearchPath: []string{"public"}}, "tenant_id", "", "test"); err != nil {
		t.Fatal(err)
	}
	snap, err := catalog.Load(ctx, conn)
	if err != nil {
		t.Fatal(err)
	}
	tbl, _ := snap.Lookup("public", "keyed")
	want := map[string]catalog.UniqueKey{
		"keyed_pkey":     {Index: "keyed_pkey", Constraint: "keyed_pkey", Columns: []string{"id"}, Plain: true},
		"keyed_code_key": {Index: "keyed_code_key", Constraint: "keyed_code_key", Columns: []string{"tenant_id", "code"}, Plain: true},
		"keyed_n_key":    {Index: "keyed_n_key", Constraint: "keyed_n_key", Columns: []string{"n"}},
		"keyed_lower":    {Index: "keyed_lower"},
		"keyed_partial":  {Index: "keyed_partial", Columns: []string{"code"}},
		"keyed_name_c":   {Index: "keyed_name_c", Columns: []string{"name"}},
		"keyed_pattern":  {Index: "keyed_pattern", Columns: []string{"code"}},
		"keyed_v":        {Index: "keyed_v", Columns: []string{"v"}, Plain: true},
		"keyed_nnd":      {Index: "keyed_nnd", Columns: []string{"n", "tenant_id"}},
	}
	if len(tbl.UniqueKeys) != len(want) {
		t.Errorf("%d unique keys, want %d: %+v", len(tbl.UniqueKeys), len(want), tbl.UniqueKeys)
	}
	for _, k := range tbl.UniqueKeys {
		w := want[k.Index]
		if w.Index == "" || k.Constraint != w.Constraint || k.Plain != w.Plain || !slices.Equal(k.Columns, w.Columns) {
			t.Errorf("%+v, want %+v", k, w)
		}
	}
}
