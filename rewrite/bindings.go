package rewrite

import (
	pg "github.com/pganalyze/pg_query_go/v5"
	"google.golang.org/protobuf/proto"

	"github.com/tenantproxy/tenantproxy/catalog"
)

// A bound table's rows belong to tenants in one of two ways. A tenant-bound
// table has one or more bindings, each a column that must hold one of the
// session's values for a claim; a path-bound table has none, and a row
// belongs to the tenant of the parent row its via column references. This
// file builds the row filter for both and applies the write rules per
// binding.

// bindingViews returns one view of a tenant-bound table per binding, with
// TenantColumn and Claim set to that binding, so the single-column rules
// apply to each dimension in turn.
func bindingViews(t catalog.Table) []catalog.Table {
	out := make([]catalog.Table, 0, len(t.Bindings))
	for _, b := range t.Bindings {
		v := t
		v.TenantColumn, v.Claim = b.Column, b.Claim
		out = append(out, v)
	}
	return out
}

// rowFilter is the condition that keeps the session's rows of bound table t
// referenced as ref: every binding's column holds a session value, or, for a
// path-bound table, the via column references a parent row that passes its
// own filter.
func (w *walker) rowFilter(ref string, t catalog.Table) *pg.Node {
	if t.Kind == catalog.PathBound {
		return w.parentIn(pg.MakeColumnRefNode([]*pg.Node{pg.MakeStrNode(ref), pg.MakeStrNode(t.Via)}, -1), t)
	}
	var preds []*pg.Node
	for _, v := range bindingViews(t) {
		vals := w.tenants(v)
		if w.err != nil {
			return nil
		}
		preds = append(preds, tenantPredicate(ref, v.TenantColumn, vals))
	}
	if len(preds) == 1 {
		return preds[0]
	}
	return pg.MakeBoolExprNode(pg.BoolExprType_AND_EXPR, preds, -1)
}

// parentIn builds expr IN (SELECT p.key FROM parent p WHERE <p's filter>).
// NULL and keys of other tenants' parents are not in the set. The catalog
// bounds the chain's length and refuses loops.
func (w *walker) parentIn(expr *pg.Node, t catalog.Table) *pg.Node {
	p, ok := w.snap.ParentOf(t)
	if !ok {
		w.fail(refusef("the parent %s of path-bound table %s is not in the catalog", t.Parent, t.QualifiedName()))
		return nil
	}
	w.note(p.QualifiedName(), "parent of path-bound %s: %s", t.QualifiedName(), w.describe(p))
	return w.keysIn(expr, p, t.ParentKey)
}

// keysIn builds expr IN (SELECT p.key FROM p WHERE <p's filter>): the keys
// of bound table p's rows the session sees.
func (w *walker) keysIn(expr *pg.Node, p catalog.Table, key string) *pg.Node {
	from, filter := w.ownRows(p, "")
	if w.err != nil {
		return nil
	}
	sub := &pg.SelectStmt{
		TargetList:  []*pg.Node{pg.MakeResTargetNodeWithVal(pg.MakeColumnRefNode([]*pg.Node{pg.MakeStrNode(p.Name), pg.MakeStrNode(key)}, -1), -1)},
		FromClause:  []*pg.Node{from},
		WhereClause: filter,
		LimitOption: pg.LimitOption_LIMIT_OPTION_DEFAULT,
		Op:          pg.SetOperation_SETOP_NONE,
	}
	return &pg.Node{Node: &pg.Node_SubLink{SubLink: &pg.SubLink{
		SubLinkType: pg.SubLinkType_ANY_SUBLINK,
		Testexpr:    expr,
		Subselect:   &pg.Node{Node: &pg.Node_SelectStmt{SelectStmt: sub}},
		Location:    -1,
	}}}
}

// ownRows returns a FROM item for bound table p that the walker leaves
// alone, and the filter that keeps the session's rows of it.
func (w *walker) ownRows(p catalog.Table, alias string) (from, filter *pg.Node) {
	w.noteTable(p)
	name := p.Name
	if alias != "" {
		name = alias
	}
	if p.Bound() { // a global table's rows are everyone's: no filter
		filter = w.rowFilter(name, p)
	}
	if w.err != nil {
		return nil, nil
	}
	rv := &pg.RangeVar{Schemaname: p.Schema, Relname: p.Name, Inh: true, Relpersistence: "p", Location: -1}
	if alias != "" {
		rv.Alias = &pg.Alias{Aliasname: alias}
	}
	if w.generated == nil {
		w.generated = map[*pg.RangeVar]bool{}
	}
	w.generated[rv] = true
	return &pg.Node{Node: &pg.Node_RangeVar{RangeVar: rv}}, filter
}

