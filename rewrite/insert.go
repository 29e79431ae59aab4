package rewrite

import (
	"slices"

	pg "github.com/pganalyze/pg_query_go/v5"
	"github.com/tenantproxy/tenantproxy/catalog"
)

// insertStmt rewrites an INSERT: the target is qualified, every new row of a
// tenant-bound table gets (or is checked to carry) one of the session's
// tenants, the source is scoped as a read, and ON CONFLICT DO UPDATE never
// touches another tenant's row.
func (w *walker) insertStmt(ins *pg.InsertStmt) {
	pop := w.with(ins.GetWithClause())
	defer pop()
	t, bound := w.target(ins.GetRelation(), "INSERT")
	if w.err != nil {
		return
	}
	if bound {
		w.insertTenant(ins, t)
		if w.err != nil {
			return
		}
	}
	if bound || keyed(t) {
		if w.insertReferences(ins, t, "INSERT"); w.err != nil {
			return
		}
	}
	w.exprs(ins.GetCols())
	w.statement(ins.GetSelectStmt(), "INSERT")
	if oc := ins.GetOnConflictClause(); oc != nil {
		w.exprs(oc.GetInfer().GetIndexElems())
		w.expr(oc.GetInfer().GetWhereClause())
		switch {
		case oc.GetAction() != pg.OnConflictAction_ONCONFLICT_UPDATE:
		case bound:
			w.conflictAssignments(oc, t, refName(ins.GetRelation()))
		case keyed(t):
			w.assignReferences(oc.GetTargetList(), t, "ON CONFLICT DO UPDATE", refName(ins.GetRelation()))
		}
		w.exprs(oc.GetTargetList())
		w.expr(oc.GetWhereClause())
		if bound && oc.GetAction() == pg.OnConflictAction_ONCONFLICT_UPDATE && w.err == nil {
			// The conflicting row may belong to another tenant (the unique
			// key spans tenants): it must never be updated or returned.
			filter := func() *pg.Node { return w.rowFilter(refName(ins.GetRelation()), t) }
			oc.WhereClause = confine(w.guarded(oc.GetWhereClause(), filter), filter())
		}
	}
	w.exprs(ins.GetReturningList())
}

// conflictAssignments checks the SET list of ON CONFLICT DO UPDATE. The row
// being updated already belongs to the session's tenant (the WHERE added by
// insertStmt), so assigning the tenant column can only move it. With a
// single tenant, "tenant_col = EXCLUDED.tenant_col" (what ORMs emit for an
// upsert of every column) and "tenant_col = '<own tenant>'" leave the value
// unchanged and are dropped; anything else is refused.
func (w *walker) conflictBinding(oc *pg.OnConflictClause, t catalog.Table) {
	vals := w.tenants(t)
	if w.err != nil {
		return
	}
	kept := oc.GetTargetList()[:0:0]
	for _, n := range oc.GetTargetList() {
		rt := n.GetResTarget()
		if rt.GetName() != t.TenantColumn {
			kept = append(kept, n)
			continue
		}
		if len(rt.GetIndirection()) > 0 || rt.GetVal().GetMultiAssignRef() != nil {
			w.fail(refuseHint("leave the tenant column out of DO UPDATE SET", "ON CONFLICT DO UPDATE may not change the tenant column %s", t.TenantColumn))
			return
		}
		if len(vals) != 1 || !(isExcludedColumn(rt.GetVal(), t.TenantColumn) || w.constantIn(rt.GetVal(), vals)) {
			w.fail(refuseHint("leave the tenant column out of DO UPDATE SET: a row never changes tenant",
				"ON CONFLICT DO UPDATE may not change the tenant column %s", t.TenantColumn))
			return
		}
	}
	if len(kept) == 0 {
		w.fail(refuseHint("use ON CONFLICT DO NOTHING, or set another column",
			"ON CONFLICT DO UPDATE sets only the tenant column %s", t.TenantColumn))
		return
	}
	oc.TargetList = kept
}

// isExcludedColumn reports whether n is EXCLUDED.col.
func isExcludedColumn(n *pg.Node, col string) bool {
	f := n.GetColumnRef().GetFields()
	return len(f) == 2 && f[0].GetString_().GetSval() == "excluded" && f[1].GetString_().GetSval() == col
}

// constantIn reports whether n is a string or integer constant whose text is
// one of vals.
func (w *walker) constantIn(n *pg.Node, vals []string) bool {
	s, ok := w.constantText(n.GetAConst())
	return ok && slices.Contains(vals, s)
}

