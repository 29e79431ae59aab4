package rewrite

import (
	"fmt"
	"slices"
	"strings"

	pg "github.com/pganalyze/pg_query_go/v5"
	"github.com/tenantproxy/tenantproxy/catalog"
	"github.com/tenantproxy/tenantproxy/rewrite/leakproof"
	"github.com/tenantproxy/tenantproxy/rewrite/verify"
)

// walker rewrites one parsed statement string in place. The first refusal
// stops it (err); every method returns early once err is set.
type walker struct {
	cfg     Config
	scope   Scope
	snap    *catalog.Snapshot
	scopes  []map[string]bool // visible CTE names, innermost last
	err     *Rejection
	changed bool
	params  []ParamCheck
	tables  []string
	// generated are the table references the rewriter wrote itself,
	// already filtered; walking past them again leaves them alone.
	generated map[*pg.RangeVar]bool
	rules     []Rule
	defines   []string
	uses      []string
	drops     []string
	copyIn    *CopyIn
	// literalSensitive records that a decision read a constant's value
	// or the string holds a statement whose options the walker reads:
	// its rewrite is not valid for other constants (literals.go).
	literalSensitive bool
	settings         bool // a SET or RESET of a session setting
	// ownSchema is the session's schema under schema-per-tenant
	// isolation, or why it has none (schema.go).
	ownSchema    string
	ownSchemaErr error
	// barrier is the security barrier of the statement being rewritten
	// (barrier.go).
	barrier barrier
	// pooledReset is the connection reset the string asks for in
	// transaction pooling (DEALLOCATE, DISCARD, RESET ALL).
	pooledReset *PooledReset
	// paramUses gathers the barrier's assumptions about parameter types
	// over the string's statements.
	paramUses map[int]leakproof.ParamUse
}

func (w *walker) fail(r *Rejection) {
	if w.err == nil {
		w.err = r
	}
}

// with pushes the CTE names of a WITH clause and rewrites their bodies. The
// caller pops the scope (the returned func) when the owning statement ends.
// Visibility is Postgres's: in a plain WITH, CTE i sees CTEs 0..i-1; in WITH
// RECURSIVE every CTE of the list sees all of them. Treating a real table as
// a CTE would skip its scoping, so nothing else counts as a CTE.
func (w *walker) with(wc *pg.WithClause) func() {
	if wc == nil {
		return func() {}
	}
	names := map[string]bool{}
	w.scopes = append(w.scopes, names)
	depth := len(w.scopes)
	pop := func() { w.scopes = w.scopes[:depth-1] }
	if wc.GetRecursive() {
		for _, n := range wc.GetCtes() {
			names[n.GetCommonTableExpr().GetCtename()] = true
		}
	}
	for _, n := range wc.GetCtes() {
		cte := n.GetCommonTableExpr()
		if cte == nil {
			w.fail(refusef("unsupported WITH item"))
			return pop
		}
		w.statement(cte.GetCtequery(), "a WITH query")
		names[cte.GetCtename()] = true
	}
	return pop
}

func (w *walker) isCTE(rv *pg.RangeVar) bool {
	if rv.GetSchemaname() != "" || rv.GetCatalogname() != "" {
		return false
	}
	for i := len(w.scopes) - 1; i >= 0; i-- {
		if w.scopes[i][rv.GetRelname()] {
			return true
		}
	}
	return false
}

// resolve finds the catalogued table a RangeVar names, like Postgres would
// with the configured search_path: pg_catalog first (Postgres searches it
// before the search_path), then the catalog's tables. An allowed system
// relation comes back as a read-only global table.
func (w *walker) resolve(rv *pg.RangeVar) (catalog.Table, bool) {
	schema, name := rv.GetSchemaname(), rv.GetRelname()
	if c := rv.GetCatalogname(); c != "" {
		if c != w.cfg.Database || w.cfg.Database == "" {
			w.fail(refuseHint("name tables of the database you are connected to",
				"relation %s.%s.%s names another database; cross-database references are not supported", c, schema, name))
			return catalog.Table{}, false
		}
		rv.Catalogname = "" // the current database, as Postgres allows
		w.changed = true
	}
	if schema == "" && catalog.IsPgCatalogRelation(name) {
		schema = "pg_catalog"
	}
	if catalog.SystemSchemas[schema] || strings.HasPrefix(schema, "pg_temp") {
		return w.systemRelation(rv, schema, name)
	}
	if schema != "" {
		if t, ok := w.snap.Lookup(schema, name); ok {
			return t, true
		}
	} else {
		for _, s := range w.cfg.SearchPath {
			if t, ok := w.snap.Lookup(s, name); ok {
				return t, true
			}
		}
	}
	if w.cfg.TenantSchema != "" && !catalog.SystemSchemas[schema] {
		if t, handled := w.tenantSchemaTable(rv, schema, name); handled {
			return t, w.err == nil
		}
	}
	if schema != "" {
		name = schema + "." + name
	}
	hint := "add it with: tenantproxy catalog add-table " + name + " --tenant-column <column>, or: tenantproxy catalog add-global " + name
	w.fail(&Rejection{Code: codeRefused, Reason: "table \"" + name + "\" is not in the tenant catalog",
		Hint: hint, Position: int(rv.GetLocation()) + 1})
	return catalog.Table{}, false
}

