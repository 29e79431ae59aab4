package verify

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	pg "github.com/pganalyze/pg_query_go/v5"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/tenantproxy/tenantproxy/catalog"
)

// A tenant-bound table may be bound on several columns (claim dimensions):
// each must be confined. A path-bound table is confined by its via column
// being IN the set of its parent's keys read from the parent table, whose
// own confinement the generic walk checks where the sub-select sits.

// views returns one copy of a tenant-bound table per binding, with
// TenantColumn and Claim set to it.
func views(t catalog.Table) []catalog.Table {
	if len(t.Bindings) == 0 {
		return []catalog.Table{t}
	}
	out := make([]catalog.Table, len(t.Bindings))
	for i, b := range t.Bindings {
		out[i] = t
		out[i].TenantColumn, out[i].Claim = b.Column, b.Claim
	}
	return out
}

// confined reports (as nil) whether the conjuncts confine r on every
// binding, or through its parent for a path-bound table.
func (c *checker) confined(conj []*pg.Node, r tableRef) error {
	if r.table.Kind == catalog.PathBound {
		for _, n := range conj {
			if sl := n.GetSubLink(); sl != nil && r.isColumn(sl.GetTestexpr(), r.table.Via) && c.parentKeys(sl, r.table) == nil {
				c.mark(n)
				return nil
			}
		}
		return fmt.Errorf("no top-level conjunct %s.%s IN (SELECT <parent key> FROM %s WHERE <confined>)", r.refname(), r.table.Via, r.table.Parent)
	}
	for _, v := range views(r.table) {
		rv := r
		rv.table = v
		if err := c.confinedBinding(conj, rv); err != nil {
			return err
		}
	}
	return nil
}

// parentKeys checks that sl is "x IN (SELECT <key> FROM <parent>)": an ANY
// sub-link with "=" whose sub-select reads only the parent table of path-
// bound table t, schema-qualified (never a CTE), and returns its key column.
// The sub-select's WHERE is checked as a query level of its own.
func (c *checker) parentKeys(sl *pg.SubLink, t catalog.Table) error {
	if sl.GetSubLinkType() != pg.SubLinkType_ANY_SUBLINK || (len(sl.GetOperName()) > 0 && !isEquals(sl.GetOperName())) {
		return errNotPredicate
	}
	sel := sl.GetSubselect().GetSelectStmt()
	if sel == nil || sel.GetOp() != pg.SetOperation_SETOP_NONE || sel.GetWithClause() != nil || len(sel.GetFromClause()) != 1 ||
		len(sel.GetTargetList()) != 1 || len(sel.GetGroupClause()) > 0 || sel.GetHavingClause() != nil || len(sel.GetValuesLists()) > 0 {
		return errNotPredicate
	}
	rv := sel.GetFromClause()[0].GetRangeVar()
	parent, ok := c.p.Snapshot.ParentOf(t)
	if rv == nil || !ok || rv.GetSchemaname() != parent.Schema || rv.GetRelname() != parent.Name || rv.GetCatalogname() != "" {
		return errNotPredicate
	}
	ref := tableRef{table: parent, rv: rv, bare: true}
	if !ref.isColumn(sel.GetTargetList()[0].GetResTarget().GetVal(), t.ParentKey) || len(sel.GetTargetList()[0].GetResTarget().GetIndirection()) > 0 {
		return errNotPredicate
	}
	return nil
}

// guardShape reads a guard's frame, (SELECT <CASE> FROM (SELECT <expr>
// AS v) AS g) with nothing else: the CASE, and a test for g.v (inside the
// scalar sub-select, g is the only FROM item, so g.v is the derived table's
// one column). why says what is wrong when it is not that.
func guardShape(v *pg.Node) (ce *pg.CaseExpr, isValue func(*pg.Node) bool, why string) {
	sl := v.GetSubLink()
	sel := sl.GetSubselect().GetSelectStmt()
	if sl == nil || sl.GetSubLinkType() != pg.SubLinkType_EXPR_SUBLINK || sel == nil || sel.GetOp() != pg.SetOperation_SETOP_NONE ||
		len(sel.GetTargetList()) != 1 || len(sel.GetFromClause()) != 1 || sel.GetWithClause() != nil || sel.GetWhereClause() != nil {
		return nil, nil, "not a one-column sub-select over one FROM item"
	}
	from := sel.GetFromClause()[0].GetRangeSubselect()
	inner := from.GetSubquery().GetSelectStmt()
	if from == nil || from.GetLateral() || from.GetAlias().GetAliasname() == "" || len(from.GetAlias().GetColnames()) > 0 ||
		inner == nil || len(inner.GetTargetList()) != 1 || inner.GetTargetList()[0].GetResTarget().GetName() == "" {
		return nil, nil, "its FROM item is not a one-column derived table"
	}
	alias, col := from.GetAlias().GetAliasname(), inner.GetTargetList()[0].GetResTarget().GetName()
	isValue = func(n *pg.Node) bool {
		f := stringsOf(n.GetColumnRef().GetFields())
		return len(f) == 2 && len(n.GetColumnRef().GetFields()) == 2 && f[0] == alias && f[1] == col
	}
	ce = sel.GetTargetList()[0].GetResTarget().GetVal().GetCaseExpr()
	if ce == nil || ce.GetArg() != nil {
		return nil, nil, "its output is not a CASE"
	}
	return ce, isValue, ""
}

