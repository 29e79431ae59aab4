package rewrite

import (
	"encoding/hex"
	"strings"

	pg "github.com/pganalyze/pg_query_go/v5"
	"google.golang.org/protobuf/proto"

	"github.com/tenantproxy/tenantproxy/catalog"
)

// Foreign keys stay inside the tenant. Postgres checks a foreign key
// against every row of the referenced table, whoever's; on the tenant's
// own database a key naming another tenant's row fails with 23503. A
// write into a bound table that sets the column of a guarded key
// (catalog.RefGuarded) gets its value wrapped:
//
//	(SELECT CASE WHEN g.v IS NULL THEN g.v
//	             WHEN EXISTS (SELECT 1 FROM <referenced> r WHERE r.key = g.v AND <r's filter>) THEN g.v
//	             ELSE (SELECT NULL::<type> WHERE ((SELECT 'tenantproxy_fk:<key>:') || g.v::text)::integer IS NULL) END
//	 FROM (SELECT (v)::<type> AS v) AS tenantproxy_guard)
//
// The ELSE arm fails the statement; the proxy turns that error into the
// 23503 Postgres gives on the tenant's own database (FKViolation). Keys of
// several columns, and keys to tables the catalog does not list, are
// refused until they can be guarded.

// FKMarker starts the text a reference guard fails with; FKViolation
// reads it back.
const FKMarker = "tenantproxy_fk:"

// fkMeta is what the error carries about the key, hex-encoded between
// FKMarker and the value: table, constraint, column and referenced table,
// NUL-separated.
func fkMeta(t catalog.Table, r catalog.Reference) string {
	return hex.EncodeToString([]byte(t.Name + "\x00" + r.Key.Name + "\x00" + r.Key.Columns[0] + "\x00" + r.Key.RefName + "\x00" + t.Schema))
}

// FKViolation is the foreign-key violation a reference guard's error
// stands for: the message and detail Postgres gives on the tenant's own
// database. ok is false for any other error.
type FKViolation struct {
	Schema, Table, Constraint, Column, RefTable, Value string
}

// ParseFKViolation reads a reference guard's error message (invalid
// input syntax for type integer: "tenantproxy_fk:<meta>:<value>").
func ParseFKViolation(message string) (FKViolation, bool) {
	i := strings.Index(message, `"`+FKMarker)
	if i < 0 || !strings.HasSuffix(message, `"`) {
		return FKViolation{}, false
	}
	rest := message[i+1+len(FKMarker) : len(message)-1]
	meta, value, ok := strings.Cut(rest, ":")
	if !ok {
		return FKViolation{}, false
	}
	raw, err := hex.DecodeString(meta)
	if err != nil {
		return FKViolation{}, false
	}
	f := strings.Split(string(raw), "\x00")
	if len(f) != 5 {
		return FKViolation{}, false
	}
	return FKViolation{Table: f[0], Constraint: f[1], Column: f[2], RefTable: f[3], Schema: f[4], Value: value}, true
}

// Message and Detail are Postgres's words for the violation.
func (v FKViolation) Message() string {
	return `insert or update on table "` + v.Table + `" violates foreign key constraint "` + v.Constraint + `"`
}

// Detail is Postgres's DETAIL line for the violation.
func (v FKViolation) Detail() string {
	return "Key (" + v.Column + ")=(" + v.Value + `) is not present in table "` + v.RefTable + `".`
}