// systemRelation admits the system relations that hold metadata only.
func (w *walker) systemRelation(rv *pg.RangeVar, schema, name string) (catalog.Table, bool) {
	if w.snap.SystemRelationAllowed(schema, name) {
		return catalog.Table{Schema: schema, Name: name, Kind: catalog.Global}, true
	}
	hint := "the schema metadata drivers read (pg_type, pg_class, pg_attribute, information_schema.columns, ...) is allowed"
	if !verify.NeverReadable(name) && (schema == "pg_catalog" || schema == "information_schema") {
		hint += "; if this relation holds metadata only, allow it with: tenantproxy catalog allow-relation " + schema + "." + name
	}
	w.fail(&Rejection{Code: codeRefused, Position: int(rv.GetLocation()) + 1, Hint: hint,
		Reason: "relation " + schema + "." + name + " is not available through the proxy: it may hold other tenants' data, statistics or activity"})
	return catalog.Table{}, false
}

// tenants returns the scope's values for a table's claim, refusing when the
// token has none.
func (w *walker) tenants(t catalog.Table) []string {
	vals := w.scope.Values[t.Claim]
	if len(vals) == 0 || slices.Contains(vals, "") {
		claim := t.Claim
		if claim == "" {
			claim = "tenant"
		}
		w.fail(refuseHint("use a token that carries it", "the token carries no %s value for table %s", claim, t.QualifiedName()))
	}
	return vals
}

func (w *walker) noteTable(t catalog.Table) {
	if q := t.QualifiedName(); !slices.Contains(w.tables, q) {
		w.tables = append(w.tables, q)
	}
}

// note records the rule that applied to a relation, once.
func (w *walker) note(relation, format string, args ...any) {
	r := Rule{Relation: relation, Rule: fmt.Sprintf(format, args...)}
	if !slices.Contains(w.rules, r) {
		w.rules = append(w.rules, r)
	}
}

// describe says in words which rows of a bound table are the session's.
func (w *walker) describe(t catalog.Table) string {
	if t.Kind == catalog.PathBound {
		return fmt.Sprintf("rows whose %s references a %s row of the session's (path-bound)", t.Via, t.Parent)
	}
	var parts []string
	for _, v := range bindingViews(t) {
		vals := w.scope.Values[v.Claim]
		op := "="
		if len(vals) > 1 {
			op = "is" // quoteList says "one of ..."
		}
		parts = append(parts, fmt.Sprintf("%s %s %s", v.TenantColumn, op, quoteList(vals)))
	}
	return "rows where " + strings.Join(parts, " and ")
}

// tenantPredicate builds ref.col = 'v' (or ref.col IN ('v1', ...)).
func tenantPredicate(ref, col string, values []string) *pg.Node {
	colRef := pg.MakeColumnRefNode([]*pg.Node{pg.MakeStrNode(ref), pg.MakeStrNode(col)}, -1)
	if len(values) == 1 {
		return pg.MakeAExprNode(pg.A_Expr_Kind_AEXPR_OP, []*pg.Node{pg.MakeStrNode("=")}, colRef, pg.MakeAConstStrNode(values[0], -1), -1)
	}
	items := make([]*pg.Node, len(values))
	for i, v := range values {
		items[i] = pg.MakeAConstStrNode(v, -1)
	}
	return pg.MakeAExprNode(pg.A_Expr_Kind_AEXPR_IN, []*pg.Node{pg.MakeStrNode("=")}, colRef, pg.MakeListNode(items), -1)
}

// confine returns pred AND (where), or pred alone when where is nil. The
// tenant predicate comes first, which Postgres keeps only between quals of
// equal cost: the order guarantees nothing, the security barrier does
// (barrier.go guards the user's conditions that are not leakproof).
func confine(where, pred *pg.Node) *pg.Node {
	if where == nil {
		return pred
	}
	args := []*pg.Node{pred}
	if b := pred.GetBoolExpr(); b != nil && b.GetBoolop() == pg.BoolExprType_AND_EXPR {
		// One flat AND, as Postgres would read the printed statement back.
		args = append([]*pg.Node(nil), b.GetArgs()...)
	}
	return pg.MakeBoolExprNode(pg.BoolExprType_AND_EXPR, append(args, where), -1)
}