// guardSelect is (SELECT check FROM (SELECT (v)::tn AS v) AS
// tenantproxy_guard): a guard evaluates the written value once.
func guardSelect(v *pg.Node, tn *pg.TypeName, check *pg.Node) *pg.Node {
	value := &pg.SelectStmt{
		TargetList:  []*pg.Node{{Node: &pg.Node_ResTarget{ResTarget: &pg.ResTarget{Name: "v", Val: &pg.Node{Node: &pg.Node_TypeCast{TypeCast: &pg.TypeCast{Arg: v, TypeName: tn, Location: -1}}}, Location: -1}}}},
		LimitOption: pg.LimitOption_LIMIT_OPTION_DEFAULT, Op: pg.SetOperation_SETOP_NONE,
	}
	return subselect(&pg.SelectStmt{
		TargetList: []*pg.Node{pg.MakeResTargetNodeWithVal(check, -1)},
		FromClause: []*pg.Node{{Node: &pg.Node_RangeSubselect{RangeSubselect: &pg.RangeSubselect{
			Subquery: &pg.Node{Node: &pg.Node_SelectStmt{SelectStmt: value}},
			Alias:    &pg.Alias{Aliasname: guardAlias},
		}}}},
		LimitOption: pg.LimitOption_LIMIT_OPTION_DEFAULT, Op: pg.SetOperation_SETOP_NONE,
	})
}

// guardValue is tenantproxy_guard.v, the value a guard checks.
func guardValue() *pg.Node {
	return pg.MakeColumnRefNode([]*pg.Node{pg.MakeStrNode(guardAlias), pg.MakeStrNode("v")}, -1)
}

// guardAlias names the one-row derived table a parent guard reads its value
// from.
const guardAlias = "tenantproxy_guard"

// parentGuard returns what a write puts into a path-bound table's via
// column instead of v:
//
//	(SELECT CASE WHEN EXISTS (<a parent row of the session with key g.v>) THEN g.v
//	             ELSE (SELECT NULL::<type> WHERE (SELECT 'tenantproxy: ...'::text)::integer IS NULL) END
//	 FROM (SELECT (v)::<type> AS v) AS tenantproxy_guard)
//
// When the path is a foreign key of the database's, a value other than
// NULL fails with that key's violation instead (WHEN g.v IS NULL THEN
// <the refusal> ELSE <the violation, as a reference guard raises it>), as
// on the tenant's own database, which does not hold the parent.
//
// v is evaluated once. The ELSE arm fails the statement with the message
// when it is reached (Postgres evaluates a sub-select only when its value is
// needed), so a row is never attached to another tenant's parent, or to
// none.
//
// Each of conflicts, when it holds, passes the value too, after the parent
// lookup (a proposed row that ON CONFLICT does not insert; see
// conflict.go).
func (w *walker) parentGuard(v *pg.Node, t catalog.Table, verb string, conflicts ...*pg.Node) *pg.Node {
	typ := t.ColumnType(t.Via)
	if typ == "" {
		w.fail(refusef("%s of %s: the catalog does not know the type of %s; reload the catalog", verb, t.QualifiedName(), t.Via))
		return v
	}
	tn, raise := w.raiseAs(typ, "tenantproxy: "+verb+" of "+t.QualifiedName()+" must set "+t.Via+" to a row of "+t.Parent+" that belongs to your tenant")
	if w.err != nil {
		return v
	}
	p, ok := w.snap.ParentOf(t)
	if !ok {
		w.fail(refusef("the parent %s of path-bound table %s is not in the catalog", t.Parent, t.QualifiedName()))
		return v
	}
	w.note(p.QualifiedName(), "parent of path-bound %s: %s", t.QualifiedName(), w.describe(p))
	// One lookup of the key (an IN over the tenant's parent keys would
	// read them all for every write).
	in := w.keyExists([]*pg.Node{guardValue()}, p, []string{t.ParentKey})
	if w.err != nil {
		return v
	}
	check := &pg.Node{Node: &pg.Node_CaseExpr{CaseExpr: &pg.CaseExpr{
		Args:      []*pg.Node{{Node: &pg.Node_CaseWhen{CaseWhen: &pg.CaseWhen{Expr: in, Result: guardValue(), Location: -1}}}},
		Defresult: raise,
		Location:  -1,
	}}}
	for _, c := range conflicts {
		ce := check.GetCaseExpr()
		ce.Args = append(ce.Args, &pg.Node{Node: &pg.Node_CaseWhen{CaseWhen: &pg.CaseWhen{Expr: c, Result: guardValue(), Location: -1}}})
	}
	for _, r := range w.snap.References(t) {
		if r.Status != catalog.RefPath {
			continue
		}
		// The path is a foreign key too: a parent that is not the
		// tenant's fails as on its own database, where it does not
		// exist (23503); NULL, a row of no tenant, with the refusal.
		_, fk := w.fkRaise(typ, t, r, []*pg.Node{guardValue()})
		if w.err != nil {
			return v
		}
		isNull := &pg.Node{Node: &pg.Node_NullTest{NullTest: &pg.NullTest{Arg: guardValue(), Nulltesttype: pg.NullTestType_IS_NULL, Location: -1}}}
		ce := check.GetCaseExpr()
		ce.Args = append(ce.Args, &pg.Node{Node: &pg.Node_CaseWhen{CaseWhen: &pg.CaseWhen{Expr: isNull, Result: raise, Location: -1}}})
		ce.Defresult = fk
	}
	return guardSelect(v, tn, check)
}