// parentGuarded checks a value written to a path-bound table's via column:
//
//	(SELECT CASE WHEN g.v IN (SELECT <key> FROM <parent> ...) THEN g.v ELSE (SELECT NULL ...) END
//	 FROM (SELECT <expr> AS v) AS g)
//
// so the column gets a key of one of the session's parent rows, or NULL
// (the rewriter's ELSE arm raises an error; NULL would only orphan the row).
// Inside the scalar sub-select, g is the only FROM item, so g.v is the
// derived table's one column.
//
// In a proposed row of INSERT ... ON CONFLICT, conflict checks the
// branches between the lookup and the NULL branch (conflictArm); elsewhere
// there may be none.
func (c *checker) parentGuarded(v *pg.Node, t catalog.Table, conflict ...func(*pg.CaseWhen, func(*pg.Node) bool, string) error) error {
	bad := func(why string) error {
		return refuse("%s.%s is written without a valid parent guard (%s); the rewriter must wrap the value", t.QualifiedName(), t.Via, why)
	}
	ce, isValue, why := guardShape(v)
	if why != "" {
		return bad(why)
	}
	args := ce.GetArgs()
	if len(args) == 0 {
		return bad("its output is not a CASE with a branch")
	}
	if arm := args[len(args)-1].GetCaseWhen(); len(args) > 1 && arm.GetExpr().GetNullTest() != nil {
		// WHEN g.v IS NULL THEN <a failure>: NULL refused apart from
		// other values (the path's foreign-key violation).
		nt := arm.GetExpr().GetNullTest()
		if nt.GetNulltesttype() != pg.NullTestType_IS_NULL || !isValue(nt.GetArg()) || !yieldsNull(arm.GetResult()) {
			return bad("its NULL branch may write a value")
		}
		args = args[:len(args)-1]
	}
	for _, arm := range args[1:] {
		if len(conflict) == 0 {
			return bad("its output is not a CASE of one or two branches")
		}
		if err := conflict[0](arm.GetCaseWhen(), isValue, guardAlias(v)); err != nil {
			return bad(err.Error())
		}
	}
	w := args[0].GetCaseWhen()
	parent, _ := c.p.Snapshot.ParentOf(t)
	in := w.GetExpr().GetSubLink()
	// EXISTS (one key looked up), as the rewriter writes it, or IN over
	// the parent's keys: both confine the value to the session's parents.
	looked := keyLookup(in, parent, []string{t.ParentKey}, []func(*pg.Node) bool{isValue}) == nil ||
		in != nil && isValue(in.GetTestexpr()) && c.parentKeys(in, t) == nil
	if !isValue(w.GetResult()) || !looked {
		return bad("the CASE does not test the value it writes against the parent's keys")
	}
	if !yieldsNull(ce.GetDefresult()) {
		return bad("the ELSE arm may write a value")
	}
	return nil
}

// yieldsNull reports whether n is a sub-select whose only output is a NULL
// constant (possibly cast): it yields NULL or fails.
func yieldsNull(n *pg.Node) bool {
	sl := n.GetSubLink()
	sel := sl.GetSubselect().GetSelectStmt()
	if sl == nil || sl.GetSubLinkType() != pg.SubLinkType_EXPR_SUBLINK || sel == nil || len(sel.GetTargetList()) != 1 ||
		sel.GetOp() != pg.SetOperation_SETOP_NONE || len(sel.GetFromClause()) > 0 {
		return false
	}
	val := sel.GetTargetList()[0].GetResTarget().GetVal()
	if tc := val.GetTypeCast(); tc != nil {
		val = tc.GetArg()
	}
	return val.GetAConst().GetIsnull()
}

