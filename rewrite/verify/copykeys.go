package verify

import (
	"fmt"

	pg "github.com/pganalyze/pg_query_go/v5"
)

// CopyKeysTable is the session-private table through which the proxy
// passes the foreign keys of a COPY's rows to their check.
const CopyKeysTable = "tenantproxy_copy_keys"

// CopyKeyColumn names the keys table's column of key i's column k: v0,
// v0_1, ..., v1, ...
func CopyKeyColumn(i, k int) string {
	if k == 0 {
		return fmt.Sprintf("v%d", i)
	}
	return fmt.Sprintf("v%d_%d", i, k)
}

// copyKeysFrom is the one FROM item the check may read: the keys the
// proxy itself wrote, in the client's row order.
const copyKeysFrom = "SELECT * FROM pg_temp." + CopyKeysTable + " ORDER BY n, c OFFSET 0"

// CheckCopyKeys checks the statement that checks the foreign keys of a COPY
// into schema.table after its rows:
//
//	SELECT count(ROW(<guard of v0>, ...)) FROM (SELECT * FROM pg_temp.tenantproxy_copy_keys ORDER BY n, c OFFSET 0) AS tenantproxy_copy_keys
//
// where the guard of v<i> is exactly a reference guard (as a write's value
// gets) of one of table's guarded keys over tenantproxy_copy_keys.v<i>, and
// nothing else of the statement reads a table.
func CheckCopyKeys(sql, schema, table string, p Policy) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("verify: %w: internal error: %v (refusing; report this statement)", ErrUnverified, r)
		}
	}()
	if p.Snapshot == nil {
		return refuse("no catalog snapshot in the policy; load the catalog before checking statements")
	}
	t, ok := p.Snapshot.Lookup(schema, table)
	if !ok {
		return refuse("COPY keys check for %s.%s, a table the catalog does not list", schema, table)
	}
	tree, err := pg.Parse(sql)
	if err != nil || len(tree.GetStmts()) != 1 {
		return refuse("the COPY keys check is not one statement (%v)", err)
	}
	sel := tree.GetStmts()[0].GetStmt().GetSelectStmt()
	if sel == nil || sel.GetOp() != pg.SetOperation_SETOP_NONE || len(sel.GetTargetList()) != 1 || len(sel.GetFromClause()) != 1 ||
		sel.GetWhereClause() != nil || sel.GetWithClause() != nil || len(sel.GetGroupClause()) > 0 || sel.GetHavingClause() != nil ||
		len(sel.GetSortClause()) > 0 || sel.GetLimitCount() != nil || sel.GetLimitOffset() != nil || len(sel.GetDistinctClause()) > 0 ||
		len(sel.GetWindowClause()) > 0 || len(sel.GetLockingClause()) > 0 || sel.GetIntoClause() != nil {
		return refuse("the COPY keys check is not SELECT count(ROW(...)) FROM <the keys>")
	}
	from := sel.GetFromClause()[0].GetRangeSubselect()
	if from == nil || from.GetLateral() || from.GetAlias().GetAliasname() != CopyKeysTable || len(from.GetAlias().GetColnames()) > 0 {
		return refuse("the COPY keys check reads something else than the keys")
	}
	inner, err := pg.Deparse(&pg.ParseResult{Stmts: []*pg.RawStmt{{Stmt: from.GetSubquery()}}})
	if err != nil || inner != copyKeysFrom {
		return refuse("the COPY keys check reads %q, not the keys", inner)
	}
	fc := sel.GetTargetList()[0].GetResTarget().GetVal().GetFuncCall()
	if fc == nil || len(fc.GetFuncname()) != 1 || fc.GetFuncname()[0].GetString_().GetSval() != "count" || len(fc.GetArgs()) != 1 ||
		fc.GetAggFilter() != nil || fc.GetOver() != nil || fc.GetAggDistinct() || fc.GetAggStar() || len(fc.GetAggOrder()) > 0 || fc.GetArgs()[0].GetRowExpr() == nil {
		return refuse("the COPY keys check does not count one ROW of guards")
	}
	guarded, _ := (&checker{p: p}).guardedKeys(t)
	c := &checker{p: p, generated: map[*pg.Node]bool{}}
	for i, g := range fc.GetArgs()[0].GetRowExpr().GetArgs() {
		ok := false
		for _, r := range guarded {
			others := make([]*pg.Node, len(r.Key.Columns))
			for k := 1; k < len(others); k++ {
				others[k] = pg.MakeColumnRefNode([]*pg.Node{pg.MakeStrNode(CopyKeysTable), pg.MakeStrNode(CopyKeyColumn(i, k))}, -1)
			}
			if c.referenceGuarded(g, t, r, 0, others) == nil {
				ok = true
				break
			}
		}
		value := g.GetSubLink().GetSubselect().GetSelectStmt().GetFromClause()[0].GetRangeSubselect().GetSubquery().GetSelectStmt().GetTargetList()[0].GetResTarget().GetVal().GetTypeCast().GetArg()
		f := stringsOf(value.GetColumnRef().GetFields())
		if !ok || len(f) != 2 || f[0] != CopyKeysTable || f[1] != CopyKeyColumn(i, 0) {
			return refuse("value %d of the COPY keys check is not a reference guard of %s over %s.%s", i+1, t.QualifiedName(), CopyKeysTable, CopyKeyColumn(i, 0))
		}
		if err := c.visitNode(g); err != nil {
			return err
		}
	}
	// The barrier has nothing to add: the one FROM item is the keys, and
	// inside the guards it stops at them, as in a write.
	return nil
}
