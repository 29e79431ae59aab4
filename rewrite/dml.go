package rewrite

import (
	"slices"
	"strconv"

	pg "github.com/pganalyze/pg_query_go/v5"
	"github.com/tenantproxy/tenantproxy/catalog"
)

// target resolves the table an INSERT, UPDATE or DELETE writes and qualifies
// it. bound reports a tenant-bound table (which needs the caller's rules).
func (w *walker) target(rv *pg.RangeVar, verb string) (t catalog.Table, bound bool) {
	t, ok := w.resolve(rv)
	if !ok {
		return t, false
	}
	w.changed = true
	rv.Schemaname, rv.Relname = t.Schema, t.Name
	switch t.Kind {
	case catalog.Global:
		if !t.Writable {
			w.fail(refuseHint("mark it writable in the catalog if tenants may change it",
				"%s on global table %s is not allowed: it is read-only for tenants", verb, t.QualifiedName()))
		}
		w.note(t.QualifiedName(), "%s as written: %s", verb, globalKind(t))
		return t, false
	case catalog.TenantBound, catalog.PathBound:
		w.noteTable(t)
		w.note(t.QualifiedName(), "%s confined to %s; new and changed rows checked", verb, w.describe(t))
		return t, true
	}
	w.fail(refusef("table %s has an unknown kind in the catalog", t.QualifiedName()))
	return t, false
}

// globalKind describes a global table or system relation for --explain.
func globalKind(t catalog.Table) string {
	switch {
	case catalog.SystemSchemas[t.Schema]:
		return "schema metadata (system relation), read-only"
	case t.TenantSchema:
		return "the tenant's own schema"
	case t.Writable:
		return "global table, writable"
	}
	return "global table, read-only"
}

// refName is how a write target's columns are qualified: its alias, else its name.
func refName(rv *pg.RangeVar) string {
	if a := rv.GetAlias().GetAliasname(); a != "" {
		return a
	}
	return rv.GetRelname()
}

// keyed reports a writable global table with foreign keys: its writes get
// the same reference guards as a bound table's (a global row may not point
// at another tenant's row either).
func keyed(t catalog.Table) bool {
	return t.Kind == catalog.Global && t.Writable && len(t.ForeignKeys) > 0
}

// updateStmt confines an UPDATE: the target gets the tenant predicate, its
// SET list may not move rows to another tenant, and FROM is scoped as reads.
func (w *walker) updateStmt(u *pg.UpdateStmt) {
	pop := w.with(u.GetWithClause())
	defer pop()
	t, bound := w.target(u.GetRelation(), "UPDATE")
	if w.err != nil {
		return
	}
	w.fromList(u.GetFromClause())
	switch {
	case bound:
		w.assignments(u.GetTargetList(), t, "UPDATE", refName(u.GetRelation()))
	case keyed(t):
		w.assignReferences(u.GetTargetList(), t, "UPDATE", refName(u.GetRelation()))
	}
	w.exprs(u.GetTargetList())
	w.expr(u.GetWhereClause())
	w.exprs(u.GetReturningList())
	if bound && w.err == nil {
		filter := func() *pg.Node { return w.rowFilter(refName(u.GetRelation()), t) }
		u.WhereClause = confine(w.guarded(u.GetWhereClause(), filter), filter())
	}
}

// deleteStmt confines a DELETE: the target gets the tenant predicate and
// USING is scoped as reads.
func (w *walker) deleteStmt(d *pg.DeleteStmt) {
	pop := w.with(d.GetWithClause())
	defer pop()
	t, bound := w.target(d.GetRelation(), "DELETE")
	if w.err != nil {
		return
	}
	w.fromList(d.GetUsingClause())
	w.expr(d.GetWhereClause())
	w.exprs(d.GetReturningList())
	if bound && w.err == nil {
		filter := func() *pg.Node { return w.rowFilter(refName(d.GetRelation()), t) }
		d.WhereClause = confine(w.guarded(d.GetWhereClause(), filter), filter())
	}
}

// assignments checks the SET list of an UPDATE: the tenant column may only be
// set on its own, to one of the session's tenants (ON CONFLICT DO UPDATE has
// its own, stricter rule: conflictAssignments).
func (w *walker) assignBinding(set []*pg.Node, t catalog.Table, verb string) {
	for _, n := range set {
		rt := n.GetResTarget()
		if rt.GetName() != t.TenantColumn {
			continue
		}
		if len(rt.GetIndirection()) > 0 || rt.GetVal().GetMultiAssignRef() != nil {
			w.fail(refuseHint("set the tenant column on its own, to your tenant", "%s may not change the tenant column %s this way", verb, t.TenantColumn))
			return
		}
		w.tenantValue(rt.GetVal(), t, verb)
	}
}

// tenantValue checks a value written to the tenant column: a constant naming
// one of the session's tenants (normalised to a string literal) or a bare
// parameter, checked when it is bound.
func (w *walker) tenantValue(v *pg.Node, t catalog.Table, verb string) {
	vals := w.tenants(t)
	if w.err != nil {
		return
	}
	if p := v.GetParamRef(); p != nil {
		w.params = append(w.params, ParamCheck{Index: int(p.GetNumber()), Claim: t.Claim, Type: columnType(t, t.TenantColumn)})
		return
	}
	if c := v.GetAConst(); c != nil && !c.GetIsnull() {
		s, ok := w.constantText(c)
		if !ok {
			w.fail(refusef("%s sets the tenant column %s to an unsupported constant", verb, t.TenantColumn))
			return
		}
		if !slices.Contains(vals, s) {
			w.fail(refuseHint("a session may only write rows of the tenants in its token",
				"%s names tenant %q in column %s, but the token is for tenant %s", verb, s, t.TenantColumn, quoteList(vals)))
			return
		}
		v.Node = &pg.Node_AConst{AConst: &pg.A_Const{Val: &pg.A_Const_Sval{Sval: &pg.String{Sval: s}}, Location: -1}}
		return
	}
	hint := "leave the tenant column out (the proxy fills it) or give your tenant as a constant or a parameter"
	if v.GetSetToDefault() != nil {
		w.fail(refuseHint(hint, "%s sets the tenant column %s to DEFAULT, which the proxy cannot check: it must be a constant or a parameter", verb, t.TenantColumn))
		return
	}
	w.fail(refuseHint(hint, "%s must set the tenant column %s to a constant or a parameter", verb, t.TenantColumn))
}

// constantText renders a string or integer constant as the text Postgres
// compares with the tenant column; other constants (NULL, floats, booleans,
// bit strings) are not tenants. The decision that follows depends on the
// value, which the walker records.
func (w *walker) constantText(c *pg.A_Const) (string, bool) {
	w.literalSensitive = true
	switch {
	case c == nil || c.GetIsnull():
		return "", false
	case c.GetSval() != nil:
		return c.GetSval().GetSval(), true
	case c.GetIval() != nil:
		return strconv.FormatInt(int64(c.GetIval().GetIval()), 10), true
	}
	return "", false
}

func columnType(t catalog.Table, col string) string {
	for _, c := range t.Columns {
		if c.Name == col {
			return c.Type
		}
	}
	return ""
}

func quoteList(vals []string) string {
	if len(vals) == 1 {
		return strconv.Quote(vals[0])
	}
	out := ""
	for i, v := range vals {
		if i > 0 {
			out += ", "
		}
		out += strconv.Quote(v)
	}
	return "one of " + out
}