// keyExists builds EXISTS (SELECT 1 FROM p WHERE p.key = expr AND <p's
// filter>): a lookup of one key, which the referenced table's key index
// serves (an IN over the tenant's keys would read them all).
func (w *walker) keyExists(expr *pg.Node, p catalog.Table, key string) *pg.Node {
	from, filter := w.ownRows(p)
	if w.err != nil {
		return nil
	}
	match := pg.MakeAExprNode(pg.A_Expr_Kind_AEXPR_OP, []*pg.Node{pg.MakeStrNode("=")},
		pg.MakeColumnRefNode([]*pg.Node{pg.MakeStrNode(p.Name), pg.MakeStrNode(key)}, -1), expr, -1)
	sub := &pg.SelectStmt{
		TargetList:  []*pg.Node{pg.MakeResTargetNodeWithVal(pg.MakeAConstIntNode(1, -1), -1)},
		FromClause:  []*pg.Node{from},
		WhereClause: pg.MakeBoolExprNode(pg.BoolExprType_AND_EXPR, []*pg.Node{match, filter}, -1),
		LimitOption: pg.LimitOption_LIMIT_OPTION_DEFAULT,
		Op:          pg.SetOperation_SETOP_NONE,
	}
	return &pg.Node{Node: &pg.Node_SubLink{SubLink: &pg.SubLink{
		SubLinkType: pg.SubLinkType_EXISTS_SUBLINK,
		Subselect:   &pg.Node{Node: &pg.Node_SelectStmt{SelectStmt: sub}},
		Location:    -1,
	}}}
}

// guardedReferences are t's keys a write must guard, or refuse when they
// cannot be guarded (nil when none).
func (w *walker) guardedReferences(t catalog.Table) []catalog.Reference {
	var out []catalog.Reference
	for _, r := range w.snap.References(t) {
		if r.Status == catalog.RefGuarded || r.Status == catalog.RefUncatalogued {
			out = append(out, r)
		}
	}
	return out
}

// checkableReference refuses a key that a write sets but that cannot be
// guarded yet.
func (w *walker) checkableReference(t catalog.Table, r catalog.Reference, verb string) bool {
	switch {
	case r.Status == catalog.RefUncatalogued:
		w.fail(refuseHint("catalogue "+r.Key.RefQualified()+" (tenantproxy catalog add-table or add-global)",
			"%s of %s sets foreign key %s, which references %s, a table the catalog does not list", verb, t.QualifiedName(), r.Key.Name, r.Key.RefQualified()))
	case len(r.Key.Columns) > 1:
		w.fail(refuseHint("include the tenant column in the key, so that it is safe by construction",
			"%s of %s sets foreign key %s (%s), whose columns cannot yet be checked against your tenant's rows of %s",
			verb, t.QualifiedName(), r.Key.Name, strings.Join(r.Key.Columns, ", "), r.Key.RefQualified()))
	default:
		return true
	}
	return false
}

// insertReferences guards every guarded key an INSERT into bound table t
// sets (the column list is explicit by now: insertTenant expands it).
func (w *walker) insertReferences(ins *pg.InsertStmt, t catalog.Table, verb string) {
	refs := w.guardedReferences(t)
	if len(refs) == 0 {
		return
	}
	sel := ins.GetSelectStmt().GetSelectStmt()
	if sel != nil && len(ins.GetCols()) == 0 {
		w.expandColumns(ins, sel, t)
		if w.err != nil {
			return
		}
	}
	for _, r := range refs {
		idx := -1
		for i, c := range ins.GetCols() {
			rt := c.GetResTarget()
			for _, col := range r.Key.Columns {
				if rt.GetName() == col {
					if len(rt.GetIndirection()) > 0 {
						w.fail(refusef("%s may not set part of %s, a column of foreign key %s", verb, col, r.Key.Name))
						return
					}
					idx = i
				}
			}
		}
		if idx < 0 {
			continue // the columns' defaults apply
		}
		if !w.checkableReference(t, r, verb) {
			return
		}
		hint := "list the columns and give " + r.Key.Columns[0] + " a value in every row"
		var items []*pg.Node
		if sel != nil {
			var ok, setOp bool
			items, ok, setOp = feeding(sel, idx, len(ins.GetCols()))
			switch {
			case setOp:
				w.fail(refuseHint("insert from a single SELECT or VALUES", "%s into %s from UNION, INTERSECT or EXCEPT cannot have foreign key %s checked", verb, t.QualifiedName(), r.Key.Name))
				return
			case !ok:
				w.fail(refuseHint(hint, "%s does not show which value goes into %s", verb, r.Key.Columns[0]))
				return
			}
		}
		for _, item := range items {
			guarded := w.referenceGuard(proto.Clone(item).(*pg.Node), t, r)
			if w.err != nil {
				return
			}
			item.Node = guarded.Node
		}
	}
}