// tenantAssignments checks a SET list (constOK false for ON CONFLICT DO
// UPDATE) of the row self names: every binding column keeps an allowed
// tenant; a path-bound via column gets a guarded value.
func (c *checker) tenantAssignments(set []*pg.Node, t catalog.Table, constOK bool, self string) error {
	if t.Kind == catalog.PathBound {
		for _, n := range set {
			rt := n.GetResTarget()
			if rt == nil {
				return refuse("SET item %s is not a column assignment", nodeName(n))
			}
			if rt.GetName() != t.Via {
				continue
			}
			if len(rt.GetIndirection()) > 0 {
				return refuse("SET assigns part of %s.%s", t.QualifiedName(), t.Via)
			}
			if err := c.parentGuarded(rt.GetVal(), t); err != nil {
				return err
			}
			c.mark(rt.GetVal())
		}
		return c.referenceAssignments(set, t, self)
	}
	for _, v := range views(t) {
		if err := c.assignBinding(set, v, constOK); err != nil {
			return err
		}
	}
	return c.referenceAssignments(set, t, self)
}

// insertValues checks what an INSERT writes into a bound table's binding
// columns (or a path-bound table's via column).
func (c *checker) insertValues(s *pg.InsertStmt, t catalog.Table) error {
	if err := c.referenceInserts(s, t); err != nil {
		return err
	}
	if t.Kind != catalog.PathBound {
		for _, v := range views(t) {
			if err := c.insertBinding(s, v); err != nil {
				return err
			}
		}
		return nil
	}
	pos := -1
	for i, n := range s.GetCols() {
		if rt := n.GetResTarget(); rt.GetName() == t.Via {
			if len(rt.GetIndirection()) > 0 || pos >= 0 {
				return refuse("INSERT into %s names %s more than once or in part", t.QualifiedName(), t.Via)
			}
			pos = i
		}
	}
	sel := s.GetSelectStmt().GetSelectStmt()
	if pos < 0 || sel == nil || sel.GetOp() != pg.SetOperation_SETOP_NONE {
		return refuse("INSERT into path-bound table %s must list %s and give VALUES or a single SELECT", t.QualifiedName(), t.Via)
	}
	return eachSourceRow(sel, func(items []*pg.Node, val func(*pg.Node) *pg.Node, _ string) error {
		n, ok := atPosition(items, pos, len(s.GetCols()), val)
		if !ok {
			return refuse("INSERT into %s: cannot tell which value feeds %s", t.QualifiedName(), t.Via)
		}
		if err := c.parentGuarded(n, t, proposedConflict(s, t, t.Via, items, val)); err != nil {
			return err
		}
		c.mark(n)
		return nil
	})
}

// keyLookup checks that sl is EXISTS (SELECT ... FROM <table> WHERE
// <table>.<key1> = <value1> AND ... AND ...): a sub-select of the one table,
// schema-qualified, with a top-level conjunct tying each key column to its
// value (matches). The table's tenant filter in the same WHERE is checked
// as for any read, by the walk of the sub-select as a query level of its
// own.
func keyLookup(sl *pg.SubLink, table catalog.Table, keys []string, matches []func(*pg.Node) bool) error {
	if sl == nil || sl.GetSubLinkType() != pg.SubLinkType_EXISTS_SUBLINK {
		return errors.New("not an EXISTS lookup")
	}
	sub := sl.GetSubselect().GetSelectStmt()
	if sub == nil || sub.GetOp() != pg.SetOperation_SETOP_NONE || sub.GetWithClause() != nil || len(sub.GetFromClause()) != 1 ||
		len(sub.GetGroupClause()) > 0 || sub.GetHavingClause() != nil || len(sub.GetValuesLists()) > 0 || sub.GetLimitCount() != nil || sub.GetLimitOffset() != nil {
		return errors.New("the lookup is not a plain sub-select of one table")
	}
	rv := sub.GetFromClause()[0].GetRangeVar()
	if table.Name == "" || rv == nil || rv.GetSchemaname() != table.Schema || rv.GetRelname() != table.Name || rv.GetCatalogname() != "" {
		return fmt.Errorf("the keys are not read from %s", table.QualifiedName())
	}
	ref := tableRef{table: table, rv: rv, bare: true}
	for k, key := range keys {
		tied := false
		for _, cj := range conjuncts(sub.GetWhereClause()) {
			e := cj.GetAExpr()
			if e != nil && e.GetKind() == pg.A_Expr_Kind_AEXPR_OP && isEquals(e.GetName()) && ref.isColumn(e.GetLexpr(), key) && matches[k](e.GetRexpr()) {
				tied = true
			}
		}
		if !tied {
			return fmt.Errorf("the lookup does not match %s.%s to the value", table.QualifiedName(), key)
		}
	}
	return nil
}

