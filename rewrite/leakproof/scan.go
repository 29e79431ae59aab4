package leakproof

import (
	pg "github.com/pganalyze/pg_query_go/v5"
)

// ParamUse is how a statement compares a parameter: with a column of
// Family (an array of such values when Array). The comparison is leakproof
// only if the parameter's type is of that family, which it is when the
// client leaves the type to Postgres.
type ParamUse struct {
	Family Family
	Array  bool
}

// Conjunct describes one top-level AND operand of a WHERE, JOIN ... ON,
// MERGE ... ON or ON CONFLICT ... WHERE.
type Conjunct struct {
	// Safe: the conjunct is leakproof.
	Safe bool
	// Table is the one bound table of the statement's FROM clauses that
	// the conjunct alone reads and filters, where it sits so that applying
	// it to that table's scan keeps the statement's meaning (the table is
	// not on the nullable side of an outer join above the conjunct). Nil
	// when there is none, or the conjunct is not Safe or holds a sub-select.
	Table *pg.RangeVar
}

// Report is what Scan found in one statement.
type Report struct {
	// Leaky: some expression of the statement is not leakproof.
	Leaky bool
	// First is the first such expression.
	First *pg.Node
	// Conjuncts describes every top-level conjunct by its node.
	Conjuncts map[*pg.Node]Conjunct
	// Params says how leakproof comparisons use parameters ($1 is 1).
	Params map[int]ParamUse
	// ReadConstant: a decision read a constant's value (LIMIT 1), so it
	// holds for this statement only, not for others of its shape.
	ReadConstant bool
}

// Options are what Scan needs beyond the tree.
type Options struct {
	Env Env
	// Generated, when set, names nodes the caller wrote and checked
	// itself; they count as leakproof and are not entered.
	Generated func(*pg.Node) bool
	// ParamTypes are the parameter types a PREPARE or Parse declared,
	// keyed by number; a declared type outside every family has Family "".
	ParamTypes map[int]ParamUse
	// UntypedParams: no comparison with a parameter counts as leakproof
	// (the client declared parameter types that do not fit).
	UntypedParams bool
}

// Scan reads one statement (any statement kind; those without
// expressions report nothing).
func Scan(stmt *pg.Node, opts Options) *Report {
	s := &scanner{opts: opts, rep: &Report{Conjuncts: map[*pg.Node]Conjunct{}, Params: map[int]ParamUse{}}}
	s.top(stmt)
	return s.rep
}

type scanner struct {
	opts Options
	rep  *Report
	// unsafe counts the expressions found not leakproof so far.
	unsafe int
	// sublinks are the sub-selects of sub-links scanned so far: one met
	// again (as an operand, then inside the expression holding it) is not
	// scanned twice.
	sublinks map[*pg.SelectStmt]scanned
}

type scanned struct {
	l  *level
	ok bool
}

func (s *scanner) top(n *pg.Node) {
	switch x := n.GetNode().(type) {
	case *pg.Node_ExplainStmt:
		s.top(x.ExplainStmt.GetQuery())
	case *pg.Node_DeclareCursorStmt:
		s.top(x.DeclareCursorStmt.GetQuery())
	case *pg.Node_CopyStmt:
		if q := x.CopyStmt.GetQuery(); q != nil {
			s.top(q)
		}
	case *pg.Node_PrepareStmt:
		types := map[int]ParamUse{}
		for i, t := range x.PrepareStmt.GetArgtypes() {
			tn := t.GetTypeName()
			use := ParamUse{Family: typeNameFamily(&pg.TypeName{Names: tn.GetNames()}), Array: len(tn.GetArrayBounds()) > 0}
			types[i+1] = use
		}
		s.opts.ParamTypes = types
		s.top(x.PrepareStmt.GetQuery())
	case *pg.Node_CreateTableAsStmt:
		s.top(x.CreateTableAsStmt.GetQuery())
	default:
		s.statement(n, nil)
	}
}

// root checks one expression of a level.
func (s *scanner) root(n *pg.Node, l *level) bool {
	if n == nil {
		return true
	}
	if s.safe(n, l) {
		return true
	}
	s.unsafe++
	if !s.rep.Leaky {
		s.rep.Leaky, s.rep.First = true, n
	}
	return false
}

// statement scans a query-like statement at a new level below parent
// and reports whether all its expressions are leakproof.
func (s *scanner) statement(n *pg.Node, parent *level) bool {
	before := s.unsafe
	switch x := n.GetNode().(type) {
	case *pg.Node_SelectStmt:
		_, ok := s.selectLevel(x.SelectStmt, parent)
		return ok
	case *pg.Node_InsertStmt:
		s.insertStmt(x.InsertStmt, parent)
	case *pg.Node_UpdateStmt:
		s.updateStmt(x.UpdateStmt, parent)
	case *pg.Node_DeleteStmt:
		s.deleteStmt(x.DeleteStmt, parent)
	case *pg.Node_MergeStmt:
		s.mergeStmt(x.MergeStmt, parent)
	case nil:
	default:
		s.root(n, parent)
	}
	return s.unsafe == before
}

