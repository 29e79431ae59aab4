package rewrite

import (
	"fmt"
	"strings"

	pg "github.com/pganalyze/pg_query_go/v5"
)

// systemColumns exist on base tables only; a derived table does not have
// them, and on write targets they would reveal physical row data.
var systemColumns = map[string]bool{"ctid": true, "xmin": true, "xmax": true, "cmin": true, "cmax": true, "tableoid": true}

// exprs walks a list of expressions.
func (w *walker) exprs(list []*pg.Node) {
	for _, n := range list {
		if w.err != nil {
			return
		}
		w.expr(n)
	}
}

// expr walks one expression. Every node type it does not know is refused:
// an unknown node may hide a subquery or a function call.
func (w *walker) expr(n *pg.Node) {
	if n == nil || w.err != nil {
		return
	}
	switch x := n.GetNode().(type) {
	case *pg.Node_AConst, *pg.Node_ParamRef, *pg.Node_AStar, *pg.Node_String_, *pg.Node_Integer,
		*pg.Node_Float, *pg.Node_Boolean, *pg.Node_BitString, *pg.Node_SqlvalueFunction, *pg.Node_SetToDefault:
	case *pg.Node_ColumnRef:
		w.columnRef(x.ColumnRef)
	case *pg.Node_AExpr:
		w.operator(x.AExpr.GetName())
		w.expr(x.AExpr.GetLexpr())
		w.expr(x.AExpr.GetRexpr())
	case *pg.Node_BoolExpr:
		w.exprs(x.BoolExpr.GetArgs())
	case *pg.Node_FuncCall:
		w.funcCall(x.FuncCall)
	case *pg.Node_TypeCast:
		w.typeName(x.TypeCast.GetTypeName())
		w.expr(x.TypeCast.GetArg())
	case *pg.Node_CollateClause:
		w.expr(x.CollateClause.GetArg())
	case *pg.Node_SubLink:
		w.operator(x.SubLink.GetOperName())
		w.expr(x.SubLink.GetTestexpr())
		w.statement(x.SubLink.GetSubselect(), "a subquery")
	case *pg.Node_CaseExpr:
		w.expr(x.CaseExpr.GetArg())
		w.exprs(x.CaseExpr.GetArgs())
		w.expr(x.CaseExpr.GetDefresult())
	case *pg.Node_CaseWhen:
		w.expr(x.CaseWhen.GetExpr())
		w.expr(x.CaseWhen.GetResult())
	case *pg.Node_CoalesceExpr:
		w.exprs(x.CoalesceExpr.GetArgs())
	case *pg.Node_MinMaxExpr:
		w.exprs(x.MinMaxExpr.GetArgs())
	case *pg.Node_NullTest:
		w.expr(x.NullTest.GetArg())
	case *pg.Node_BooleanTest:
		w.expr(x.BooleanTest.GetArg())
	case *pg.Node_AArrayExpr:
		w.exprs(x.AArrayExpr.GetElements())
	case *pg.Node_AIndirection:
		w.expr(x.AIndirection.GetArg())
		for _, ind := range x.AIndirection.GetIndirection() {
			if s := ind.GetString_(); s != nil {
				w.systemColumn(s.GetSval(), -1)
				continue
			}
			w.expr(ind)
		}
	case *pg.Node_AIndices:
		w.expr(x.AIndices.GetLidx())
		w.expr(x.AIndices.GetUidx())
	case *pg.Node_RowExpr:
		w.exprs(x.RowExpr.GetArgs())
	case *pg.Node_GroupingFunc:
		w.exprs(x.GroupingFunc.GetArgs())
	case *pg.Node_GroupingSet:
		w.exprs(x.GroupingSet.GetContent())
	case *pg.Node_List:
		w.exprs(x.List.GetItems())
	case *pg.Node_ResTarget:
		for _, ind := range x.ResTarget.GetIndirection() {
			if ind.GetString_() == nil {
				w.expr(ind)
			}
		}
		w.expr(x.ResTarget.GetVal())
	case *pg.Node_SortBy:
		w.operator(x.SortBy.GetUseOp())
		w.expr(x.SortBy.GetNode())
	case *pg.Node_WindowDef:
		w.windowDef(x.WindowDef)
	case *pg.Node_MultiAssignRef:
		w.expr(x.MultiAssignRef.GetSource())
	case *pg.Node_NamedArgExpr: // f(name => value)
		w.expr(x.NamedArgExpr.GetArg())
	case *pg.Node_IndexElem: // ON CONFLICT (col, (expr)) inference
		w.expr(x.IndexElem.GetExpr())
	case *pg.Node_CurrentOfExpr:
		w.fail(refusef("WHERE CURRENT OF is not supported"))
	default:
		w.fail(refuseHint("rephrase the statement without it", "unsupported expression %s", nodeKind(n)))
	}
}

