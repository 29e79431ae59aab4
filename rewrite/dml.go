package rewrite

import (
	"slices"
	"strconv"

	pg "github.com/pganalyze/pg_query_go/v5"
	"github.com/tenantproxy/tenantproxy/catalog"
)

// target resolves the table an INSERT, UPDATE or DELETE writes and qualifies
// it. bound reports a tenant-bound table (which needs the caller's rules).
func (w *walker) target(rv *pg.RangeVar, verb string) (t catalog.Table, bound bool) {
	t, ok := w.resolve(rv)
	if !ok {
		return t, false
	}
	w.changed = true
	rv.Schemaname, rv.Relname = t.Schema, t.Name
	switch t.Kind {
	case catalog.Global:
		if !t.Writable {
			w.fail(refuseHint("mark it writable in the catalog if tenants may change it",
				"%s on global table %s is not allowed: it is read-only for tenants", verb, t.QualifiedName()))
		}
		return t, false
	case catalog.TenantBound:
		w.noteTable(t)
		return t, true
	}
	w.fail(refusef("table %s has an unknown kind in the catalog", t.QualifiedName()))
	return t, false
}

// refName is how a write target's columns are qualified: its alias, else its name.
func refName(rv *pg.RangeVar) string {
	if a := rv.GetAlias().GetAliasname(); a != "" {
		return a
	}
	return rv.GetRelname()
}

func (w *walker) updateStmt(u *pg.UpdateStmt) {
	pop := w.with(u.GetWithClause())
	defer pop()
	t, bound := w.target(u.GetRelation(), "UPDATE")
	if w.err != nil {
		return
	}
	w.fromList(u.GetFromClause())
	if bound {
		w.assignments(u.GetTargetList(), t, "UPDATE")
	}
	w.exprs(u.GetTargetList())
	w.expr(u.GetWhereClause())
	w.exprs(u.GetReturningList())
	if bound && w.err == nil {
		u.WhereClause = and(u.GetWhereClause(), tenantPredicate(refName(u.GetRelation()), t.TenantColumn, w.tenants(t)))
	}
}

func (w *walker) deleteStmt(d *pg.DeleteStmt) {
	pop := w.with(d.GetWithClause())
	defer pop()
	t, bound := w.target(d.GetRelation(), "DELETE")
	if w.err != nil {
		return
	}
	w.fromList(d.GetUsingClause())
	w.expr(d.GetWhereClause())
	w.exprs(d.GetReturningList())
	if bound && w.err == nil {
		d.WhereClause = and(d.GetWhereClause(), tenantPredicate(refName(d.GetRelation()), t.TenantColumn, w.tenants(t)))
	}
}

// assignments checks the SET list of an UPDATE or ON CONFLICT DO UPDATE: the
// tenant column may only be set to one of the session's tenants.
func (w *walker) assignments(set []*pg.Node, t catalog.Table, verb string) {
	for _, n := range set {
		rt := n.GetResTarget()
		if rt.GetName() != t.TenantColumn {
			continue
		}
		if len(rt.GetIndirection()) > 0 || rt.GetVal().GetMultiAssignRef() != nil {
			w.fail(refuseHint("set the tenant column on its own, to your tenant", "%s may not change the tenant column %s this way", verb, t.TenantColumn))
			return
		}
		w.tenantValue(rt.GetVal(), t, verb)
	}
}

// tenantValue checks a value written to the tenant column: a constant naming
// one of the session's tenants (normalised to a string literal) or a bare
// parameter, checked when it is bound.
func (w *walker) tenantValue(v *pg.Node, t catalog.Table, verb string) {
	vals := w.tenants(t)
	if w.err != nil {
		return
	}
	if p := v.GetParamRef(); p != nil {
		w.params = append(w.params, ParamCheck{Index: int(p.GetNumber()), Claim: t.Claim, Type: columnType(t, t.TenantColumn)})
		return
	}
	if c := v.GetAConst(); c != nil && !c.GetIsnull() {
		var s string
		switch {
		case c.GetSval() != nil:
			s = c.GetSval().GetSval()
		case c.GetIval() != nil:
			s = strconv.FormatInt(int64(c.GetIval().GetIval()), 10)
		case c.GetFval() != nil:
			s = c.GetFval().GetFval()
		default:
			w.fail(refusef("%s sets the tenant column %s to an unsupported constant", verb, t.TenantColumn))
			return
		}
		if !slices.Contains(vals, s) {
			w.fail(refuseHint("a session may only write rows of the tenants in its token",
				"%s names tenant %q in column %s, but the token is for tenant %s", verb, s, t.TenantColumn, quoteList(vals)))
			return
		}
		v.Node = &pg.Node_AConst{AConst: &pg.A_Const{Val: &pg.A_Const_Sval{Sval: &pg.String{Sval: s}}, Location: -1}}
		return
	}
	w.fail(refuseHint("leave the tenant column out (the proxy fills it) or give your tenant as a constant or a parameter",
		"%s must set the tenant column %s to a constant or a parameter", verb, t.TenantColumn))
}

func columnType(t catalog.Table, col string) string {
	for _, c := range t.Columns {
		if c.Name == col {
			return c.Type
		}
	}
	return ""
}

