package rewrite

import (
	pg "github.com/pganalyze/pg_query_go/v5"
	"github.com/tenantproxy/tenantproxy/catalog"
)

// fromList rewrites every item of a FROM (or USING) list in place.
func (w *walker) fromList(items []*pg.Node) {
	for i := range items {
		if w.err != nil {
			return
		}
		items[i] = w.fromItem(items[i])
	}
}

// fromItem rewrites one FROM item and returns what replaces it: a
// tenant-bound table becomes a filtered derived table under the same name,
// which keeps every join type's semantics (the filter applies before the
// join, on whichever side the table is).
func (w *walker) fromItem(n *pg.Node) *pg.Node {
	switch x := n.GetNode().(type) {
	case *pg.Node_RangeVar:
		return w.rangeVar(x.RangeVar, n)
	case *pg.Node_JoinExpr:
		j := x.JoinExpr
		j.Larg = w.fromItem(j.Larg)
		j.Rarg = w.fromItem(j.Rarg)
		w.expr(j.Quals)
		return n
	case *pg.Node_RangeSubselect:
		w.statement(x.RangeSubselect.GetSubquery(), "a subquery in FROM")
		return n
	case *pg.Node_RangeFunction:
		rf := x.RangeFunction
		for _, item := range rf.GetFunctions() {
			list := item.GetList().GetItems()
			if len(list) == 0 {
				w.fail(refusef("unsupported function in FROM"))
				return n
			}
			if list[0].GetFuncCall() == nil {
				w.fail(refusef("only function calls may appear in FROM"))
				return n
			}
			w.expr(list[0])
			w.columnDefs(list[1:])
		}
		w.columnDefs(rf.GetColdeflist())
		return n
	case *pg.Node_RangeTableSample:
		w.fail(refusef("TABLESAMPLE is not supported"))
	case *pg.Node_RangeTableFunc:
		w.fail(refusef("XMLTABLE is not supported"))
	default:
		w.fail(refusef("unsupported FROM item %s", nodeKind(n)))
	}
	return n
}

// rangeVar handles a table reference in FROM.
func (w *walker) rangeVar(rv *pg.RangeVar, n *pg.Node) *pg.Node {
	if w.isCTE(rv) || w.generated[rv] {
		return n
	}
	t, ok := w.resolve(rv)
	if !ok {
		return n
	}
	w.changed = true
	switch t.Kind {
	case catalog.Global:
		rv.Schemaname, rv.Relname = t.Schema, t.Name
		w.note(t.QualifiedName(), "read in full: %s", globalKind(t))
		return n
	case catalog.TenantBound, catalog.PathBound:
		w.note(t.QualifiedName(), "read through a filtered derived table: %s", w.describe(t))
		return w.derivedTable(rv, t)
	}
	w.fail(refusef("table %s has an unknown kind in the catalog", t.QualifiedName()))
	return n
}

// derivedTable builds (SELECT * FROM s.t WHERE t.col = 'v') AS alias.
func (w *walker) derivedTable(rv *pg.RangeVar, t catalog.Table) *pg.Node {
	w.noteTable(t)
	filter := w.rowFilter(t.Name, t)
	if w.err != nil {
		return nil
	}
	inner := &pg.RangeVar{Schemaname: t.Schema, Relname: t.Name, Inh: rv.GetInh(), Relpersistence: "p", Location: -1}
	sel := &pg.SelectStmt{
		TargetList:  []*pg.Node{pg.MakeResTargetNodeWithVal(pg.MakeColumnRefNode([]*pg.Node{pg.MakeAStarNode()}, -1), -1)},
		FromClause:  []*pg.Node{{Node: &pg.Node_RangeVar{RangeVar: inner}}},
		WhereClause: filter,
		LimitOption: pg.LimitOption_LIMIT_OPTION_DEFAULT,
		Op:          pg.SetOperation_SETOP_NONE,
	}
	w.fenceDerived(rv, sel, t)
	alias := rv.GetAlias()
	if alias == nil {
		alias = &pg.Alias{Aliasname: rv.GetRelname()}
	}
	return &pg.Node{Node: &pg.Node_RangeSubselect{RangeSubselect: &pg.RangeSubselect{
		Subquery: &pg.Node{Node: &pg.Node_SelectStmt{SelectStmt: sel}},
		Alias:    alias,
	}}}
}

// columnDefs checks the column definition list of a function in FROM
// (AS t(a int, b text)): its types are checked like casts.
func (w *walker) columnDefs(defs []*pg.Node) {
	for _, d := range defs {
		switch x := d.GetNode().(type) {
		case *pg.Node_List:
			w.columnDefs(x.List.GetItems())
		case *pg.Node_ColumnDef:
			w.typeName(x.ColumnDef.GetTypeName())
			if x.ColumnDef.GetRawDefault() != nil || x.ColumnDef.GetCookedDefault() != nil || len(x.ColumnDef.GetConstraints()) > 0 {
				w.fail(refusef("column definition %s in FROM may only give a type", x.ColumnDef.GetColname()))
			}
		case nil:
		default:
			w.fail(refusef("unsupported column definition %s in FROM", nodeKind(d)))
		}
	}
}