func newLevel(parent *level) *level {
	if parent == nil {
		return &level{ctes: map[string]bool{}}
	}
	return parent.child()
}

// with scans the bodies of a WITH clause and makes their names visible.
func (s *scanner) with(wc *pg.WithClause, l *level) {
	if wc == nil {
		return
	}
	if wc.GetRecursive() {
		for _, c := range wc.GetCtes() {
			l.ctes[c.GetCommonTableExpr().GetCtename()] = true
		}
	}
	for _, c := range wc.GetCtes() {
		cte := c.GetCommonTableExpr()
		// A CTE body sees the CTEs before it, not this level's FROM.
		s.statement(cte.GetCtequery(), &level{parent: l.parent, ctes: l.cteNames()})
		l.ctes[cte.GetCtename()] = true
	}
}

// selectLevel scans a SELECT, VALUES or set operation and returns its
// level (for resolving its output column) and whether all its
// expressions are leakproof.
func (s *scanner) selectLevel(sel *pg.SelectStmt, parent *level) (*level, bool) {
	before := s.unsafe
	l := newLevel(parent)
	s.with(sel.GetWithClause(), l)
	if sel.GetOp() != pg.SetOperation_SETOP_NONE {
		s.selectLevel(sel.GetLarg(), l)
		s.selectLevel(sel.GetRarg(), l)
	}
	for _, row := range sel.GetValuesLists() {
		for _, v := range row.GetList().GetItems() {
			s.root(v, l)
		}
	}
	nonNull := s.fromList(sel.GetFromClause(), l)
	for _, d := range sel.GetDistinctClause() {
		s.root(d, l)
	}
	for _, t := range sel.GetTargetList() {
		s.root(t, l)
	}
	s.conjuncts(sel.GetWhereClause(), l, nonNull)
	for _, g := range sel.GetGroupClause() {
		s.root(g, l)
	}
	s.root(sel.GetHavingClause(), l)
	for _, w := range sel.GetWindowClause() {
		if !s.window(w.GetWindowDef(), l) {
			s.root(&pg.Node{Node: &pg.Node_WindowDef{WindowDef: w.GetWindowDef()}}, l)
		}
	}
	for _, o := range sel.GetSortClause() {
		s.root(o, l)
	}
	s.root(sel.GetLimitOffset(), l)
	s.root(sel.GetLimitCount(), l)
	return l, s.unsafe == before
}

// conjuncts checks the top-level AND operands of a filter and records,
// for each, whether it is leakproof and which single table of movable it
// alone filters.
func (s *scanner) conjuncts(where *pg.Node, l *level, movable []*item) {
	for _, c := range Split(where) {
		ok := s.root(c, l)
		info := Conjunct{Safe: ok}
		if ok {
			info.Table = s.onlyTable(c, l, movable)
		}
		s.rep.Conjuncts[c] = info
	}
}

// Split returns the operands of a (nested) AND, or the expression itself;
// nothing for nil.
func Split(n *pg.Node) []*pg.Node {
	if n == nil {
		return nil
	}
	if b := n.GetBoolExpr(); b != nil && b.GetBoolop() == pg.BoolExprType_AND_EXPR {
		var out []*pg.Node
		for _, a := range b.GetArgs() {
			out = append(out, Split(a)...)
		}
		return out
	}
	return []*pg.Node{n}
}

// onlyTable returns the bound table that every column reference of c
// names, when it is one of movable and c holds no sub-select.
func (s *scanner) onlyTable(c *pg.Node, l *level, movable []*item) *pg.RangeVar {
	var owner *item
	ok := true
	var walk func(n *pg.Node)
	walk = func(n *pg.Node) {
		if n == nil || !ok {
			return
		}
		switch x := n.GetNode().(type) {
		case *pg.Node_ColumnRef:
			it, _, own := l.owner(x.ColumnRef)
			if it == nil || !own || owner != nil && owner != it {
				ok = false
				return
			}
			owner = it
		case *pg.Node_SubLink:
			ok = false
		case *pg.Node_BoolExpr:
			for _, a := range x.BoolExpr.GetArgs() {
				walk(a)
			}
		case *pg.Node_NullTest:
			walk(x.NullTest.GetArg())
		case *pg.Node_BooleanTest:
			walk(x.BooleanTest.GetArg())
		case *pg.Node_AExpr:
			walk(x.AExpr.GetLexpr())
			walk(x.AExpr.GetRexpr())
		case *pg.Node_List:
			for _, a := range x.List.GetItems() {
				walk(a)
			}
		case *pg.Node_AArrayExpr:
			for _, a := range x.AArrayExpr.GetElements() {
				walk(a)
			}
		case *pg.Node_TypeCast:
			walk(x.TypeCast.GetArg())
		case *pg.Node_AConst, *pg.Node_ParamRef, *pg.Node_SqlvalueFunction:
		case *pg.Node_FuncCall:
			// now(): no columns.
			if len(x.FuncCall.GetArgs()) > 0 {
				ok = false
			}
		default:
			ok = false
		}
	}
	walk(c)
	if !ok || owner == nil || owner.rv == nil || !owner.bound {
		return nil
	}
	for _, m := range movable {
		if m == owner {
			return owner.rv
		}
	}
	return nil
}