// insertTenant makes sure every inserted row carries one of the session's
// tenants: filled in when the column list omits the tenant column, checked
// when it names it.
func (w *walker) insertBinding(ins *pg.InsertStmt, t catalog.Table) {
	sel := ins.GetSelectStmt().GetSelectStmt()
	if ins.GetSelectStmt() != nil && sel == nil {
		w.fail(refusef("unsupported INSERT source %s", nodeKind(ins.GetSelectStmt())))
		return
	}
	if len(ins.GetCols()) == 0 && sel != nil {
		w.expandColumns(ins, sel, t)
		if w.err != nil {
			return
		}
	}
	idx := -1
	for i, c := range ins.GetCols() {
		rt := c.GetResTarget()
		if rt.GetName() == t.TenantColumn {
			if len(rt.GetIndirection()) > 0 {
				w.fail(refusef("INSERT may not set part of the tenant column %s", t.TenantColumn))
				return
			}
			idx = i
		}
	}
	if idx < 0 {
		w.fillTenant(ins, sel, t)
		return
	}
	ncols := len(ins.GetCols())
	const unclear = "INSERT does not show which value goes into the tenant column %s (a * expansion, or fewer values than columns)"
	hint := "leave the tenant column out of the column list (the proxy fills it), or list the columns the * stands for"
	switch {
	case sel == nil:
		w.fail(refusef("INSERT ... DEFAULT VALUES cannot name the tenant column"))
	case len(sel.GetValuesLists()) > 0:
		for _, row := range sel.GetValuesLists() {
			item, ok := tenantItem(row.GetList().GetItems(), idx, ncols)
			if !ok {
				w.fail(refuseHint(hint, unclear, t.TenantColumn))
				return
			}
			w.tenantValue(item, t, "INSERT")
		}
	case sel.GetOp() == pg.SetOperation_SETOP_NONE:
		vals := make([]*pg.Node, len(sel.GetTargetList()))
		for i, rt := range sel.GetTargetList() {
			vals[i] = rt.GetResTarget().GetVal()
		}
		item, ok := tenantItem(vals, idx, ncols)
		if !ok {
			w.fail(refuseHint(hint, unclear, t.TenantColumn))
			return
		}
		w.tenantValue(item, t, "INSERT")
	default:
		w.fail(refuseHint("leave the tenant column out of the column list: the proxy fills it",
			"INSERT ... SELECT with UNION, INTERSECT or EXCEPT must leave the tenant column %s out", t.TenantColumn))
	}
}

// tenantItem finds the value that goes into column idx of ncols listed
// columns. A * item (t.*, (expr).*) expands to several values, and Postgres
// requires exactly ncols values after expansion, so the value can be found
// counting from the start when no * comes before it, or counting from the
// end when none comes at or after it. Otherwise it cannot be known here.
func tenantItem(items []*pg.Node, idx, ncols int) (*pg.Node, bool) {
	at := func(i int) (*pg.Node, bool) {
		if i < 0 || i >= len(items) || expands(items[i]) {
			return nil, false
		}
		return items[i], true
	}
	if !slices.ContainsFunc(items[:min(idx, len(items))], expands) {
		return at(idx)
	}
	i := len(items) - (ncols - idx)
	if i < 0 || slices.ContainsFunc(items[i:], expands) {
		return nil, false
	}
	return at(i)
}

// expands reports whether a VALUES item or SELECT output is a * that
// Postgres expands into several values.
func expands(n *pg.Node) bool {
	var fields []*pg.Node
	switch {
	case n.GetColumnRef() != nil:
		fields = n.GetColumnRef().GetFields()
	case n.GetAIndirection() != nil:
		fields = n.GetAIndirection().GetIndirection()
	}
	return slices.ContainsFunc(fields, func(f *pg.Node) bool { return f.GetAStar() != nil })
}