// feeding returns the expressions of an INSERT's source that feed column
// idx of ncols, one per VALUES row or the single SELECT's; ok is false
// when a row does not show it (a * expansion, too few values), setOp when
// the source is a UNION, INTERSECT or EXCEPT.
func feeding(sel *pg.SelectStmt, idx, ncols int) (items []*pg.Node, ok, setOp bool) {
	switch {
	case len(sel.GetValuesLists()) > 0:
		for _, row := range sel.GetValuesLists() {
			item, ok := tenantItem(row.GetList().GetItems(), idx, ncols)
			if !ok {
				return nil, false, false
			}
			items = append(items, item)
		}
		return items, true, false
	case sel.GetOp() == pg.SetOperation_SETOP_NONE:
		vals := make([]*pg.Node, len(sel.GetTargetList()))
		for i, rt := range sel.GetTargetList() {
			vals[i] = rt.GetResTarget().GetVal()
		}
		item, ok := tenantItem(vals, idx, ncols)
		return []*pg.Node{item}, ok, false
	}
	return nil, false, true
}

// subselect wraps a SELECT as a scalar sub-select expression.
func subselect(s *pg.SelectStmt) *pg.Node {
	return &pg.Node{Node: &pg.Node_SubLink{SubLink: &pg.SubLink{
		SubLinkType: pg.SubLinkType_EXPR_SUBLINK,
		Subselect:   &pg.Node{Node: &pg.Node_SelectStmt{SelectStmt: s}},
		Location:    -1,
	}}}
}

// raiseAs parses typ and builds (SELECT NULL::typ WHERE (SELECT msg::text)::integer IS NULL),
// which fails with msg in the error when Postgres evaluates it.
func (w *walker) raiseAs(typ, msg string) (*pg.TypeName, *pg.Node) {
	tree, err := pg.Parse("SELECT (SELECT NULL::" + typ + " WHERE (SELECT ''::text)::integer IS NULL)")
	if err != nil || len(tree.GetStmts()) != 1 {
		w.fail(refusef("column type %q cannot be written back: %v", typ, err))
		return nil, nil
	}
	sub := tree.GetStmts()[0].GetStmt().GetSelectStmt().GetTargetList()[0].GetResTarget().GetVal()
	sel := sub.GetSubLink().GetSubselect().GetSelectStmt()
	inner := sel.GetWhereClause().GetNullTest().GetArg().GetTypeCast().GetArg()
	inner.GetSubLink().GetSubselect().GetSelectStmt().GetTargetList()[0].GetResTarget().GetVal().GetTypeCast().GetArg().GetAConst().Val =
		&pg.A_Const_Sval{Sval: &pg.String{Sval: msg}}
	tn := proto.Clone(sel.GetTargetList()[0].GetResTarget().GetVal().GetTypeCast().GetTypeName()).(*pg.TypeName)
	return tn, sub
}