func (w *walker) windowDef(d *pg.WindowDef) {
	if d == nil {
		return
	}
	w.exprs(d.GetPartitionClause())
	w.exprs(d.GetOrderClause())
	w.expr(d.GetStartOffset())
	w.expr(d.GetEndOffset())
}

// columnRef refuses system columns and column references qualified by a
// schema-qualified tenant-bound table (public.orders.id): after scoping, that
// table is a derived table named orders, which no schema qualifies.
func (w *walker) columnRef(c *pg.ColumnRef) {
	fields := c.GetFields()
	if len(fields) == 0 {
		return
	}
	w.systemColumn(fields[len(fields)-1].GetString_().GetSval(), c.GetLocation())
	for i := 0; i+2 < len(fields) && i < 2; i++ {
		t, ok := w.snap.Lookup(fields[i].GetString_().GetSval(), fields[i+1].GetString_().GetSval())
		if ok && t.Bound() {
			w.fail(&Rejection{Code: codeRefused, Position: int(c.GetLocation()) + 1,
				Reason: fmt.Sprintf("column reference %s qualifies a tenant-bound table by schema", qualified(fields)),
				Hint:   fmt.Sprintf("qualify the column by the table's name or alias: %s.%s", t.Name, qualified(fields[i+2:]))})
			return
		}
	}
}

func (w *walker) systemColumn(name string, loc int32) {
	if systemColumns[name] {
		w.fail(&Rejection{Code: codeRefused, Reason: fmt.Sprintf("system column %s is not allowed", name),
			Hint: "system columns expose physical row data; select ordinary columns", Position: int(loc) + 1})
	}
}

// operator refuses operators qualified with a schema other than pg_catalog:
// OPERATOR(s.=) can name a user-defined function.
func (w *walker) operator(name []*pg.Node) {
	if len(name) > 1 && name[0].GetString_().GetSval() != "pg_catalog" {
		w.fail(refusef("operator %s is not allowed", qualified(name)))
	}
}

// typeName refuses types outside pg_catalog, whose input functions could be
// anything. The reg* types look up schema metadata, which is readable.
func (w *walker) typeName(t *pg.TypeName) {
	names := t.GetNames()
	if len(names) == 0 {
		return
	}
	if len(names) > 1 && names[0].GetString_().GetSval() != "pg_catalog" {
		w.fail(refusef("type %s is not allowed", qualified(names)))
	}
	w.exprs(t.GetTypmods())
	w.exprs(t.GetArrayBounds())
}

func qualified(names []*pg.Node) string {
	parts := make([]string, len(names))
	for i, n := range names {
		parts[i] = n.GetString_().GetSval()
		if n.GetAStar() != nil {
			parts[i] = "*"
		}
	}
	return strings.Join(parts, ".")
}

// nodeKind names a node's type for messages ("XmlExpr").
func nodeKind(n *pg.Node) string {
	if n == nil || n.GetNode() == nil {
		return "(empty)"
	}
	k := fmt.Sprintf("%T", n.GetNode())
	k = strings.TrimPrefix(k, "*pg_query.Node_")
	return strings.TrimSuffix(k, "_")
}
