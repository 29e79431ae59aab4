package rewrite

import (
	pg "github.com/pganalyze/pg_query_go/v5"
	"github.com/tenantproxy/tenantproxy/catalog"
)

// mergeStmt confines a MERGE. The tenant predicate joins the ON condition,
// so only the session's rows of the target can be MATCHED (updated or
// deleted); every other row of the target is invisible to the merge, as on a
// database of its own. WHEN NOT MATCHED ... INSERT gets the same treatment
// as INSERT: the tenant column is filled in or checked. The source is a
// read.
func (w *walker) mergeStmt(m *pg.MergeStmt) {
	pop := w.with(m.GetWithClause())
	defer pop()
	t, bound := w.target(m.GetRelation(), "MERGE")
	if w.err != nil {
		return
	}
	m.SourceRelation = w.fromItem(m.GetSourceRelation())
	w.expr(m.GetJoinCondition())
	for _, n := range m.GetMergeWhenClauses() {
		wc := n.GetMergeWhenClause()
		if wc == nil {
			w.fail(refusef("unsupported MERGE item %s", nodeKind(n)))
			return
		}
		w.expr(wc.GetCondition())
		if bound || keyed(t) {
			w.mergeAction(wc, t, refName(m.GetRelation()), bound)
		}
		w.exprs(wc.GetTargetList())
		w.exprs(wc.GetValues())
		if w.err != nil {
			return
		}
	}
	if bound && w.err == nil {
		filter := func() *pg.Node { return w.rowFilter(refName(m.GetRelation()), t) }
		m.JoinCondition = confine(w.guarded(m.GetJoinCondition(), filter), filter())
	}
}

// mergeAction applies the write rules to one WHEN clause of a MERGE into a
// tenant-bound table (bound), or the reference guards alone into a keyed
// global one.
func (w *walker) mergeAction(wc *pg.MergeWhenClause, t catalog.Table, self string, bound bool) {
	switch wc.GetCommandType() {
	case pg.CmdType_CMD_UPDATE:
		if !bound {
			w.assignReferences(wc.GetTargetList(), t, "MERGE ... UPDATE", self)
			return
		}
		w.assignments(wc.GetTargetList(), t, "MERGE ... UPDATE", self)
	case pg.CmdType_CMD_INSERT:
		// Borrow INSERT's rules on a one-row INSERT of the same columns.
		ins := &pg.InsertStmt{Cols: wc.GetTargetList()}
		if len(wc.GetValues()) > 0 {
			ins.SelectStmt = &pg.Node{Node: &pg.Node_SelectStmt{SelectStmt: &pg.SelectStmt{
				ValuesLists: []*pg.Node{pg.MakeListNode(wc.GetValues())},
				LimitOption: pg.LimitOption_LIMIT_OPTION_DEFAULT, Op: pg.SetOperation_SETOP_NONE,
			}}}
		}
		if bound {
			if w.insertTenant(ins, t); w.err != nil {
				return
			}
		}
		if w.insertReferences(ins, t, "MERGE ... INSERT"); w.err != nil {
			return
		}
		wc.TargetList = ins.GetCols()
		if rows := ins.GetSelectStmt().GetSelectStmt().GetValuesLists(); len(rows) == 1 {
			wc.Values = rows[0].GetList().GetItems()
		}
	case pg.CmdType_CMD_DELETE, pg.CmdType_CMD_NOTHING:
	default:
		w.fail(refusef("unsupported MERGE action %s", wc.GetCommandType()))
	}
}