// assignments checks the SET list of an UPDATE or MERGE ... UPDATE: no
// binding column may move a row to another tenant, and a path-bound row may
// only move to a parent of the session's tenant.
func (w *walker) assignments(set []*pg.Node, t catalog.Table, verb, self string) {
	if t.Kind == catalog.PathBound {
		for _, n := range set {
			if rt := n.GetResTarget(); rt.GetName() == t.Via {
				if len(rt.GetIndirection()) > 0 || rt.GetVal().GetMultiAssignRef() != nil {
					w.fail(refuseHint("set the column on its own", "%s may not change %s this way", verb, t.Via))
					return
				}
				rt.Val = w.parentGuard(rt.GetVal(), t, verb)
			}
		}
		w.assignReferences(set, t, verb, self)
		return
	}
	for _, v := range bindingViews(t) {
		w.assignBinding(set, v, verb)
	}
	if w.err == nil {
		w.assignReferences(set, t, verb, self)
	}
}

// conflictAssignments applies the ON CONFLICT DO UPDATE rules per binding.
func (w *walker) conflictAssignments(oc *pg.OnConflictClause, t catalog.Table, self string) {
	if t.Kind == catalog.PathBound {
		w.assignments(oc.GetTargetList(), t, "ON CONFLICT DO UPDATE", self)
		return
	}
	for _, v := range bindingViews(t) {
		w.conflictBinding(oc, v)
	}
	if w.err == nil {
		w.assignReferences(oc.GetTargetList(), t, "ON CONFLICT DO UPDATE", self)
	}
}

// insertTenant makes every row inserted into a bound table carry the
// session's tenant: per binding for a tenant-bound table; through a guarded
// via column for a path-bound one.
func (w *walker) insertTenant(ins *pg.InsertStmt, t catalog.Table) {
	if t.Kind == catalog.PathBound {
		w.insertPath(ins, t)
		return
	}
	for _, v := range bindingViews(t) {
		if w.insertBinding(ins, v); w.err != nil {
			return
		}
	}
}

// insertPath guards the via column of every row inserted into a path-bound
// table. The column must be listed: its value decides the row's tenant.
func (w *walker) insertPath(ins *pg.InsertStmt, t catalog.Table) {
	sel := ins.GetSelectStmt().GetSelectStmt()
	hint := "name " + t.Via + " in the column list and give it a key of a " + t.Parent + " row of your tenant"
	if sel == nil {
		w.fail(refuseHint(hint, "INSERT into path-bound table %s must set %s", t.QualifiedName(), t.Via))
		return
	}
	if len(ins.GetCols()) == 0 {
		w.expandColumns(ins, sel, t)
		if w.err != nil {
			return
		}
	}
	idx := -1
	for i, c := range ins.GetCols() {
		if rt := c.GetResTarget(); rt.GetName() == t.Via && len(rt.GetIndirection()) == 0 {
			idx = i
		}
	}
	if idx < 0 {
		w.fail(refuseHint(hint, "INSERT into path-bound table %s must set %s: it decides the row's tenant", t.QualifiedName(), t.Via))
		return
	}
	items, ok, setOp := feeding(sel, idx, len(ins.GetCols()))
	switch {
	case setOp:
		w.fail(refuseHint("insert from a single SELECT or VALUES", "INSERT into path-bound table %s from UNION, INTERSECT or EXCEPT is not supported", t.QualifiedName()))
		return
	case !ok:
		w.fail(refuseHint(hint, "INSERT does not show which value goes into %s", t.Via))
		return
	}
	// A proposed row of ON CONFLICT that one of the session's rows matches
	// on an arbiter key is not inserted (see conflict.go).
	rows := w.proposedRows(ins, t, sel)
	for row, item := range items {
		arms := rows.arms(w, row, t.Via)
		// The guard holds the value; the item becomes the guard.
		guarded := w.parentGuard(proto.Clone(item).(*pg.Node), t, "INSERT", arms...)
		item.Node = guarded.Node
	}
}
