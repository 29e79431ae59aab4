package verify

import (
	"errors"
	"fmt"
	"slices"
	"strconv"

	pg "github.com/pganalyze/pg_query_go/v5"

	"github.com/tenantproxy/tenantproxy/catalog"
)

// conjuncts flattens the top-level ANDs of a WHERE clause. Anything under
// OR, NOT, CASE or a function is one opaque conjunct.
func conjuncts(n *pg.Node) []*pg.Node {
	if n == nil || n.GetNode() == nil {
		return nil
	}
	if b := n.GetBoolExpr(); b != nil && b.GetBoolop() == pg.BoolExprType_AND_EXPR {
		var out []*pg.Node
		for _, a := range b.GetArgs() {
			out = append(out, conjuncts(a)...)
		}
		return out
	}
	return []*pg.Node{n}
}

// tableRef is a tenant-bound table reference whose tenant predicate is
// being looked for.
type tableRef struct {
	table catalog.Table
	rv    *pg.RangeVar
	// bare: an unqualified column name can only mean this table's column.
	bare bool
}

// refname is the name column references use for the table: its alias if it
// has one, else its relation name.
func (r tableRef) refname() string {
	if a := r.rv.GetAlias().GetAliasname(); a != "" {
		return a
	}
	return r.rv.GetRelname()
}

// allowedValues returns the session's values for the table's claim.
func (c *checker) allowedValues(t catalog.Table) []string {
	return c.p.Tenants[t.Claim]
}

// confined reports (as nil) whether one of the conjuncts is a tenant
// predicate on r with only allowed values.
func (c *checker) confinedBinding(conj []*pg.Node, r tableRef) error {
	allowed := c.allowedValues(r.table)
	if len(allowed) == 0 {
		return fmt.Errorf("the session has no tenant values for claim %q", r.table.Claim)
	}
	var last error
	for _, n := range conj {
		err := c.tenantPredicate(n, r, allowed)
		if err == nil {
			c.mark(n)
			return nil
		}
		if !errors.Is(err, errNotPredicate) {
			last = err
		}
	}
	if last != nil {
		return last
	}
	return fmt.Errorf("no top-level WHERE conjunct %s.%s = '<tenant>' in the same statement", r.refname(), r.table.TenantColumn)
}

var errNotPredicate = errors.New("not a tenant predicate")

// tenantPredicate checks that n is "col = v", "v = col" or "col IN (v, ...)"
// with col naming r's tenant column and every v allowed.
func (c *checker) tenantPredicate(n *pg.Node, r tableRef, allowed []string) error {
	e := n.GetAExpr()
	if e == nil || !isEquals(e.GetName()) {
		return errNotPredicate
	}
	switch e.GetKind() {
	case pg.A_Expr_Kind_AEXPR_OP:
		col, val := e.GetLexpr(), e.GetRexpr()
		if !r.isTenantColumn(col) {
			col, val = val, col
		}
		if !r.isTenantColumn(col) {
			return errNotPredicate
		}
		if v, ok := constValue(val, allowed); !ok {
			return fmt.Errorf("tenant predicate on %s compares with %s, which is not one of the session's tenants", r.refname(), v)
		}
		return nil
	case pg.A_Expr_Kind_AEXPR_IN:
		if !r.isTenantColumn(e.GetLexpr()) {
			return errNotPredicate
		}
		items := e.GetRexpr().GetList().GetItems()
		if len(items) == 0 {
			return errNotPredicate
		}
		for _, it := range items {
			if v, ok := constValue(it, allowed); !ok {
				return fmt.Errorf("tenant predicate on %s lists %s, which is not one of the session's tenants", r.refname(), v)
			}
		}
		return nil
	}
	return errNotPredicate
}

// isEquals accepts the operator name "=" or "pg_catalog.=".
func isEquals(name []*pg.Node) bool {
	s := stringsOf(name)
	switch len(s) {
	case 1:
		return s[0] == "="
	case 2:
		return s[0] == "pg_catalog" && s[1] == "="
	}
	return false
}

// isTenantColumn reports whether n is a column reference that Postgres
// resolves to r's tenant column.
func (r tableRef) isTenantColumn(n *pg.Node) bool { return r.isColumn(n, r.table.TenantColumn) }

// isColumn reports whether n is a column reference that Postgres resolves
// to r's column col.
func (r tableRef) isColumn(n *pg.Node, col string) bool {
	cr := n.GetColumnRef()
	if cr == nil {
		return false
	}
	f := stringsOf(cr.GetFields())
	if len(f) != len(cr.GetFields()) || len(f) == 0 || f[len(f)-1] != col {
		return false
	}
	aliased := r.rv.GetAlias().GetAliasname() != ""
	switch len(f) {
	case 1:
		return r.bare
	case 2:
		return f[0] == r.refname()
	case 3:
		return !aliased && f[0] == r.table.Schema && f[1] == r.rv.GetRelname()
	}
	return false
}

// constValue reports whether n is a constant equal to an allowed value: a
// string constant, or an integer constant whose decimal form is one. The
// first result renders n for messages.
func constValue(n *pg.Node, allowed []string) (string, bool) {
	k := n.GetAConst()
	if k == nil {
		return "a non-constant " + nodeName(n), false
	}
	if k.GetIsnull() {
		return "NULL", false
	}
	var v string
	switch x := k.GetVal().(type) {
	case *pg.A_Const_Sval:
		v = x.Sval.GetSval()
	case *pg.A_Const_Ival:
		v = strconv.FormatInt(int64(x.Ival.GetIval()), 10)
	default:
		return "a constant of another type", false
	}
	return strconv.Quote(v), slices.Contains(allowed, v)
}

// constOrParam accepts an allowed constant or a bare parameter ($n, whose
// bound value the proxy checks at Bind). Casts are refused: a cast such as
// $1::varchar(1) could turn an allowed value into another one.
func (c *checker) constOrParam(n *pg.Node, allowed []string) (string, bool) {
	if n.GetParamRef() != nil {
		// Inside PREPARE the value comes from EXECUTE's expressions, which
		// nobody checks at Bind.
		return "a parameter of PREPARE", !c.inPrepare
	}
	return constValue(n, allowed)
}

// stringsOf returns the String values of a name list, stopping at the first
// non-String item (callers compare lengths when that matters).
func stringsOf(ns []*pg.Node) []string {
	out := make([]string, 0, len(ns))
	for _, n := range ns {
		s := n.GetString_()
		if s == nil {
			break
		}
		out = append(out, s.GetSval())
	}
	return out
}