func quoteList(vals []string) string {
	if len(vals) == 1 {
		return strconv.Quote(vals[0])
	}
	out := ""
	for i, v := range vals {
		if i > 0 {
			out += ", "
		}
		out += strconv.Quote(v)
	}
	return "one of " + out
}

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
	w.exprs(ins.GetCols())
	w.statement(ins.GetSelectStmt(), "INSERT")
	if oc := ins.GetOnConflictClause(); oc != nil {
		w.exprs(oc.GetInfer().GetIndexElems())
		w.expr(oc.GetInfer().GetWhereClause())
		if bound {
			w.assignments(oc.GetTargetList(), t, "ON CONFLICT DO UPDATE")
		}
		w.exprs(oc.GetTargetList())
		w.expr(oc.GetWhereClause())
		if bound && oc.GetAction() == pg.OnConflictAction_ONCONFLICT_UPDATE && w.err == nil {
			// A conflicting row of another tenant must never be updated.
			oc.WhereClause = and(oc.GetWhereClause(), tenantPredicate(refName(ins.GetRelation()), t.TenantColumn, w.tenants(t)))
		}
	}
	w.exprs(ins.GetReturningList())
}

// insertTenant makes sure every inserted row carries one of the session's
// tenants: filled in when the column list omits the tenant column, checked
// when it names it.
func (w *walker) insertTenant(ins *pg.InsertStmt, t catalog.Table) {
	sel := ins.GetSelectStmt().GetSelectStmt()
	if ins.GetSelectStmt() != nil && sel == nil {
		w.fail(refusef("unsupported INSERT source"))
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
	switch {
	case sel == nil:
		w.fail(refusef("INSERT ... DEFAULT VALUES cannot name the tenant column"))
	case len(sel.GetValuesLists()) > 0:
		for _, row := range sel.GetValuesLists() {
			items := row.GetList().GetItems()
			if idx >= len(items) {
				w.fail(refusef("INSERT has fewer values than columns"))
				return
			}
			w.tenantValue(items[idx], t, "INSERT")
		}
	case sel.GetOp() == pg.SetOperation_SETOP_NONE && !hasStar(sel.GetTargetList()) && idx < len(sel.GetTargetList()):
		w.tenantValue(sel.GetTargetList()[idx].GetResTarget().GetVal(), t, "INSERT")
	case sel.GetOp() == pg.SetOperation_SETOP_NONE && idx == len(ins.GetCols())-1 && len(sel.GetTargetList()) > 0 && !hasStar(sel.GetTargetList()[len(sel.GetTargetList())-1:]):
		// SELECT *, '42' FROM ...: Postgres requires as many values as
		// columns, so the last value is the tenant column's.
		tl := sel.GetTargetList()
		w.tenantValue(tl[len(tl)-1].GetResTarget().GetVal(), t, "INSERT")
	default:
		w.fail(refuseHint("leave the tenant column out of the column list: the proxy fills it",
			"INSERT ... SELECT must give the tenant column %s as a constant or a parameter", t.TenantColumn))
	}
}

// fillTenant adds the tenant column and the session's tenant to every row.
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
		// A set operation or a VALUES with ORDER BY/LIMIT: wrap it.
		inner := &pg.SelectStmt{}
		*inner = *sel
		wrapped := &pg.SelectStmt{
			TargetList: []*pg.Node{
				pg.MakeResTargetNodeWithVal(pg.MakeColumnRefNode([]*pg.Node{pg.MakeAStarNode()}, -1), -1),
				pg.MakeResTargetNodeWithVal(lit(), -1),
			},
			FromClause: []*pg.Node{{Node: &pg.Node_RangeSubselect{RangeSubselect: &pg.RangeSubselect{
				Subquery: &pg.Node{Node: &pg.Node_SelectStmt{SelectStmt: inner}},
				Alias:    &pg.Alias{Aliasname: "tenantproxy_source"},
			}}}},
			LimitOption: pg.LimitOption_LIMIT_OPTION_DEFAULT, Op: pg.SetOperation_SETOP_NONE,
		}
		if inner.WithClause != nil { // keep WITH outermost so its names stay visible
			wrapped.WithClause, inner.WithClause = inner.WithClause, nil
		}
		ins.SelectStmt = &pg.Node{Node: &pg.Node_SelectStmt{SelectStmt: wrapped}}
	}
}

// expandColumns gives an INSERT without a column list the table's first N
// columns, N being the number of values per row, as Postgres does.
func (w *walker) expandColumns(ins *pg.InsertStmt, sel *pg.SelectStmt, t catalog.Table) {
	n := 0
	switch {
	case len(sel.GetValuesLists()) > 0:
		for _, row := range sel.GetValuesLists() {
			n = max(n, len(row.GetList().GetItems()))
		}
	case sel.GetOp() == pg.SetOperation_SETOP_NONE && !hasStar(sel.GetTargetList()):
		n = len(sel.GetTargetList())
	default:
		w.fail(refuseHint("list the columns: INSERT INTO t (a, b) SELECT ...", "INSERT into %s without a column list needs a select list without *", t.QualifiedName()))
		return
	}
	if len(t.Columns) == 0 {
		w.fail(refuseHint("list the columns: INSERT INTO t (a, b) VALUES ...", "INSERT into %s without a column list: the catalog does not know its columns", t.QualifiedName()))
		return
	}
	if n > len(t.Columns) {
		w.fail(refusef("INSERT has more expressions than %s has columns", t.QualifiedName()))
		return
	}
	for _, c := range t.Columns[:n] {
		ins.Cols = append(ins.Cols, pg.MakeResTargetNodeWithName(c.Name, -1))
	}
}

func hasStar(targets []*pg.Node) bool {
	for _, n := range targets {
		for _, f := range n.GetResTarget().GetVal().GetColumnRef().GetFields() {
			if f.GetAStar() != nil {
				return true
			}
		}
	}
	return false
}