// guardedKeys are t's foreign keys a write must guard (catalog.RefGuarded),
// and those it may not set at all (keys to tables the catalog does not
// list: the rewriter refuses them).
func (c *checker) guardedKeys(t catalog.Table) (guarded, forbidden []catalog.Reference) {
	for _, r := range c.p.Snapshot.References(t) {
		switch {
		case r.Status == catalog.RefUncatalogued:
			forbidden = append(forbidden, r)
		case r.Status == catalog.RefGuarded:
			guarded = append(guarded, r)
		}
	}
	return guarded, forbidden
}

// keyColumn returns the reference whose columns include name, if any.
func keyColumn(refs []catalog.Reference, name string) (catalog.Reference, bool) {
	for _, r := range refs {
		if slices.Contains(r.Key.Columns, name) {
			return r, true
		}
	}
	return catalog.Reference{}, false
}

// referenceAssignments checks a SET list of the row self names: the first
// column of every guarded key it sets gets a guard of the whole key (the
// values the other columns get, or keep); no forbidden key column is set.
func (c *checker) referenceAssignments(set []*pg.Node, t catalog.Table, self string) error {
	guarded, forbidden := c.guardedKeys(t)
	items := map[string]*pg.ResTarget{}
	for _, n := range set {
		rt := n.GetResTarget()
		if rt == nil {
			continue // tenantAssignments refuses it
		}
		if r, ok := keyColumn(forbidden, rt.GetName()); ok {
			return refuse("%s sets %s, a column of foreign key %s, which the rewriter cannot guard", t.QualifiedName(), rt.GetName(), r.Key.Name)
		}
		if _, ok := keyColumn(guarded, rt.GetName()); ok {
			if len(rt.GetIndirection()) > 0 || rt.GetVal().GetMultiAssignRef() != nil {
				return refuse("SET assigns %s.%s, a key column, in part or from a row", t.QualifiedName(), rt.GetName())
			}
			if items[rt.GetName()] != nil {
				return refuse("SET assigns %s.%s twice", t.QualifiedName(), rt.GetName())
			}
			items[rt.GetName()] = rt
		}
	}
	for _, r := range guarded {
		j := -1
		values := make([]*pg.Node, len(r.Key.Columns))
		for k, col := range r.Key.Columns {
			rt := items[col]
			switch {
			case rt == nil:
				values[k] = pg.MakeColumnRefNode([]*pg.Node{pg.MakeStrNode(self), pg.MakeStrNode(col)}, -1)
			case j < 0:
				j = k
			default:
				values[k] = rt.GetVal()
			}
		}
		if j < 0 {
			continue
		}
		v := items[r.Key.Columns[j]].GetVal()
		if v.GetSetToDefault() != nil && len(r.Key.Columns) == 1 && !keyDefaulted(t.ColumnDefault(r.Key.Columns[0])) {
			continue // the column's default, which names no row
		}
		values[j] = nil
		if err := c.referenceGuarded(v, t, r, j, values); err != nil {
			return err
		}
		c.mark(v)
	}
	return nil
}

