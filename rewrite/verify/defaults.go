package verify

import (
	pg "github.com/pganalyze/pg_query_go/v5"
)

// KeyDefault reads the default of a key column (as pg_get_expr prints it):
// nil when there is none or it is NULL, which references nothing. ok is
// false when it is something else than a constant, cast or not: a value
// the proxy could not check before Postgres computes it.
func KeyDefault(def string) (expr *pg.Node, ok bool) {
	if def == "" {
		return nil, true
	}
	tree, err := pg.Parse("SELECT " + def)
	if err != nil || len(tree.GetStmts()) != 1 {
		return nil, false
	}
	sel := tree.GetStmts()[0].GetStmt().GetSelectStmt()
	if sel == nil || len(sel.GetTargetList()) != 1 || len(sel.GetFromClause()) > 0 {
		return nil, false
	}
	expr = sel.GetTargetList()[0].GetResTarget().GetVal()
	n := expr
	for n.GetTypeCast() != nil {
		n = n.GetTypeCast().GetArg()
	}
	switch c := n.GetAConst(); {
	case c == nil:
		return nil, false
	case c.GetIsnull():
		return nil, true
	}
	return expr, true
}

// keyDefaulted reports a key column that a write leaves to a default that
// names a row (or might): the rewriter must have written it out.
func keyDefaulted(def string) bool {
	expr, ok := KeyDefault(def)
	return expr != nil || !ok
}
