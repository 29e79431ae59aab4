package rewrite

import (
	pg "github.com/pganalyze/pg_query_go/v5"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/tenantproxy/tenantproxy/catalog"
	"github.com/tenantproxy/tenantproxy/rewrite/leakproof"
)

// The security barrier. Postgres orders a scan's filter conditions by
// cost and flattens derived tables, so the tenant filter is not
// guaranteed to run before a client condition: a client expression that
// can raise an error or take data-dependent time (a cast, a division, a
// regular expression) could be evaluated on another tenant's row and leak
// it. When a statement holds such an expression (leakproof.Scan):
//
//   - every filtered derived table gets OFFSET 0, a fence Postgres never
//     pushes conditions through, and the client's leakproof conjuncts that
//     filter that table alone move inside the fence, next to the tenant
//     filter, so their indexes still serve;
//   - every conjunct of an UPDATE or DELETE WHERE, MERGE ON and ON CONFLICT
//     WHERE that is not leakproof becomes CASE WHEN <target's filter> THEN
//     <conjunct> END, which Postgres evaluates in order.
//
// A statement of leakproof expressions only is left as it was: its plans
// keep every index and join order.

// barrier is the security barrier's state for one statement.
type barrier struct {
	report *leakproof.Report
	// fences are the fenced derived tables by the table reference they
	// replace.
	fences map[*pg.RangeVar]fence
}

type fence struct {
	sel  *pg.SelectStmt
	name string // how the fence's own FROM item is referenced
}

// scanBarrier reads the statement before the walker changes it.
func (w *walker) scanBarrier(stmt *pg.Node) {
	env := leakproof.CatalogEnv{Snapshot: w.snap, SearchPath: w.cfg.SearchPath}
	rep := leakproof.Scan(stmt, leakproof.Options{Env: env, UntypedParams: w.scope.Fence})
	w.barrier = barrier{report: rep, fences: map[*pg.RangeVar]fence{}}
	w.literalSensitive = w.literalSensitive || rep.ReadConstant
	for i, use := range rep.Params {
		if w.paramUses == nil {
			w.paramUses = map[int]leakproof.ParamUse{}
		}
		if prev, ok := w.paramUses[i]; ok && prev != use {
			// Two statements of the string disagree: no declared type
			// fits both; Fits must fail for any declared type.
			use = leakproof.ParamUse{}
		}
		w.paramUses[i] = use
	}
}

func (w *walker) leaky() bool {
	return w.scope.Fence || w.barrier.report != nil && w.barrier.report.Leaky
}

// fenceDerived makes a derived table a fence when the statement needs it.
func (w *walker) fenceDerived(rv *pg.RangeVar, sel *pg.SelectStmt, t catalog.Table) {
	if !w.leaky() {
		return
	}
	sel.LimitOffset = pg.MakeAConstIntNode(0, -1)
	sel.LimitOption = pg.LimitOption_LIMIT_OPTION_COUNT // as the parser reads OFFSET back
	w.barrier.fences[rv] = fence{sel: sel, name: t.Name}
	w.note(t.QualifiedName(), "fenced (OFFSET 0): the statement holds an expression that is not leakproof, which must never see another tenant's row")
}

// guarded wraps each conjunct of where that is not leakproof as CASE WHEN
// <filter> THEN <conjunct> END; filter builds a fresh copy of the target's
// row filter.
func (w *walker) guarded(where *pg.Node, filter func() *pg.Node) *pg.Node {
	if where == nil || !w.leaky() {
		return where
	}
	parts := leakproof.Split(where)
	changed := false
	for i, c := range parts {
		if info, ok := w.barrier.report.Conjuncts[c]; ok && info.Safe {
			continue
		}
		f := filter()
		if w.err != nil {
			return where
		}
		parts[i] = &pg.Node{Node: &pg.Node_CaseExpr{CaseExpr: &pg.CaseExpr{
			Args:     []*pg.Node{{Node: &pg.Node_CaseWhen{CaseWhen: &pg.CaseWhen{Expr: f, Result: c, Location: -1}}}},
			Location: -1,
		}}}
		changed = true
	}
	if !changed {
		return where
	}
	if len(parts) == 1 {
		return parts[0]
	}
	return pg.MakeBoolExprNode(pg.BoolExprType_AND_EXPR, parts, -1)
}

// moveIntoFences moves each leakproof conjunct that filters one fenced
// table alone from its WHERE or ON into the fence, after the tenant
// filter. It runs once the statement is rewritten.
func (w *walker) moveIntoFences(stmt *pg.Node) {
	if len(w.barrier.fences) == 0 {
		return
	}
	target := map[*pg.Node]fence{}
	for c, info := range w.barrier.report.Conjuncts {
		if f, ok := w.barrier.fences[info.Table]; ok && info.Table != nil {
			target[c] = f
		}
	}
	if len(target) == 0 {
		return
	}
	// Collect first, then change: fields are replaced, not walked.
	var selects []*pg.SelectStmt
	var updates []*pg.UpdateStmt
	var deletes []*pg.DeleteStmt
	var joins []*pg.JoinExpr
	eachMessage(stmt.ProtoReflect(), func(m protoreflect.Message) {
		switch x := m.Interface().(type) {
		case *pg.SelectStmt:
			selects = append(selects, x)
		case *pg.UpdateStmt:
			updates = append(updates, x)
		case *pg.DeleteStmt:
			deletes = append(deletes, x)
		case *pg.JoinExpr:
			joins = append(joins, x)
		}
	})
	take := func(n *pg.Node) *pg.Node {
		if n == nil {
			return nil
		}
		var kept []*pg.Node
		for _, c := range leakproof.Split(n) {
			f, ok := target[c]
			if !ok {
				kept = append(kept, c)
				continue
			}
			delete(target, c) // moved once: the fence's own WHERE is walked too
			requalify(c, f.name)
			f.sel.WhereClause = pg.MakeBoolExprNode(pg.BoolExprType_AND_EXPR, append(leakproof.Split(f.sel.GetWhereClause()), c), -1)
		}
		switch len(kept) {
		case 0:
			return nil
		case 1:
			return kept[0]
		}
		if len(kept) == len(leakproof.Split(n)) {
			return n
		}
		return pg.MakeBoolExprNode(pg.BoolExprType_AND_EXPR, kept, -1)
	}
	for _, s := range selects {
		s.WhereClause = take(s.GetWhereClause())
	}
	for _, u := range updates {
		u.WhereClause = take(u.GetWhereClause())
	}
	for _, d := range deletes {
		d.WhereClause = take(d.GetWhereClause())
	}
	for _, j := range joins {
		if j.GetQuals() == nil {
			continue
		}
		if j.Quals = take(j.GetQuals()); j.Quals == nil {
			j.Quals = &pg.Node{Node: &pg.Node_AConst{AConst: &pg.A_Const{Val: &pg.A_Const_Boolval{Boolval: &pg.Boolean{Boolval: true}}, Location: -1}}}
		}
	}
}

// requalify points every column reference of a moved conjunct at the
// fence's own table.
func requalify(c *pg.Node, name string) {
	eachMessage(c.ProtoReflect(), func(m protoreflect.Message) {
		if cr, ok := m.Interface().(*pg.ColumnRef); ok {
			fields := cr.GetFields()
			cr.Fields = []*pg.Node{pg.MakeStrNode(name), fields[len(fields)-1]}
		}
	})
}
