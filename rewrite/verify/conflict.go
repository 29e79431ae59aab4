package verify

import (
	"errors"
	"fmt"
	"slices"

	pg "github.com/pganalyze/pg_query_go/v5"

	"github.com/tenantproxy/tenantproxy/catalog"
)

// A reference guard of a proposed row of INSERT ... ON CONFLICT may pass a
// value that is not one of the session's keys when an existing row, locked
// FOR KEY SHARE, matches the row on an arbiter key: ON CONFLICT then never
// inserts the row (it skips it, or updates the existing one), and nobody
// can delete the locked row or change its key before the INSERT reaches
// it. That holds only for a key that "=" decides, that the statement does
// not change itself, and for values that are what the row writes.

// ConflictKeys returns the arbiter keys of INSERT ... ON CONFLICT s into t
// whose match by "=" the statement cannot undo, as column lists: the keys
// its inference names (every unique key without one) that are plain
// (catalog.UniqueKey.Plain), with no column that DO UPDATE SET assigns
// unless the source is a single VALUES row; none when a WITH of the
// statement writes. nil when s has no ON CONFLICT.
func ConflictKeys(s *pg.InsertStmt, t catalog.Table) [][]string {
	oc := s.GetOnConflictClause()
	if oc == nil || modifiesData(s.GetWithClause()) {
		return nil
	}
	var keys []catalog.UniqueKey
	switch infer := oc.GetInfer(); {
	case infer == nil:
		keys = t.UniqueKeys
	case infer.GetConname() != "":
		for _, k := range t.UniqueKeys {
			if k.Constraint == infer.GetConname() {
				keys = append(keys, k)
			}
		}
	case infer.GetWhereClause() == nil:
		var cols []string
		for _, n := range infer.GetIndexElems() {
			e := n.GetIndexElem()
			if e == nil || e.GetName() == "" || e.GetExpr() != nil || len(e.GetCollation()) > 0 || len(e.GetOpclass()) > 0 {
				return nil
			}
			cols = append(cols, e.GetName())
		}
		for _, k := range t.UniqueKeys {
			if sameSet(k.Columns, cols) {
				keys = append(keys, k)
			}
		}
	}
	// DO UPDATE SET of a key's column could, in an earlier row of the same
	// statement, move the matching row's key away before the INSERT
	// reaches this one; a single VALUES row has no earlier row.
	var set []string
	if rows := s.GetSelectStmt().GetSelectStmt().GetValuesLists(); oc.GetAction() == pg.OnConflictAction_ONCONFLICT_UPDATE && len(rows) != 1 {
		for _, n := range oc.GetTargetList() {
			set = append(set, n.GetResTarget().GetName())
		}
	}
	var out [][]string
	for _, k := range keys {
		if k.Plain && len(k.Columns) > 0 && !slices.ContainsFunc(k.Columns, func(c string) bool { return slices.Contains(set, c) }) {
			out = append(out, k.Columns)
		}
	}
	return out
}

// sameSet reports whether a and b hold the same names.
func sameSet(a, b []string) bool {
	has := func(in []string) func(string) bool {
		return func(s string) bool { return !slices.Contains(in, s) }
	}
	return len(a) == len(b) && !slices.ContainsFunc(a, has(b)) && !slices.ContainsFunc(b, has(a))
}

// modifiesData reports a WITH clause with an INSERT, UPDATE, DELETE or
// MERGE (Postgres allows them only at the top level).
func modifiesData(wc *pg.WithClause) bool {
	for _, n := range wc.GetCtes() {
		switch n.GetCommonTableExpr().GetCtequery().GetNode().(type) {
		case *pg.Node_InsertStmt, *pg.Node_UpdateStmt, *pg.Node_DeleteStmt, *pg.Node_MergeStmt:
			return true
		}
	}
	return false
}

// proposedConflict returns the check of a conflict branch of a guard of
// column col in one proposed row (items, read with val) of INSERT s into t.
func proposedConflict(s *pg.InsertStmt, t catalog.Table, col string, items []*pg.Node, val func(*pg.Node) *pg.Node) func(*pg.CaseWhen, func(*pg.Node) bool, string) error {
	written := func(c string) *pg.Node {
		for i, n := range s.GetCols() {
			if n.GetResTarget().GetName() == c && len(n.GetResTarget().GetIndirection()) == 0 {
				w, _ := atPosition(items, i, len(s.GetCols()), val)
				return w
			}
		}
		return nil
	}
	return func(arm *pg.CaseWhen, isValue func(*pg.Node) bool, guard string) error {
		return conflictArm(s, t, col, written, arm, isValue, guard)
	}
}

