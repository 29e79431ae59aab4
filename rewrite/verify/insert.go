package verify

import (
	pg "github.com/pganalyze/pg_query_go/v5"

	"github.com/tenantproxy/tenantproxy/catalog"
)

// insertStmt checks INSERT: WITH, target, the tenant column's values, ON
// CONFLICT, then every other field generically (the source SELECT is a query
// level of its own).
func (c *checker) insertStmt(s *pg.InsertStmt) error {
	pop, err := c.with(s.GetWithClause())
	defer pop()
	if err != nil {
		return err
	}
	t, bound, err := c.target(s.GetRelation(), "INSERT")
	if err != nil {
		return err
	}
	if bound {
		if err := c.insertValues(s, t); err != nil {
			return err
		}
		if err := c.onConflict(s, t); err != nil {
			return err
		}
	} else {
		// A writable global table's keys are guarded too.
		if err := c.referenceInserts(s, t); err != nil {
			return err
		}
		if oc := s.GetOnConflictClause(); oc.GetAction() == pg.OnConflictAction_ONCONFLICT_UPDATE {
			if err := c.referenceAssignments(oc.GetTargetList(), t, refName(s.GetRelation())); err != nil {
				return err
			}
		}
	}
	return c.fields(s.ProtoReflect(), skipInsert)
}

// insertValues checks that the tenant column is listed and gets an allowed
// constant or a parameter in every row.
func (c *checker) insertBinding(s *pg.InsertStmt, t catalog.Table) error {
	cols := s.GetCols()
	pos := -1
	for i, n := range cols {
		rt := n.GetResTarget()
		if rt == nil {
			return refuse("INSERT column list item %s is not a column", nodeName(n))
		}
		if rt.GetName() != t.TenantColumn {
			continue
		}
		if len(rt.GetIndirection()) > 0 || pos >= 0 {
			return refuse("INSERT into %s names tenant column %s more than once or in part", t.QualifiedName(), t.TenantColumn)
		}
		pos = i
	}
	if pos < 0 {
		return refuse("INSERT into tenant-bound table %s does not list tenant column %s; the rewriter must add it with the session's tenant",
			t.QualifiedName(), t.TenantColumn)
	}
	sel := s.GetSelectStmt().GetSelectStmt()
	if sel == nil {
		return refuse("INSERT into %s has no VALUES or SELECT (DEFAULT VALUES cannot carry the tenant)", t.QualifiedName())
	}
	if sel.GetOp() != pg.SetOperation_SETOP_NONE {
		return refuse("INSERT into %s from a set operation (UNION/INTERSECT/EXCEPT); the tenant column's value cannot be checked", t.QualifiedName())
	}
	allowed := c.allowedValues(t)
	check := func(items []*pg.Node, val func(*pg.Node) *pg.Node, what string) error {
		n, ok := atPosition(items, pos, len(cols), val)
		if !ok {
			return refuse("INSERT into %s: cannot tell which %s feeds tenant column %s (a * expansion or a length mismatch); "+
				"the rewriter must put the tenant value where it can be counted", t.QualifiedName(), what, t.TenantColumn)
		}
		if v, ok := c.constOrParam(n, allowed); !ok {
			return refuse("INSERT into %s sets tenant column %s to %s, which is not one of the session's tenants",
				t.QualifiedName(), t.TenantColumn, v)
		}
		return nil
	}
	return eachSourceRow(sel, check)
}

// eachSourceRow calls check for every row an INSERT's source writes: each
// VALUES row, or the single SELECT's outputs. val turns an item into the
// value it writes; what names the items, for messages.
func eachSourceRow(sel *pg.SelectStmt, check func(items []*pg.Node, val func(*pg.Node) *pg.Node, what string) error) error {
	if rows := sel.GetValuesLists(); len(rows) > 0 {
		for _, row := range rows {
			if err := check(row.GetList().GetItems(), identity, "VALUES item"); err != nil {
				return err
			}
		}
		return nil
	}
	return check(sel.GetTargetList(), func(n *pg.Node) *pg.Node { return n.GetResTarget().GetVal() }, "SELECT output")
}

func identity(n *pg.Node) *pg.Node { return n }

// atPosition finds the expression that fills column pos of ncols. Postgres
// requires an INSERT with a column list to supply exactly ncols values after
// * expansion, so the item can be found by counting from the start when no
// item before it expands, or from the end when none after it does.
func atPosition(items []*pg.Node, pos, ncols int, val func(*pg.Node) *pg.Node) (*pg.Node, bool) {
	expands := func(i int) bool { return expandsStar(val(items[i])) }
	ok := func(i int) (*pg.Node, bool) {
		if i < 0 || i >= len(items) || expands(i) {
			return nil, false
		}
		return val(items[i]), true
	}
	fromStart := true
	for i := 0; i < pos && i < len(items); i++ {
		if expands(i) {
			fromStart = false
			break
		}
	}
	if fromStart {
		return ok(pos)
	}
	i := len(items) - (ncols - pos)
	for j := i; j >= 0 && j < len(items); j++ {
		if expands(j) {
			return nil, false
		}
	}
	return ok(i)
}

// expandsStar reports whether an output expression is a * that Postgres
// expands into several columns (t.*, *, (expr).*).
func expandsStar(n *pg.Node) bool {
	var fields []*pg.Node
	switch {
	case n.GetColumnRef() != nil:
		fields = n.GetColumnRef().GetFields()
	case n.GetAIndirection() != nil:
		fields = n.GetAIndirection().GetIndirection()
	}
	for _, f := range fields {
		if f.GetAStar() != nil {
			return true
		}
	}
	return false
}

// onConflict checks ON CONFLICT DO UPDATE: its WHERE must confine the
// existing row and its SET must leave the tenant column alone.
func (c *checker) onConflict(s *pg.InsertStmt, t catalog.Table) error {
	oc := s.GetOnConflictClause()
	if oc == nil || oc.GetAction() == pg.OnConflictAction_ONCONFLICT_NOTHING {
		return nil
	}
	ref := tableRef{table: t, rv: s.GetRelation()}
	c.targets = append(c.targets, targetFilter{conj: conjuncts(oc.GetWhereClause()), ref: ref, what: "ON CONFLICT ... WHERE"})
	if err := c.confined(conjuncts(oc.GetWhereClause()), ref); err != nil {
		return refuse("ON CONFLICT DO UPDATE on %s is not confined: %v; the rewriter must add WHERE %s.%s = '<tenant>' to DO UPDATE",
			rvName(s.GetRelation()), err, ref.refname(), t.TenantColumn)
	}
	return c.tenantAssignments(oc.GetTargetList(), t, false, refName(s.GetRelation()))
}
