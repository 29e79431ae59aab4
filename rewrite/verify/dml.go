package verify

import (
	pg "github.com/pganalyze/pg_query_go/v5"

	"github.com/tenantproxy/tenantproxy/catalog"
)

// target resolves the table an INSERT, UPDATE or DELETE writes. Targets are
// never CTEs (Postgres does not look them up), so CTE scope is ignored. It
// returns ok=false for a writable global table, which needs no further rule.
func (c *checker) target(rv *pg.RangeVar, verb string) (catalog.Table, bool, error) {
	if rv == nil {
		return catalog.Table{}, false, refuse("%s without a target table", verb)
	}
	t, err := c.resolve(rv)
	if err != nil {
		return t, false, err
	}
	switch t.Kind {
	case catalog.Global:
		if !t.Writable {
			return t, false, refuse("%s into global table %s, which the catalog marks read-only; mark it writable in the catalog if tenants may change it",
				verb, t.QualifiedName())
		}
		return t, false, nil
	case catalog.TenantBound, catalog.PathBound:
		if len(rv.GetAlias().GetColnames()) > 0 {
			return t, false, refuse("%s target %s has column aliases", verb, rvName(rv))
		}
		return t, true, nil
	}
	return t, false, refuse("table %s has unknown kind %q", t.QualifiedName(), t.Kind)
}

// updateStmt checks UPDATE: WITH, target, FROM items, SET, then the rest.
func (c *checker) updateStmt(u *pg.UpdateStmt) error {
	pop, err := c.with(u.GetWithClause())
	defer pop()
	if err != nil {
		return err
	}
	conj := conjuncts(u.GetWhereClause())
	from := u.GetFromClause()
	t, bound, err := c.target(u.GetRelation(), "UPDATE")
	if err != nil {
		return err
	}
	if bound {
		ref := tableRef{table: t, rv: u.GetRelation(), bare: len(from) == 0}
		c.targets = append(c.targets, targetFilter{conj: conj, ref: ref, what: "UPDATE ... WHERE"})
		if err := c.confined(conj, ref); err != nil {
			return refuse("UPDATE of tenant-bound table %s is not confined: %v; the rewriter must add WHERE %s.%s = '<tenant>' as a top-level conjunct",
				rvName(u.GetRelation()), err, ref.refname(), t.TenantColumn)
		}
		if err := c.tenantAssignments(u.GetTargetList(), t, true, refName(u.GetRelation())); err != nil {
			return err
		}
	} else if err := c.referenceAssignments(u.GetTargetList(), t, refName(u.GetRelation())); err != nil {
		return err // a writable global table's keys are guarded too
	}
	for _, item := range from {
		if err := c.fromItem(item, fromCtx{stmt: "UPDATE ... FROM", where: conj}); err != nil {
			return err
		}
	}
	return c.fields(u.ProtoReflect(), skipUpdate)
}

// deleteStmt checks DELETE: WITH, target, USING items, then the rest.
func (c *checker) deleteStmt(d *pg.DeleteStmt) error {
	pop, err := c.with(d.GetWithClause())
	defer pop()
	if err != nil {
		return err
	}
	conj := conjuncts(d.GetWhereClause())
	using := d.GetUsingClause()
	t, bound, err := c.target(d.GetRelation(), "DELETE")
	if err != nil {
		return err
	}
	if bound {
		ref := tableRef{table: t, rv: d.GetRelation(), bare: len(using) == 0}
		c.targets = append(c.targets, targetFilter{conj: conj, ref: ref, what: "DELETE ... WHERE"})
		if err := c.confined(conj, ref); err != nil {
			return refuse("DELETE from tenant-bound table %s is not confined: %v; the rewriter must add WHERE %s.%s = '<tenant>' as a top-level conjunct",
				rvName(d.GetRelation()), err, ref.refname(), t.TenantColumn)
		}
	}
	for _, item := range using {
		if err := c.fromItem(item, fromCtx{stmt: "DELETE ... USING", where: conj}); err != nil {
			return err
		}
	}
	return c.fields(d.ProtoReflect(), skipDelete)
}

// tenantAssignments checks the SET list of an UPDATE (or of ON CONFLICT DO
// UPDATE when constOK is false, where the tenant column may not be set at
// all): the tenant column may only get an allowed constant or a parameter.
func (c *checker) assignBinding(set []*pg.Node, t catalog.Table, constOK bool) error {
	allowed := c.allowedValues(t)
	for _, n := range set {
		rt := n.GetResTarget()
		if rt == nil {
			return refuse("SET item %s is not a column assignment", nodeName(n))
		}
		if rt.GetName() != t.TenantColumn {
			continue
		}
		switch {
		case !constOK:
			return refuse("ON CONFLICT DO UPDATE assigns tenant column %s of %s; the rewriter must refuse that", t.TenantColumn, t.QualifiedName())
		case len(rt.GetIndirection()) > 0:
			return refuse("UPDATE assigns part of tenant column %s of %s", t.TenantColumn, t.QualifiedName())
		case rt.GetVal().GetMultiAssignRef() != nil:
			return refuse("UPDATE assigns tenant column %s of %s from a row expression; assign it an allowed constant on its own", t.TenantColumn, t.QualifiedName())
		}
		if v, ok := c.constOrParam(rt.GetVal(), allowed); !ok {
			return refuse("UPDATE sets tenant column %s of %s to %s, which is not one of the session's tenants", t.TenantColumn, t.QualifiedName(), v)
		}
	}
	return nil
}
