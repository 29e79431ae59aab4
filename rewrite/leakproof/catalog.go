package leakproof

import (
	pg "github.com/pganalyze/pg_query_go/v5"

	"github.com/tenantproxy/tenantproxy/catalog"
)

// CatalogEnv resolves table references against a catalog snapshot and a
// search_path, the way Postgres would: pg_catalog first, then the path.
// System relations resolve to global tables of unknown columns.
type CatalogEnv struct {
	Snapshot   *catalog.Snapshot
	SearchPath []string
}

// Table implements Env.
func (e CatalogEnv) Table(rv *pg.RangeVar) (Table, bool) {
	if e.Snapshot == nil {
		return Table{}, false
	}
	schema, name := rv.GetSchemaname(), rv.GetRelname()
	if schema == "" && catalog.IsPgCatalogRelation(name) || catalog.SystemSchemas[schema] {
		return Table{}, true
	}
	var t catalog.Table
	ok := false
	if schema != "" {
		t, ok = e.Snapshot.Lookup(schema, name)
	} else {
		for _, s := range e.SearchPath {
			if t, ok = e.Snapshot.Lookup(s, name); ok {
				break
			}
		}
	}
	if !ok {
		return Table{}, false
	}
	return Table{Bound: t.Bound(), Columns: e.Snapshot.ColumnTypes(t.Schema, t.Name)}, true
}