// assignReferences guards every guarded key a SET list of bound table t
// assigns.
func (w *walker) assignReferences(set []*pg.Node, t catalog.Table, verb string) {
	refs := w.guardedReferences(t)
	for _, r := range refs {
		for _, n := range set {
			rt := n.GetResTarget()
			hit := false
			for _, col := range r.Key.Columns {
				hit = hit || rt.GetName() == col
			}
			if !hit {
				continue
			}
			if !w.checkableReference(t, r, verb) {
				return
			}
			if len(rt.GetIndirection()) > 0 || rt.GetVal().GetMultiAssignRef() != nil {
				w.fail(refuseHint("set the column on its own", "%s may not set %s, the column of foreign key %s, this way", verb, rt.GetName(), r.Key.Name))
				return
			}
			if rt.GetVal().GetSetToDefault() != nil {
				continue // the column's default
			}
			rt.Val = w.referenceGuard(rt.GetVal(), t, r)
			if w.err != nil {
				return
			}
		}
	}
}

// referenceGuard returns the guarded value for v (see the top of the file).
func (w *walker) referenceGuard(v *pg.Node, t catalog.Table, r catalog.Reference) *pg.Node {
	col := r.Key.Columns[0]
	typ := t.ColumnType(col)
	if typ == "" {
		w.fail(refusef("%s: the catalog does not know the type of %s; reload the catalog", t.QualifiedName(), col))
		return v
	}
	// The message is a sub-select so that Postgres cannot fold the cast
	// at planning time, when the value is a constant: it fails only when
	// the ELSE arm is reached.
	tree, err := pg.Parse("SELECT (SELECT NULL::" + typ + " WHERE ((SELECT ''::text) || " + guardAlias + ".v::text)::integer IS NULL)")
	if err != nil || len(tree.GetStmts()) != 1 {
		w.fail(refusef("column type %q cannot be written back: %v", typ, err))
		return v
	}
	raise := tree.GetStmts()[0].GetStmt().GetSelectStmt().GetTargetList()[0].GetResTarget().GetVal()
	concat := raise.GetSubLink().GetSubselect().GetSelectStmt().GetWhereClause().GetNullTest().GetArg().GetTypeCast().GetArg().GetAExpr()
	concat.GetLexpr().GetSubLink().GetSubselect().GetSelectStmt().GetTargetList()[0].GetResTarget().GetVal().GetTypeCast().GetArg().GetAConst().Val =
		&pg.A_Const_Sval{Sval: &pg.String{Sval: FKMarker + fkMeta(t, r) + ":"}}
	tn := proto.Clone(raise.GetSubLink().GetSubselect().GetSelectStmt().GetTargetList()[0].GetResTarget().GetVal().GetTypeCast().GetTypeName()).(*pg.TypeName)
	in := w.keyExists(guardValue(), r.Ref, r.Key.RefColumns[0])
	if w.err != nil {
		return v
	}
	w.note(t.QualifiedName(), "%s references %s (foreign key %s): a written value must be a key of a %s row of your tenant, or NULL",
		col, r.Ref.QualifiedName(), r.Key.Name, r.Ref.QualifiedName())
	isNull := &pg.Node{Node: &pg.Node_NullTest{NullTest: &pg.NullTest{Arg: guardValue(), Nulltesttype: pg.NullTestType_IS_NULL, Location: -1}}}
	check := &pg.Node{Node: &pg.Node_CaseExpr{CaseExpr: &pg.CaseExpr{
		Args: []*pg.Node{
			{Node: &pg.Node_CaseWhen{CaseWhen: &pg.CaseWhen{Expr: isNull, Result: guardValue(), Location: -1}}},
			{Node: &pg.Node_CaseWhen{CaseWhen: &pg.CaseWhen{Expr: in, Result: guardValue(), Location: -1}}},
		},
		Defresult: raise,
		Location:  -1,
	}}}
	return guardSelect(v, tn, check)
}