// referenceInserts checks what an INSERT writes into guarded key columns.
func (c *checker) referenceInserts(s *pg.InsertStmt, t catalog.Table) error {
	guarded, forbidden := c.guardedKeys(t)
	if len(guarded)+len(forbidden) == 0 {
		return nil
	}
	sel := s.GetSelectStmt().GetSelectStmt()
	if len(s.GetCols()) == 0 && sel != nil {
		return refuse("INSERT into %s without a column list sets foreign keys the rewriter must guard", t.QualifiedName())
	}
	for _, n := range s.GetCols() {
		if r, ok := keyColumn(forbidden, n.GetResTarget().GetName()); ok {
			return refuse("INSERT into %s sets %s, a column of foreign key %s, which the rewriter cannot guard", t.QualifiedName(), n.GetResTarget().GetName(), r.Key.Name)
		}
	}
	for _, r := range guarded {
		pos := make([]int, len(r.Key.Columns))
		set := 0
		for k, col := range r.Key.Columns {
			pos[k] = -1
			for i, n := range s.GetCols() {
				if n.GetResTarget().GetName() != col {
					continue
				}
				if len(n.GetResTarget().GetIndirection()) > 0 || pos[k] >= 0 {
					return refuse("INSERT into %s: %s, a key column, is set in part or twice", t.QualifiedName(), col)
				}
				pos[k] = i
				set++
			}
		}
		defaulted := true
		for _, col := range r.Key.Columns {
			defaulted = defaulted && keyDefaulted(t.ColumnDefault(col))
		}
		switch {
		case set == 0 && defaulted:
			return refuse("INSERT into %s leaves foreign key %s to defaults that name a row; the rewriter must write them out and guard them", t.QualifiedName(), r.Key.Name)
		case set == 0:
			continue
		case set < len(pos):
			return refuse("INSERT into %s sets only part of foreign key %s", t.QualifiedName(), r.Key.Name)
		case sel == nil || sel.GetOp() != pg.SetOperation_SETOP_NONE:
			return refuse("INSERT into %s: %s must be set from VALUES or a single SELECT", t.QualifiedName(), r.Key.Columns[0])
		}
		err := eachSourceRow(sel, func(items []*pg.Node, val func(*pg.Node) *pg.Node, _ string) error {
			values := make([]*pg.Node, len(pos))
			for k, p := range pos {
				v, ok := atPosition(items, p, len(s.GetCols()), val)
				if !ok {
					return refuse("INSERT into %s: cannot tell which value feeds %s", t.QualifiedName(), r.Key.Columns[k])
				}
				values[k] = v
			}
			v := values[0]
			if v.GetSetToDefault() != nil && len(pos) == 1 && !keyDefaulted(t.ColumnDefault(r.Key.Columns[0])) {
				return nil
			}
			values[0] = nil
			if err := c.referenceGuarded(v, t, r, 0, values, proposedConflict(s, t, r.Key.Columns[0], items, val)); err != nil {
				return err
			}
			c.mark(v)
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// referenceGuarded checks a value written to the column of guarded key r:
//
//	(SELECT CASE WHEN g.v IS NULL THEN g.v WHEN g.v IN (SELECT <key> FROM <referenced> ...) THEN g.v
//	             ELSE (SELECT NULL ...) END
//	 FROM (SELECT <expr> AS v) AS g)
//
// so the column gets NULL or a key of one of the session's rows of the
// referenced table (whose filter the general walk checks).
//
// In a proposed row of INSERT ... ON CONFLICT, conflict checks each branch
// after the second (conflictArm); elsewhere there may be none.
func (c *checker) referenceGuarded(v *pg.Node, t catalog.Table, r catalog.Reference, j int, others []*pg.Node, conflict ...func(*pg.CaseWhen, func(*pg.Node) bool, string) error) error {
	col := strings.Join(r.Key.Columns, ", ")
	bad := func(why string) error {
		return refuse("%s.%s (foreign key %s) is written without a valid reference guard (%s); the rewriter must wrap the value", t.QualifiedName(), col, r.Key.Name, why)
	}
	ce, isValue, why := guardShape(v)
	if why != "" {
		return bad(why)
	}
	if len(ce.GetArgs()) < 2 || len(ce.GetArgs()) > 2 && len(conflict) == 0 {
		return bad("its output is not a two-branch CASE")
	}
	for _, arm := range ce.GetArgs()[2:] {
		if err := conflict[0](arm.GetCaseWhen(), isValue, guardAlias(v)); err != nil {
			return bad(err.Error())
		}
	}
	// matches[k] recognises what the guard reads as key column k's value:
	// the guarded value, or the other column's own value cast to a type.
	matches := make([]func(*pg.Node) bool, len(r.Key.Columns))
	for k := range matches {
		if k == j {
			matches[k] = isValue
			continue
		}
		want := others[k]
		matches[k] = func(n *pg.Node) bool {
			tc := n.GetTypeCast()
			return want != nil && tc != nil && sameExpr(tc.GetArg(), want)
		}
		if want != nil {
			if why := readTwice(want, guardAlias(v), lookupName(ce.GetArgs())); why != "" {
				return bad(r.Key.Columns[k] + " is written as " + why)
			}
		}
	}
	nullArm, keyArm := ce.GetArgs()[0].GetCaseWhen(), ce.GetArgs()[1].GetCaseWhen()
	tests := []*pg.Node{nullArm.GetExpr()}
	if b := nullArm.GetExpr().GetBoolExpr(); b != nil && b.GetBoolop() == pg.BoolExprType_OR_EXPR && len(matches) > 1 {
		tests = b.GetArgs()
	}
	if len(tests) != len(matches) || !isValue(nullArm.GetResult()) {
		return bad("its first branch does not pass a key with a NULL alone")
	}
	for k, test := range tests {
		nt := test.GetNullTest()
		if nt == nil || nt.GetNulltesttype() != pg.NullTestType_IS_NULL || !matches[k](nt.GetArg()) {
			return bad("its first branch does not pass a key with a NULL alone")
		}
	}
	if !isValue(keyArm.GetResult()) {
		return bad("its second branch writes something else")
	}
	if err := keyLookup(keyArm.GetExpr().GetSubLink(), r.Ref, r.Key.RefColumns, matches); err != nil {
		return bad(err.Error())
	}
	if !yieldsNull(ce.GetDefresult()) {
		return bad("the ELSE arm may write a value")
	}
	return nil
}

// readTwice says why a value a guard reads again, inside its own FROM
// items, may not be what the row gets, or "" when it is: a constant, a
// parameter or a column qualified by a name (t.col) that neither the
// guard's derived table nor the looked-up table takes. A bare column
// could mean the looked-up table's; anything else may change between
// reads.
func readTwice(n *pg.Node, taken ...string) string {
	switch x := n.GetNode().(type) {
	case *pg.Node_AConst, *pg.Node_ParamRef:
		return ""
	case *pg.Node_TypeCast:
		return readTwice(x.TypeCast.GetArg(), taken...)
	case *pg.Node_ColumnRef:
		f := stringsOf(x.ColumnRef.GetFields())
		switch {
		case len(f) != 2 || len(x.ColumnRef.GetFields()) != 2:
			return "a column not written as table.column"
		case slices.Contains(taken, f[0]):
			return "a column of " + f[0] + ", a name the guard itself takes"
		}
		return ""
	}
	return "an expression that may change between reads"
}

// guardAlias is the name of a guard's derived table (guardShape has
// checked the frame).
func guardAlias(v *pg.Node) string {
	return v.GetSubLink().GetSubselect().GetSelectStmt().GetFromClause()[0].GetRangeSubselect().GetAlias().GetAliasname()
}

// lookupName is how the lookups among a guard's branches name the table
// they read (keyLookup checks that there is exactly one).
func lookupName(arms []*pg.Node) string {
	for _, a := range arms {
		sub := a.GetCaseWhen().GetExpr().GetSubLink().GetSubselect().GetSelectStmt()
		if from := sub.GetFromClause(); len(from) == 1 && from[0].GetRangeVar() != nil {
			rv := from[0].GetRangeVar()
			if a := rv.GetAlias().GetAliasname(); a != "" {
				return a
			}
			return rv.GetRelname()
		}
	}
	return ""
}

// sameExpr reports two expressions equal but for their places in the text.
func sameExpr(a, b *pg.Node) bool {
	a, b = proto.Clone(a).(*pg.Node), proto.Clone(b).(*pg.Node)
	clearLocations(a.ProtoReflect())
	clearLocations(b.ProtoReflect())
	return proto.Equal(a, b)
}

// clearLocations zeroes every location field below m.
func clearLocations(m protoreflect.Message) {
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		switch {
		case fd.Name() == "location" && fd.Kind() == protoreflect.Int32Kind:
			m.Clear(fd)
		case fd.Kind() == protoreflect.MessageKind && fd.IsList():
			l := v.List()
			for i := 0; i < l.Len(); i++ {
				clearLocations(l.Get(i).Message())
			}
		case fd.Kind() == protoreflect.MessageKind && !fd.IsMap():
			clearLocations(v.Message())
		}
		return true
	})
}

// refName is how a write's statement names its target row: its alias, or
// its table's name.
func refName(rv *pg.RangeVar) string {
	if a := rv.GetAlias().GetAliasname(); a != "" {
		return a
	}
	return rv.GetRelname()
}
