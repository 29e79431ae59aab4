package rewrite

import (
	"encoding/hex"
	"strings"

	pg "github.com/pganalyze/pg_query_go/v5"
	"google.golang.org/protobuf/proto"

	"github.com/tenantproxy/tenantproxy/catalog"
	"github.com/tenantproxy/tenantproxy/rewrite/verify"
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
// 23503 Postgres gives on the tenant's own database (FKViolation). A key
// of several columns is guarded on the value of its first column written:
// the NULL test and the lookup read the other columns' values too (what
// the row gets, cast to their types, or, in a SET list that leaves them
// alone, the row's own), so those must be constants, parameters or
// columns. Keys to tables the catalog does not list are refused.

// FKMarker starts the text a reference guard fails with; FKViolation
// reads it back.
const FKMarker = "tenantproxy_fk:"

// fkMeta is what the error carries about the key, hex-encoded between
// FKMarker and the value: table, constraint, column and referenced table,
// NUL-separated.
func fkMeta(t catalog.Table, r catalog.Reference) string {
	return hex.EncodeToString([]byte(t.Name + "\x00" + r.Key.Name + "\x00" + strings.Join(r.Key.Columns, ", ") + "\x00" + r.Key.RefName + "\x00" + t.Schema))
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

// lookupAlias names the table a guard looks a key up in, so that no name
// the client's values use can mean it (see reReadable).
const lookupAlias = "tenantproxy_ref"

// keyExists builds EXISTS (SELECT 1 FROM p WHERE p.key1 = expr1 AND ...
// AND <p's filter>): a lookup of one key, which the referenced table's key
// index serves (an IN over the tenant's keys would read them all).
func (w *walker) keyExists(exprs []*pg.Node, p catalog.Table, keys []string) *pg.Node {
	from, filter := w.ownRows(p, lookupAlias)
	if w.err != nil {
		return nil
	}
	var conj []*pg.Node
	for i, key := range keys {
		conj = append(conj, pg.MakeAExprNode(pg.A_Expr_Kind_AEXPR_OP, []*pg.Node{pg.MakeStrNode("=")},
			pg.MakeColumnRefNode([]*pg.Node{pg.MakeStrNode(lookupAlias), pg.MakeStrNode(key)}, -1), exprs[i], -1))
	}
	if filter != nil { // nil for a global table: every row is everyone's
		conj = append(conj, filter)
	}
	where := conj[0]
	if len(conj) > 1 {
		where = pg.MakeBoolExprNode(pg.BoolExprType_AND_EXPR, conj, -1)
	}
	sub := &pg.SelectStmt{
		TargetList:  []*pg.Node{pg.MakeResTargetNodeWithVal(pg.MakeAConstIntNode(1, -1), -1)},
		FromClause:  []*pg.Node{from},
		WhereClause: where,
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
	default:
		return true
	}
	return false
}

// insertReferences guards every guarded key an INSERT into bound table t
// sets (the column list is explicit by now: insertTenant expands it). The
// guard goes on the value of the key's first column; a key of several
// columns reads the others' values of the same row, so they must be values
// that read the same twice (see stable).
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
	// A proposed row that one of the session's rows matches on an arbiter
	// key is not inserted (see conflict.go).
	proposed := w.proposedRows(ins, t, sel)
	for _, r := range refs {
		pos := make([]int, len(r.Key.Columns)) // each key column's place in the column list
		set := 0
		for k, col := range r.Key.Columns {
			pos[k] = -1
			for i, c := range ins.GetCols() {
				rt := c.GetResTarget()
				if rt.GetName() != col {
					continue
				}
				if len(rt.GetIndirection()) > 0 {
					w.fail(refusef("%s may not set part of %s, a column of foreign key %s", verb, col, r.Key.Name))
					return
				}
				pos[k] = i
				set++
			}
		}
		if set == 0 {
			// The columns' defaults apply: a key they make up is written
			// out, and checked as any other.
			defaults := w.keyDefaults(t, r, verb)
			if w.err != nil {
				return
			}
			if defaults == nil {
				continue // they reference nothing
			}
			if !w.checkableReference(t, r, verb) || !w.writeDefaults(ins, sel, r, defaults, verb) {
				return
			}
			for k := range pos {
				pos[k] = len(ins.GetCols()) - len(pos) + k
			}
			set = len(pos)
		}
		if !w.checkableReference(t, r, verb) {
			return
		}
		if set < len(pos) {
			w.fail(refuseHint("list every column of the key ("+strings.Join(r.Key.Columns, ", ")+") with a value",
				"%s into %s sets only part of foreign key %s: the proxy cannot check the columns left to their defaults", verb, t.QualifiedName(), r.Key.Name))
			return
		}
		if sel == nil {
			continue
		}
		// rows[k][row] is what row writes into key column k.
		rows := make([][]*pg.Node, len(pos))
		for k, idx := range pos {
			items, ok, setOp := feeding(sel, idx, len(ins.GetCols()))
			switch {
			case setOp:
				w.fail(refuseHint("insert from a single SELECT or VALUES", "%s into %s from UNION, INTERSECT or EXCEPT cannot have foreign key %s checked", verb, t.QualifiedName(), r.Key.Name))
				return
			case !ok:
				w.fail(refuseHint("list the columns and give "+r.Key.Columns[k]+" a value in every row", "%s does not show which value goes into %s", verb, r.Key.Columns[k]))
				return
			}
			rows[k] = items
		}
		for row, item := range rows[0] {
			others := make([]*pg.Node, len(pos))
			for k := 1; k < len(pos); k++ {
				others[k] = rows[k][row]
			}
			if len(pos) > 1 && (item.GetSetToDefault() != nil || !w.stableKeyValues(others, r, verb)) {
				if w.err == nil {
					w.fail(refuseHint("give every column of the key a value", "%s sets %s to DEFAULT, a column of foreign key %s of several columns", verb, r.Key.Columns[0], r.Key.Name))
				}
				return
			}
			if item.GetSetToDefault() != nil {
				def := w.keyDefault(t, r, r.Key.Columns[0], verb)
				if def == nil {
					continue // NULL, or none
				}
				item.Node = def.Node
			}
			arms := proposed.arms(w, row, r.Key.Columns[0])
			guarded := w.referenceGuard(proto.Clone(item).(*pg.Node), t, r, 0, others, arms...)
			if w.err != nil {
				return
			}
			item.Node = guarded.Node
		}
	}
}

// keyDefault returns the default a write leaves key column col of r to:
// nil when it references nothing (none, NULL). A default other than a
// constant is refused, since the proxy cannot check it.
func (w *walker) keyDefault(t catalog.Table, r catalog.Reference, col, verb string) *pg.Node {
	def, ok := verify.KeyDefault(t.ColumnDefault(col))
	if !ok {
		w.fail(refuseHint("give "+col+" a value",
			"%s leaves %s, a column of foreign key %s, to its default %s, which the proxy cannot check", verb, col, r.Key.Name, t.ColumnDefault(col)))
		return nil
	}
	return def
}

// keyDefaults returns the defaults of r's columns when a write leaves them
// all to them and they make up a key (none NULL); nil otherwise.
func (w *walker) keyDefaults(t catalog.Table, r catalog.Reference, verb string) []*pg.Node {
	out := make([]*pg.Node, len(r.Key.Columns))
	for k, col := range r.Key.Columns {
		if out[k] = w.keyDefault(t, r, col, verb); out[k] == nil {
			return nil // MATCH SIMPLE: a NULL column references nothing
		}
	}
	return out
}

// writeDefaults adds r's columns to an INSERT that left them out, with
// their defaults as every row's values.
func (w *walker) writeDefaults(ins *pg.InsertStmt, sel *pg.SelectStmt, r catalog.Reference, defaults []*pg.Node, verb string) bool {
	hint := "list " + strings.Join(r.Key.Columns, ", ") + " with values"
	switch {
	case sel == nil:
		w.fail(refuseHint(hint, "%s ... DEFAULT VALUES leaves foreign key %s to defaults that name a row", verb, r.Key.Name))
		return false
	case sel.GetOp() != pg.SetOperation_SETOP_NONE:
		w.fail(refuseHint(hint, "%s from UNION, INTERSECT or EXCEPT leaves foreign key %s to defaults that name a row", verb, r.Key.Name))
		return false
	}
	for _, col := range r.Key.Columns {
		ins.Cols = append(ins.Cols, &pg.Node{Node: &pg.Node_ResTarget{ResTarget: &pg.ResTarget{Name: col, Location: -1}}})
	}
	for _, d := range defaults {
		if rows := sel.GetValuesLists(); len(rows) > 0 {
			for _, row := range rows {
				l := row.GetList()
				l.Items = append(l.Items, proto.Clone(d).(*pg.Node))
			}
			continue
		}
		sel.TargetList = append(sel.TargetList, pg.MakeResTargetNodeWithVal(proto.Clone(d).(*pg.Node), -1))
	}
	return true
}

// stableKeyValues refuses, for a key of several columns, values of its
// other columns that the guard cannot read a second time with the same
// result (see reReadable).
func (w *walker) stableKeyValues(others []*pg.Node, r catalog.Reference, verb string) bool {
	for k, o := range others {
		if o == nil {
			continue
		}
		if why := reReadable(o); why != "" {
			w.fail(refuseHint("write "+r.Key.Columns[k]+" as a constant, a parameter or a qualified column (t.col)",
				"%s sets %s, a column of foreign key %s of several columns, to %s, which the proxy cannot read twice", verb, r.Key.Columns[k], r.Key.Name, why))
			return false
		}
	}
	return true
}

// reReadable says why n cannot be read a second time inside a guard, with
// the same result, or "" when it can: a constant, a parameter or a column
// qualified by its table (t.col), cast or not. Inside a guard, a bare
// column name could mean a column of the table the key is looked up in,
// and the proxy's own names (tenantproxy_...) are in scope.
func reReadable(n *pg.Node) string {
	switch x := n.GetNode().(type) {
	case *pg.Node_AConst, *pg.Node_ParamRef:
		return ""
	case *pg.Node_ColumnRef:
		f := x.ColumnRef.GetFields()
		if len(f) != 2 || f[0].GetString_() == nil || f[1].GetString_() == nil {
			return "a column not written as table.column"
		}
		if strings.HasPrefix(f[0].GetString_().GetSval(), "tenantproxy_") {
			return "a column of " + f[0].GetString_().GetSval() + ", a name the proxy reserves"
		}
		return ""
	case *pg.Node_TypeCast:
		return reReadable(x.TypeCast.GetArg())
	}
	return "an expression"
}

// assignReferences guards every guarded key a SET list of bound table t
// assigns; self names the row being changed, whose columns the SET list
// leaves alone keep their values.
func (w *walker) assignReferences(set []*pg.Node, t catalog.Table, verb, self string) {
	for _, r := range w.guardedReferences(t) {
		vals := make([]*pg.Node, len(r.Key.Columns))
		first := -1 // the SET item of the first key column set
		var firstKey int
		for k, col := range r.Key.Columns {
			for i, n := range set {
				rt := n.GetResTarget()
				if rt.GetName() != col {
					continue
				}
				if !w.checkableReference(t, r, verb) {
					return
				}
				if len(rt.GetIndirection()) > 0 || rt.GetVal().GetMultiAssignRef() != nil {
					w.fail(refuseHint("set the column on its own", "%s may not set %s, the column of foreign key %s, this way", verb, rt.GetName(), r.Key.Name))
					return
				}
				if rt.GetVal().GetSetToDefault() != nil && len(r.Key.Columns) > 1 {
					w.fail(refuseHint("give every column of the key a value", "%s sets %s to DEFAULT, a column of foreign key %s of several columns", verb, col, r.Key.Name))
					return
				}
				vals[k] = rt.GetVal()
				if first < 0 {
					first, firstKey = i, k
				}
			}
		}
		if first < 0 {
			continue
		}
		rt := set[first].GetResTarget()
		if rt.GetVal().GetSetToDefault() != nil {
			def := w.keyDefault(t, r, r.Key.Columns[firstKey], verb)
			if def == nil {
				continue // NULL, or none
			}
			rt.Val = def
		}
		others := make([]*pg.Node, len(vals))
		for k, v := range vals {
			switch {
			case k == firstKey:
			case v != nil:
				others[k] = v
			default:
				others[k] = pg.MakeColumnRefNode([]*pg.Node{pg.MakeStrNode(self), pg.MakeStrNode(r.Key.Columns[k])}, -1)
			}
		}
		if !w.stableKeyValues(others, r, verb) {
			return
		}
		rt.Val = w.referenceGuard(rt.GetVal(), t, r, firstKey, others)
		if w.err != nil {
			return
		}
	}
}

// referenceGuard returns the guarded value for v, written into key column
// j of r; others hold what the row gets in r's other columns (see the top
// of the file). Each of conflicts, when it holds, passes the value too (a
// proposed row that ON CONFLICT does not insert; see conflict.go).
func (w *walker) referenceGuard(v *pg.Node, t catalog.Table, r catalog.Reference, j int, others []*pg.Node, conflicts ...*pg.Node) *pg.Node {
	typ := t.ColumnType(r.Key.Columns[j])
	if typ == "" {
		w.fail(refusef("%s: the catalog does not know the type of %s; reload the catalog", t.QualifiedName(), r.Key.Columns[j]))
		return v
	}
	// Every key column's value as the guard reads it: the other columns'
	// cast to their own types, so that a parameter gets one type.
	values := make([]*pg.Node, len(r.Key.Columns))
	for k, col := range r.Key.Columns {
		if k == j {
			values[k] = guardValue()
			continue
		}
		ct := t.ColumnType(col)
		if ct == "" {
			w.fail(refusef("%s: the catalog does not know the type of %s; reload the catalog", t.QualifiedName(), col))
			return v
		}
		values[k] = castTo(proto.Clone(others[k]).(*pg.Node), ct)
	}
	tn, raise := w.fkRaise(typ, t, r, values)
	if w.err != nil {
		return v
	}
	in := w.keyExists(values, r.Ref, r.Key.RefColumns)
	if w.err != nil {
		return v
	}
	w.note(t.QualifiedName(), "%s references %s (foreign key %s): a written value must be a key of a %s row of your tenant, or NULL",
		strings.Join(r.Key.Columns, ", "), r.Ref.QualifiedName(), r.Key.Name, r.Ref.QualifiedName())
	var nulls []*pg.Node
	for _, val := range values {
		nulls = append(nulls, &pg.Node{Node: &pg.Node_NullTest{NullTest: &pg.NullTest{Arg: proto.Clone(val).(*pg.Node), Nulltesttype: pg.NullTestType_IS_NULL, Location: -1}}})
	}
	isNull := nulls[0]
	if len(nulls) > 1 {
		// MATCH SIMPLE: a key with a NULL column references nothing.
		isNull = pg.MakeBoolExprNode(pg.BoolExprType_OR_EXPR, nulls, -1)
	}
	check := &pg.Node{Node: &pg.Node_CaseExpr{CaseExpr: &pg.CaseExpr{
		Args: []*pg.Node{
			{Node: &pg.Node_CaseWhen{CaseWhen: &pg.CaseWhen{Expr: isNull, Result: guardValue(), Location: -1}}},
			{Node: &pg.Node_CaseWhen{CaseWhen: &pg.CaseWhen{Expr: in, Result: guardValue(), Location: -1}}},
		},
		Defresult: raise,
		Location:  -1,
	}}}
	for _, c := range conflicts {
		ce := check.GetCaseExpr()
		ce.Args = append(ce.Args, &pg.Node{Node: &pg.Node_CaseWhen{CaseWhen: &pg.CaseWhen{Expr: c, Result: guardValue(), Location: -1}}})
	}
	return guardSelect(v, tn, check)
}

// fkRaise returns the ELSE arm of a reference guard for a value of type
// typ: it fails with the key's violation, the key's values (values, in key
// order) in the message. The message is a sub-select so that Postgres
// cannot fold the cast at planning time, when the value is a constant: it
// fails only when the arm is reached.
func (w *walker) fkRaise(typ string, t catalog.Table, r catalog.Reference, values []*pg.Node) (*pg.TypeName, *pg.Node) {
	tree, err := pg.Parse("SELECT (SELECT NULL::" + typ + " WHERE ((SELECT ''::text) || " + guardAlias + ".v::text)::integer IS NULL)")
	if err != nil || len(tree.GetStmts()) != 1 {
		w.fail(refusef("column type %q cannot be written back: %v", typ, err))
		return nil, nil
	}
	raise := tree.GetStmts()[0].GetStmt().GetSelectStmt().GetTargetList()[0].GetResTarget().GetVal()
	concat := raise.GetSubLink().GetSubselect().GetSelectStmt().GetWhereClause().GetNullTest().GetArg().GetTypeCast().GetArg().GetAExpr()
	concat.GetLexpr().GetSubLink().GetSubselect().GetSelectStmt().GetTargetList()[0].GetResTarget().GetVal().GetTypeCast().GetArg().GetAConst().Val =
		&pg.A_Const_Sval{Sval: &pg.String{Sval: FKMarker + fkMeta(t, r) + ":"}}
	tn := proto.Clone(raise.GetSubLink().GetSubselect().GetSelectStmt().GetTargetList()[0].GetResTarget().GetVal().GetTypeCast().GetTypeName()).(*pg.TypeName)
	if len(values) > 1 {
		// Postgres's DETAIL lists the values in the key's order.
		var msg *pg.Node
		for _, val := range values {
			text := castTo(proto.Clone(val).(*pg.Node), "text")
			if msg == nil {
				msg = text
				continue
			}
			msg = concatNode(concatNode(msg, pg.MakeAConstStrNode(", ", -1)), text)
		}
		concat.Rexpr = msg
	}
	return tn, raise
}

// castTo casts n to the type written as typ.
func castTo(n *pg.Node, typ string) *pg.Node {
	tree, err := pg.Parse("SELECT NULL::" + typ)
	if err != nil || len(tree.GetStmts()) != 1 {
		return n
	}
	tn := tree.GetStmts()[0].GetStmt().GetSelectStmt().GetTargetList()[0].GetResTarget().GetVal().GetTypeCast().GetTypeName()
	return &pg.Node{Node: &pg.Node_TypeCast{TypeCast: &pg.TypeCast{Arg: n, TypeName: tn, Location: -1}}}
}

// concatNode is l || r.
func concatNode(l, r *pg.Node) *pg.Node {
	return pg.MakeAExprNode(pg.A_Expr_Kind_AEXPR_OP, []*pg.Node{pg.MakeStrNode("||")}, l, r, -1)
}