// conflictArm checks a guard's branch past its key lookup, in a proposed
// row of INSERT s into t: WHEN EXISTS (SELECT ... FROM <t> x WHERE x.c =
// <what the row writes into c> ... FOR KEY SHARE OF x) THEN g.v, for every
// column c of one of ConflictKeys. col is the guarded column (whose value
// is g.v), written what the row writes into another column (nil when
// unclear), guard the guard's own derived table's name. The lookup's
// tenant filter is checked by the walk, as any read's.
func conflictArm(s *pg.InsertStmt, t catalog.Table, col string, written func(string) *pg.Node, arm *pg.CaseWhen, isValue func(*pg.Node) bool, guard string) error {
	keys := ConflictKeys(s, t)
	if len(keys) == 0 {
		return errors.New("a branch past the key's lookup, in a write with no ON CONFLICT key it may test")
	}
	if !isValue(arm.GetResult()) {
		return errors.New("a branch past the key's lookup writes something else")
	}
	sl := arm.GetExpr().GetSubLink()
	sub := sl.GetSubselect().GetSelectStmt()
	if sl.GetSubLinkType() != pg.SubLinkType_EXISTS_SUBLINK || sub == nil || sub.GetOp() != pg.SetOperation_SETOP_NONE || sub.GetWithClause() != nil ||
		len(sub.GetFromClause()) != 1 || len(sub.GetGroupClause()) > 0 || sub.GetHavingClause() != nil || len(sub.GetValuesLists()) > 0 ||
		sub.GetLimitCount() != nil || sub.GetLimitOffset() != nil {
		return errors.New("a conflict branch is not an EXISTS over one table")
	}
	rv := sub.GetFromClause()[0].GetRangeVar()
	if rv == nil || rv.GetSchemaname() != t.Schema || rv.GetRelname() != t.Name || rv.GetCatalogname() != "" {
		return fmt.Errorf("a conflict branch does not read %s", t.QualifiedName())
	}
	ref := tableRef{table: t, rv: rv, bare: true}
	if !lockedForKeyShare(sub, ref.refname()) {
		return errors.New("a conflict branch does not lock the row it finds FOR KEY SHARE")
	}
	matched := map[string]bool{}
	for _, cj := range conjuncts(sub.GetWhereClause()) {
		e := cj.GetAExpr()
		if e == nil || e.GetKind() != pg.A_Expr_Kind_AEXPR_OP || !isEquals(e.GetName()) {
			continue
		}
		for _, c := range t.Columns {
			if !ref.isColumn(e.GetLexpr(), c.Name) {
				continue
			}
			if c.Name == col && isValue(e.GetRexpr()) {
				matched[c.Name] = true
			}
			tc, w := e.GetRexpr().GetTypeCast(), written(c.Name)
			if c.Name != col && tc != nil && w != nil && sameExpr(tc.GetArg(), w) && isType(tc.GetTypeName(), c.Type) && readTwice(w, guard, ref.refname()) == "" {
				matched[c.Name] = true
			}
		}
	}
	for _, k := range keys {
		if !slices.ContainsFunc(k, func(c string) bool { return !matched[c] }) {
			return nil
		}
	}
	return errors.New("a conflict branch does not match the row, value for value, on an arbiter key of ON CONFLICT")
}

// lockedForKeyShare reports a SELECT whose one locking clause is FOR KEY
// SHARE of its FROM item name (or of every item), waiting for a lock.
func lockedForKeyShare(sub *pg.SelectStmt, name string) bool {
	if len(sub.GetLockingClause()) != 1 {
		return false
	}
	lc := sub.GetLockingClause()[0].GetLockingClause()
	if lc.GetStrength() != pg.LockClauseStrength_LCS_FORKEYSHARE || lc.GetWaitPolicy() != pg.LockWaitPolicy_LockWaitBlock {
		return false
	}
	for _, r := range lc.GetLockedRels() {
		if rv := r.GetRangeVar(); rv == nil || rv.GetSchemaname() != "" || rv.GetRelname() != name {
			return false
		}
	}
	return true
}

// isType reports whether tn names the type typ is written as (a column's
// type as the catalog has it).
func isType(tn *pg.TypeName, typ string) bool {
	tree, err := pg.Parse("SELECT NULL::" + typ)
	if err != nil || len(tree.GetStmts()) != 1 {
		return false
	}
	want := tree.GetStmts()[0].GetStmt().GetSelectStmt().GetTargetList()[0].GetResTarget().GetVal().GetTypeCast().GetTypeName()
	return want != nil && sameExpr(&pg.Node{Node: &pg.Node_TypeName{TypeName: tn}}, &pg.Node{Node: &pg.Node_TypeName{TypeName: want}})
}