// fromList adds a FROM list's items to l and returns those never
// NULL-extended.
func (s *scanner) fromList(items []*pg.Node, l *level) []*item {
	var nonNull []*item
	for _, f := range items {
		nonNull = append(nonNull, s.fromItem(f, l)...)
	}
	return nonNull
}

// fromItem adds the items a FROM item makes visible to l, scans what it
// holds, and returns the items that are never NULL-extended by it.
func (s *scanner) fromItem(n *pg.Node, l *level) []*item {
	switch x := n.GetNode().(type) {
	case *pg.Node_RangeVar:
		it := s.tableItem(x.RangeVar, l)
		l.items = append(l.items, it)
		return []*item{it}
	case *pg.Node_RangeSubselect:
		rs := x.RangeSubselect
		ctx := &level{parent: l.parent, ctes: l.cteNames()}
		if rs.GetLateral() {
			ctx = l
		}
		s.statement(rs.GetSubquery(), ctx)
		it := &item{name: rs.GetAlias().GetAliasname(), cols: s.starColumns(rs, l)}
		l.items = append(l.items, it)
		return []*item{it}
	case *pg.Node_RangeFunction:
		rf := x.RangeFunction
		for _, f := range rf.GetFunctions() {
			for _, e := range f.GetList().GetItems() {
				if e.GetFuncCall() != nil {
					s.root(e, l)
				}
			}
		}
		it := &item{name: rf.GetAlias().GetAliasname()}
		l.items = append(l.items, it)
		return []*item{it}
	case *pg.Node_JoinExpr:
		j := x.JoinExpr
		start := len(l.items)
		left := s.fromItem(j.GetLarg(), l)
		right := s.fromItem(j.GetRarg(), l)
		// ON sees only the join's own items (and outer levels).
		on := &level{items: append([]*item(nil), l.items[start:]...), parent: l.parent, ctes: l.ctes}
		var movable, nonNull []*item
		switch j.GetJointype() {
		case pg.JoinType_JOIN_INNER:
			movable = append(append(movable, left...), right...)
			nonNull = movable
		case pg.JoinType_JOIN_LEFT:
			movable, nonNull = right, left
		case pg.JoinType_JOIN_RIGHT:
			movable, nonNull = left, right
		}
		s.conjuncts(j.GetQuals(), on, movable)
		if j.GetAlias() != nil {
			// The alias hides the joined items' names.
			it := &item{name: j.GetAlias().GetAliasname()}
			l.items = append(l.items[:start], it)
			return nil
		}
		return nonNull
	}
	s.root(n, l)
	return nil
}

// tableItem resolves a table reference (or CTE name) in FROM.
func (s *scanner) tableItem(rv *pg.RangeVar, l *level) *item {
	name := rv.GetRelname()
	if a := rv.GetAlias(); a != nil {
		name = a.GetAliasname()
	}
	it := &item{name: name}
	if rv.GetSchemaname() == "" && l.ctes[rv.GetRelname()] {
		return it
	}
	t, ok := s.opts.Env.Table(rv)
	if !ok {
		return it
	}
	it.rv, it.bound = rv, t.Bound
	if len(rv.GetAlias().GetColnames()) == 0 {
		it.cols = t.Columns
	}
	return it
}

// starColumns returns the columns of a derived table of the shape
// (SELECT * FROM t ...) AS alias: t's own, where t may itself be such a
// derived table.
func (s *scanner) starColumns(rs *pg.RangeSubselect, l *level) map[string]string {
	if len(rs.GetAlias().GetColnames()) > 0 {
		return nil
	}
	sel := rs.GetSubquery().GetSelectStmt()
	if sel == nil || sel.GetOp() != pg.SetOperation_SETOP_NONE ||
		len(sel.GetFromClause()) != 1 || len(sel.GetTargetList()) != 1 || len(sel.GetGroupClause()) > 0 ||
		len(sel.GetDistinctClause()) > 0 || len(sel.GetWindowClause()) > 0 || sel.GetWithClause() != nil {
		return nil
	}
	fields := sel.GetTargetList()[0].GetResTarget().GetVal().GetColumnRef().GetFields()
	if len(fields) != 1 || fields[0].GetAStar() == nil {
		return nil
	}
	switch x := sel.GetFromClause()[0].GetNode().(type) {
	case *pg.Node_RangeSubselect:
		return s.starColumns(x.RangeSubselect, l)
	case *pg.Node_RangeVar:
		rv := x.RangeVar
		if rv.GetSchemaname() == "" && l.ctes[rv.GetRelname()] || len(rv.GetAlias().GetColnames()) > 0 {
			return nil
		}
		if t, ok := s.opts.Env.Table(rv); ok {
			return t.Columns
		}
	}
	return nil
}
