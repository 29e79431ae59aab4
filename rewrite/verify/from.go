package verify

import (
	"strings"

	pg "github.com/pganalyze/pg_query_go/v5"

	"github.com/tenantproxy/tenantproxy/catalog"
)

// fromCtx describes where a FROM item sits.
type fromCtx struct {
	stmt  string     // "SELECT", "UPDATE ... FROM", "DELETE ... USING" (messages)
	where []*pg.Node // top-level AND conjuncts of that statement's WHERE
	// sole: the item is the statement's only FROM item and not in a join,
	// so a bare column name can only mean its column.
	sole bool
	// hidden: the item is inside a JOIN that has an alias, which hides the
	// item's own name from the WHERE clause (a qualified reference there
	// would resolve to an outer query instead).
	hidden bool
}

// selectStmt checks one query level: WITH, FROM items, then every other
// field generically (target list, WHERE, GROUP BY, HAVING, set-operation
// arms, VALUES lists, ORDER BY, LIMIT, locking, and IntoClause, which the
// allowlist refuses).
func (c *checker) selectStmt(s *pg.SelectStmt) error {
	pop, err := c.with(s.GetWithClause())
	defer pop()
	if err != nil {
		return err
	}
	conj := conjuncts(s.GetWhereClause())
	from := s.GetFromClause()
	for _, item := range from {
		fc := fromCtx{stmt: "SELECT", where: conj, sole: len(from) == 1}
		if err := c.fromItem(item, fc); err != nil {
			return err
		}
	}
	return c.fields(s.ProtoReflect(), skipSelect)
}

// fromItem checks one item of a FROM list or a JOIN arm.
func (c *checker) fromItem(n *pg.Node, fc fromCtx) error {
	switch x := n.GetNode().(type) {
	case *pg.Node_RangeVar:
		return c.readRef(x.RangeVar, fc)
	case *pg.Node_JoinExpr:
		j := x.JoinExpr
		inner := fc
		inner.sole = false
		if j.GetAlias() != nil {
			inner.hidden = true
		}
		if err := c.fromItem(j.GetLarg(), inner); err != nil {
			return err
		}
		if err := c.fromItem(j.GetRarg(), inner); err != nil {
			return err
		}
		// ON, USING, aliases: expressions of this level.
		return c.fields(j.ProtoReflect(), skipJoin)
	case *pg.Node_RangeSubselect:
		return c.fields(x.RangeSubselect.ProtoReflect(), nil)
	case *pg.Node_RangeFunction:
		return c.fields(x.RangeFunction.ProtoReflect(), nil)
	}
	// RangeTableSample, RangeTableFunc and anything else: the allowlist
	// decides (and refuses them).
	return c.visitNode(n)
}

// readRef checks a table reference that is read (a FROM item).
func (c *checker) readRef(rv *pg.RangeVar, fc fromCtx) error {
	if c.isCTE(rv) {
		return c.fields(rv.ProtoReflect(), nil)
	}
	t, err := c.resolve(rv)
	if err != nil {
		return err
	}
	switch t.Kind {
	case catalog.Global:
		return nil
	case catalog.TenantBound, catalog.PathBound:
	default:
		return refuse("table %s has unknown kind %q", t.QualifiedName(), t.Kind)
	}
	if fc.hidden {
		return refuse("tenant-bound table %s in %s sits inside an aliased JOIN, whose alias hides it from WHERE; "+
			"the rewriter must replace it with a filtered derived table", rvName(rv), fc.stmt)
	}
	if len(rv.GetAlias().GetColnames()) > 0 {
		return refuse("tenant-bound table %s in %s has column aliases, which can rename the tenant column; "+
			"the rewriter must replace it with a filtered derived table", rvName(rv), fc.stmt)
	}
	ref := tableRef{table: t, rv: rv, bare: fc.sole}
	if err := c.confined(fc.where, ref); err != nil {
		return refuse("tenant-bound table %s in %s is not confined: %v; the rewriter must wrap it as "+
			"(SELECT * FROM %s WHERE %s.%s = '<tenant>') AS ...", rvName(rv), fc.stmt, err,
			t.QualifiedName(), t.Name, t.TenantColumn)
	}
	return nil
}

// resolve finds the catalogued table rv names (a table, never a CTE).
func (c *checker) resolve(rv *pg.RangeVar) (catalog.Table, error) {
	if rv.GetCatalogname() != "" {
		return catalog.Table{}, refuse("table reference %s names a database; the rewriter emits schema.table only", rvName(rv))
	}
	schema, name := rv.GetSchemaname(), rv.GetRelname()
	if schema == "" && (strings.HasPrefix(name, "pg_") || strings.HasPrefix(name, "_pg_")) {
		// Postgres searches pg_catalog before the search_path.
		return catalog.Table{}, refuse("unqualified system-like name %s; the rewriter qualifies system relations", name)
	}
	if catalog.SystemSchemas[schema] || strings.HasPrefix(schema, "pg_") {
		return c.systemRelation(schema, name)
	}
	if schema != "" {
		if t, ok := c.p.Snapshot.Lookup(schema, name); ok {
			return t, nil
		}
		if c.p.TenantSchema != "" && schema == c.p.TenantSchema {
			return catalog.Table{Schema: schema, Name: name, Kind: catalog.Global, Writable: true, TenantSchema: true}, nil
		}
		return catalog.Table{}, refuse("table %s is not in the catalog; add it to the catalog or remove it from the statement", rvName(rv))
	}
	for _, s := range c.p.SearchPath {
		if t, ok := c.p.Snapshot.Lookup(s, name); ok {
			return t, nil
		}
	}
	return catalog.Table{}, refuse("table %s is not in the catalog (search_path %v); add it to the catalog or remove it from the statement",
		rvName(rv), c.p.SearchPath)
}

// dataBearingSystem are system relations that hold other tenants' data,
// statistics, activity or secrets, refused whatever an allowlist says: the
// names listed, and every name starting with a listed prefix ending in "*".
var dataBearingSystem = strings.Fields(`pg_statistic pg_statistic_ext_data pg_stats* pg_stat_* pg_statio_*
pg_largeobject* pg_authid pg_shadow pg_user_mapping* pg_sequences pg_locks pg_prepared_* pg_cursors
pg_replication_* pg_subscription* pg_hba_file_rules pg_ident_file_mappings pg_file_settings
pg_db_role_setting pg_backend_memory_contexts pg_shmem_allocations pg_config _pg_user_mappings
user_mapping*`)

// NeverReadable reports whether a system relation name is on the verifier's
// floor: refused even when a catalog allows it.
func NeverReadable(name string) bool {
	for _, p := range dataBearingSystem {
		if prefix, ok := strings.CutSuffix(p, "*"); ok && strings.HasPrefix(name, prefix) || p == name {
			return true
		}
	}
	return false
}

// systemRelation admits a system relation the catalog allows, read-only,
// unless it is known to carry data of other tenants.
func (c *checker) systemRelation(schema, name string) (catalog.Table, error) {
	if schema != "pg_catalog" && schema != "information_schema" {
		return catalog.Table{}, refuse("relation %s.%s is in schema %s, which is never readable", schema, name, schema)
	}
	if NeverReadable(name) {
		return catalog.Table{}, refuse("system relation %s.%s carries other tenants' data or activity", schema, name)
	}
	if !c.p.Snapshot.SystemRelationAllowed(schema, name) {
		return catalog.Table{}, refuse("system relation %s.%s is not on the allowlist", schema, name)
	}
	return catalog.Table{Schema: schema, Name: name, Kind: catalog.Global}, nil
}
