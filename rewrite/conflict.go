package rewrite

import (
	"slices"

	pg "github.com/pganalyze/pg_query_go/v5"
	"google.golang.org/protobuf/proto"

	"github.com/tenantproxy/tenantproxy/catalog"
	"github.com/tenantproxy/tenantproxy/rewrite/verify"
)

// INSERT ... ON CONFLICT never inserts a proposed row that an existing row
// matches on an arbiter key: it skips it, or updates the existing row. On
// the tenant's own database such a row's foreign keys are never checked,
// so a reference guard of a proposed row also passes the value when one of
// the session's rows matches the row on an arbiter key:
//
//	WHEN EXISTS (SELECT 1 FROM <target> tenantproxy_ref WHERE tenantproxy_ref.<c> = <the row's c> ...
//	             AND <target's filter> FOR KEY SHARE OF tenantproxy_ref) THEN g.v
//
// after the key's own lookup, so that it runs only for a value that would
// fail. FOR KEY SHARE keeps the matching row, and its key, in place until
// the transaction ends: nobody can delete it or change its key before the
// INSERT reaches it, so the row is still not inserted. Only keys that "="
// decides (catalog.UniqueKey.Plain) are used, none that the statement
// could change itself (a data-modifying WITH, or DO UPDATE SET of one of
// the key's columns; verify.ConflictKeys), and only values the guard can
// read again.

// proposed is what the conflict arms of an INSERT's guards read: its
// arbiter keys (verify.ConflictKeys), its source rows, and the columns
// whose items get guards of their own (not read again). The zero value
// (no ON CONFLICT key) builds no arms.
type proposed struct {
	ins     *pg.InsertStmt
	t       catalog.Table
	keys    [][]string
	source  [][]*pg.Node
	wrapped map[string]bool
}

// proposedRows prepares the conflict arms of INSERT ins into t, whose
// source is sel; nothing is built when it has no ON CONFLICT key.
func (w *walker) proposedRows(ins *pg.InsertStmt, t catalog.Table, sel *pg.SelectStmt) proposed {
	keys := verify.ConflictKeys(ins, t)
	if len(keys) == 0 {
		return proposed{}
	}
	wrapped := map[string]bool{}
	if t.Kind == catalog.PathBound {
		wrapped[t.Via] = true
	}
	for _, r := range w.guardedReferences(t) {
		wrapped[r.Key.Columns[0]] = true
	}
	return proposed{ins: ins, t: t, keys: keys, source: sourceRows(sel), wrapped: wrapped}
}

// arms returns the conflict arms of a guard of column col in row row.
func (p proposed) arms(w *walker, row int, col string) []*pg.Node {
	if len(p.keys) == 0 || row >= len(p.source) {
		return nil
	}
	return w.conflictArms(p.t, p.keys, func(c string) *pg.Node {
		switch {
		case c == col:
			return guardValue()
		case p.wrapped[c]:
			return nil
		}
		return rowValue(p.t, p.ins.GetCols(), p.source[row], c)
	})
}

// conflictArms returns a guard's extra conditions for one proposed row of
// an INSERT into t: a lookup, locked, of the session's row that matches
// it on each key. value gives what the guard reads as the row's value of
// a column, nil when it cannot read it again (that key is left out).
func (w *walker) conflictArms(t catalog.Table, keys [][]string, value func(col string) *pg.Node) []*pg.Node {
	var out []*pg.Node
	for _, key := range keys {
		vals := make([]*pg.Node, len(key))
		for i, col := range key {
			if vals[i] = value(col); vals[i] == nil {
				break
			}
		}
		if slices.Contains(vals, nil) {
			continue
		}
		in := w.keyExists(vals, t, key)
		if w.err != nil {
			return nil
		}
		sel := in.GetSubLink().GetSubselect().GetSelectStmt()
		sel.LockingClause = []*pg.Node{{Node: &pg.Node_LockingClause{LockingClause: &pg.LockingClause{
			LockedRels: []*pg.Node{{Node: &pg.Node_RangeVar{RangeVar: &pg.RangeVar{Relname: lookupAlias, Inh: true, Relpersistence: "p", Location: -1}}}},
			Strength:   pg.LockClauseStrength_LCS_FORKEYSHARE,
			WaitPolicy: pg.LockWaitPolicy_LockWaitBlock,
		}}}}
		out = append(out, in)
	}
	return out
}

// rowValue reads, for a conflict arm, what a proposed row writes into
// column col: the item feeding it, cast to the column's type; nil when the
// guard cannot read it again.
func rowValue(t catalog.Table, cols []*pg.Node, items []*pg.Node, col string) *pg.Node {
	for i, c := range cols {
		if c.GetResTarget().GetName() != col || len(c.GetResTarget().GetIndirection()) > 0 {
			continue
		}
		item, ok := tenantItem(items, i, len(cols))
		if !ok {
			return nil
		}
		typ := t.ColumnType(col)
		if typ == "" || item.GetSetToDefault() != nil || reReadable(item) != "" {
			return nil
		}
		return castTo(proto.Clone(item).(*pg.Node), typ)
	}
	return nil
}

// sourceRows are the items of each row an INSERT's source gives: each
// VALUES row, or the single SELECT's outputs.
func sourceRows(sel *pg.SelectStmt) [][]*pg.Node {
	if rows := sel.GetValuesLists(); len(rows) > 0 {
		out := make([][]*pg.Node, len(rows))
		for i, row := range rows {
			out[i] = row.GetList().GetItems()
		}
		return out
	}
	var vals []*pg.Node
	for _, rt := range sel.GetTargetList() {
		vals = append(vals, rt.GetResTarget().GetVal())
	}
	return [][]*pg.Node{vals}
}
