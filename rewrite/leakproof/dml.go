package leakproof

import (
	pg "github.com/pganalyze/pg_query_go/v5"
)

// target makes a statement's target table an item of l. It never moves
// filters: a conjunct on the target stays where the statement has it.
func (s *scanner) target(rv *pg.RangeVar, l *level) *item {
	it := s.tableItem(rv, l)
	it.rv = nil // not a FROM item: nothing moves into it
	l.items = append(l.items, it)
	return it
}

func (s *scanner) results(list []*pg.Node, l *level) {
	for _, n := range list {
		s.root(n, l)
	}
}

func (s *scanner) updateStmt(u *pg.UpdateStmt, parent *level) {
	l := newLevel(parent)
	s.with(u.GetWithClause(), l)
	s.target(u.GetRelation(), l)
	nonNull := s.fromList(u.GetFromClause(), l)
	s.results(u.GetTargetList(), l)
	s.conjuncts(u.GetWhereClause(), l, nonNull)
	s.results(u.GetReturningList(), l)
}

func (s *scanner) deleteStmt(d *pg.DeleteStmt, parent *level) {
	l := newLevel(parent)
	s.with(d.GetWithClause(), l)
	s.target(d.GetRelation(), l)
	s.conjuncts(d.GetWhereClause(), l, s.fromList(d.GetUsingClause(), l))
	s.results(d.GetReturningList(), l)
}

func (s *scanner) insertStmt(ins *pg.InsertStmt, parent *level) {
	l := newLevel(parent)
	s.with(ins.GetWithClause(), l)
	if sel := ins.GetSelectStmt(); sel != nil {
		// The source does not see the target.
		s.statement(sel, &level{parent: parent, ctes: l.cteNames()})
	}
	t := s.target(ins.GetRelation(), l)
	if oc := ins.GetOnConflictClause(); oc != nil {
		excluded := &item{name: "excluded", cols: t.cols}
		ocl := &level{items: []*item{t, excluded}, parent: parent, ctes: l.ctes}
		for _, e := range oc.GetInfer().GetIndexElems() {
			s.root(e.GetIndexElem().GetExpr(), ocl)
		}
		s.root(oc.GetInfer().GetWhereClause(), ocl)
		s.results(oc.GetTargetList(), ocl)
		s.conjuncts(oc.GetWhereClause(), ocl, nil)
	}
	s.results(ins.GetReturningList(), l)
}

func (s *scanner) mergeStmt(m *pg.MergeStmt, parent *level) {
	l := newLevel(parent)
	s.with(m.GetWithClause(), l)
	s.target(m.GetRelation(), l)
	s.fromItem(m.GetSourceRelation(), l)
	// A source row failing ON is "not matched", so nothing moves.
	s.conjuncts(m.GetJoinCondition(), l, nil)
	for _, w := range m.GetMergeWhenClauses() {
		wc := w.GetMergeWhenClause()
		s.root(wc.GetCondition(), l)
		s.results(wc.GetTargetList(), l)
		for _, v := range wc.GetValues() {
			s.root(v, l)
		}
	}
}