// fillTenant adds the tenant column and the session's tenant to every row.
// The value goes last, after any * expansion: Postgres matches values to
// listed columns one to one, so the last value fills the last column.
func (w *walker) fillTenant(ins *pg.InsertStmt, sel *pg.SelectStmt, t catalog.Table) {
	vals := w.tenants(t)
	if w.err != nil {
		return
	}
	if len(vals) != 1 {
		w.fail(refuseHint("name the tenant column and give one of the token's tenants",
			"the token covers several tenants, so INSERT into %s must name the tenant column %s", t.QualifiedName(), t.TenantColumn))
		return
	}
	lit := func() *pg.Node { return pg.MakeAConstStrNode(vals[0], -1) }
	ins.Cols = append(ins.Cols, pg.MakeResTargetNodeWithName(t.TenantColumn, -1))
	switch {
	case sel == nil: // DEFAULT VALUES
		ins.SelectStmt = &pg.Node{Node: &pg.Node_SelectStmt{SelectStmt: &pg.SelectStmt{
			ValuesLists: []*pg.Node{pg.MakeListNode([]*pg.Node{lit()})},
			LimitOption: pg.LimitOption_LIMIT_OPTION_DEFAULT, Op: pg.SetOperation_SETOP_NONE,
		}}}
	case len(sel.GetValuesLists()) > 0 && sel.GetSortClause() == nil && sel.GetLimitCount() == nil && sel.GetLimitOffset() == nil:
		for _, row := range sel.GetValuesLists() {
			l := row.GetList()
			l.Items = append(l.Items, lit())
		}
	case sel.GetOp() == pg.SetOperation_SETOP_NONE && len(sel.GetValuesLists()) == 0:
		sel.TargetList = append(sel.TargetList, pg.MakeResTargetNodeWithVal(lit(), -1))
	default:
		// A set operation, or VALUES with ORDER BY/LIMIT: wrap it as
		// SELECT *, '42' FROM (<source>) AS tenantproxy_source.
		wrapped := &pg.SelectStmt{
			TargetList: []*pg.Node{
				pg.MakeResTargetNodeWithVal(pg.MakeColumnRefNode([]*pg.Node{pg.MakeAStarNode()}, -1), -1),
				pg.MakeResTargetNodeWithVal(lit(), -1),
			},
			FromClause: []*pg.Node{{Node: &pg.Node_RangeSubselect{RangeSubselect: &pg.RangeSubselect{
				Subquery: &pg.Node{Node: &pg.Node_SelectStmt{SelectStmt: sel}},
				Alias:    &pg.Alias{Aliasname: "tenantproxy_source"},
			}}}},
			LimitOption: pg.LimitOption_LIMIT_OPTION_DEFAULT, Op: pg.SetOperation_SETOP_NONE,
		}
		if sel.WithClause != nil { // keep WITH outermost so its names stay visible
			wrapped.WithClause, sel.WithClause = sel.WithClause, nil
		}
		ins.SelectStmt = &pg.Node{Node: &pg.Node_SelectStmt{SelectStmt: wrapped}}
	}
}

// expandColumns gives an INSERT without a column list the table's first N
// columns, N being the number of values per row, as Postgres does.
func (w *walker) expandColumns(ins *pg.InsertStmt, sel *pg.SelectStmt, t catalog.Table) {
	listHint := "list the columns: INSERT INTO t (a, b) VALUES ... or INSERT INTO t (a, b) SELECT ..."
	n := 0
	switch {
	case len(sel.GetValuesLists()) > 0:
		for _, row := range sel.GetValuesLists() {
			items := row.GetList().GetItems()
			if slices.ContainsFunc(items, expands) {
				w.fail(refuseHint(listHint, "INSERT into %s without a column list cannot use * in VALUES", t.QualifiedName()))
				return
			}
			n = max(n, len(items))
		}
	case sel.GetOp() == pg.SetOperation_SETOP_NONE:
		for _, rt := range sel.GetTargetList() {
			if expands(rt.GetResTarget().GetVal()) {
				w.fail(refuseHint(listHint, "INSERT into %s without a column list needs a select list without *", t.QualifiedName()))
				return
			}
		}
		n = len(sel.GetTargetList())
	default:
		w.fail(refuseHint(listHint, "INSERT into %s without a column list cannot take a UNION, INTERSECT or EXCEPT", t.QualifiedName()))
		return
	}
	if len(t.Columns) == 0 {
		w.fail(refuseHint(listHint, "INSERT into %s without a column list: the catalog does not know its columns", t.QualifiedName()))
		return
	}
	if n > len(t.Columns) {
		w.fail(refuseHint(listHint, "INSERT has more expressions than %s has columns in the catalog", t.QualifiedName()))
		return
	}
	for _, c := range t.Columns[:n] {
		ins.Cols = append(ins.Cols, pg.MakeResTargetNodeWithName(c.Name, -1))
	}
}
