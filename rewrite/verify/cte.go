package verify

import (
	pg "github.com/pganalyze/pg_query_go/v5"
)

// with walks a WITH clause and pushes its scope of CTE names. The returned
// function pops that scope; call it when the owning statement is done.
//
// Visibility follows Postgres exactly: in a plain WITH, the body of CTE i
// sees CTEs 0..i-1 of the list (plus enclosing scopes); in WITH RECURSIVE
// every CTE of the list is visible in every body; the statement owning the
// WITH sees all of them. Erring toward "it is a CTE" would let a table
// through unscoped, so nothing else counts.
func (c *checker) with(w *pg.WithClause) (pop func(), err error) {
	if w == nil {
		return func() {}, nil
	}
	scope := map[string]bool{}
	c.scopes = append(c.scopes, scope)
	depth := len(c.scopes)
	pop = func() { c.scopes = c.scopes[:depth-1] }

	var ctes []*pg.CommonTableExpr
	for _, n := range w.GetCtes() {
		cte := n.GetCommonTableExpr()
		if cte == nil {
			return pop, refuse("WITH list item %s is not a common table expression", nodeName(n))
		}
		ctes = append(ctes, cte)
	}
	if w.GetRecursive() {
		for _, cte := range ctes {
			scope[cte.GetCtename()] = true
		}
	}
	for _, cte := range ctes {
		if err := c.statement(cte.GetCtequery()); err != nil {
			return pop, err
		}
		if err := c.fields(cte.ProtoReflect(), skipCTE); err != nil {
			return pop, err
		}
		scope[cte.GetCtename()] = true
	}
	if err := c.fields(w.ProtoReflect(), skipWith); err != nil {
		return pop, err
	}
	return pop, nil
}

// isCTE reports whether rv names a CTE visible at the current point. Only
// unqualified names can (Postgres looks up CTEs only for those).
func (c *checker) isCTE(rv *pg.RangeVar) bool {
	if rv.GetSchemaname() != "" || rv.GetCatalogname() != "" {
		return false
	}
	for i := len(c.scopes) - 1; i >= 0; i-- {
		if c.scopes[i][rv.GetRelname()] {
			return true
		}
	}
	return false
}
