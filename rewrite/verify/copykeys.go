package verify

import (
	"fmt"

	pg "github.com/pganalyze/pg_query_go/v5"

	"github.com/tenantproxy/tenantproxy/catalog"
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

// CheckCopy checks a COPY ... FROM STDIN (copySQL) and the statement that
// checks its rows' keys after them (keysSQL; see checkKeys). A path-bound
// table may be filled so: its rows are scoped by that check, whose first
// value must be the path's guard of every row's parent.
func CheckCopy(copySQL, keysSQL string, p Policy) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("verify: %w: internal error: %v (refusing; report this statement)", ErrUnverified, r)
		}
	}()
	if p.Snapshot == nil {
		return refuse("no catalog snapshot in the policy; load the catalog before checking statements")
	}
	tree, err := pg.Parse(copySQL)
	if err != nil || len(tree.GetStmts()) != 1 || tree.GetStmts()[0].GetStmt().GetCopyStmt() == nil {
		return refuse("the COPY with checked keys is not one COPY statement (%v)", err)
	}
	stmt := tree.GetStmts()[0].GetStmt()
	cp := stmt.GetCopyStmt()
	c := &checker{p: p, generated: map[*pg.Node]bool{}, copyChecked: true}
	if !cp.GetIsFrom() || cp.GetRelation() == nil {
		return refuse("the COPY with checked keys does not fill a table")
	}
	if err := c.topLevel(stmt); err != nil {
		return err
	}
	if err := c.barrier(stmt); err != nil {
		return err
	}
	t, err := c.resolve(cp.GetRelation())
	if err != nil {
		return err
	}
	return checkKeys(keysSQL, t, p)
}

// checkKeys checks the statement that checks the foreign keys of a COPY
// into t after its rows:
//
//	SELECT count(ROW(<guard of v0>, ...)) FROM (SELECT * FROM pg_temp.tenantproxy_copy_keys ORDER BY n, c OFFSET 0) AS tenantproxy_copy_keys
//
// where the guard of v<i> is exactly a reference guard (as a write's value
// gets) of one of t's guarded keys over tenantproxy_copy_keys.v<i> (and
// its columns v<i>_<k>), and nothing else of the statement reads a table.
// For a path-bound t, the guard of v0 is the path's parent guard.
func checkKeys(sql string, t catalog.Table, p Policy) error {
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
	args := fc.GetArgs()[0].GetRowExpr().GetArgs()
	if t.Kind == catalog.PathBound && len(args) == 0 {
		return refuse("the COPY keys check of path-bound %s does not check the rows' parents", t.QualifiedName())
	}
	for i, g := range args {
		ok := false
		if t.Kind == catalog.PathBound && i == 0 {
			// CASE WHEN tenantproxy_copy_keys.c = 0 THEN <the parent guard> END
			ce := g.GetCaseExpr()
			var when *pg.CaseWhen
			if ce != nil && ce.GetArg() == nil && ce.GetDefresult() == nil && len(ce.GetArgs()) == 1 {
				when = ce.GetArgs()[0].GetCaseWhen()
			}
			test := pg.MakeAExprNode(pg.A_Expr_Kind_AEXPR_OP, []*pg.Node{pg.MakeStrNode("=")},
				pg.MakeColumnRefNode([]*pg.Node{pg.MakeStrNode(CopyKeysTable), pg.MakeStrNode("c")}, -1), pg.MakeAConstIntNode(0, -1), -1)
			if when != nil && sameExpr(when.GetExpr(), test) && c.parentGuarded(when.GetResult(), t) == nil {
				g, ok = when.GetResult(), true
			}
		} else {
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
		}
		value := g.GetSubLink().GetSubselect().GetSelectStmt().GetFromClause()[0].GetRangeSubselect().GetSubquery().GetSelectStmt().GetTargetList()[0].GetResTarget().GetVal().GetTypeCast().GetArg()
		f := stringsOf(value.GetColumnRef().GetFields())
		if !ok || len(f) != 2 || f[0] != CopyKeysTable || f[1] != CopyKeyColumn(i, 0) {
			return refuse("value %d of the COPY keys check is not a guard of %s over %s.%s", i+1, t.QualifiedName(), CopyKeysTable, CopyKeyColumn(i, 0))
		}
		if err := c.visitNode(g); err != nil {
			return err
		}
	}
	// The barrier has nothing to add: the one FROM item is the keys, and
	// inside the guards it stops at them, as in a write.
	return nil
}
