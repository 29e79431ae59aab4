package verify

import (
	pg "github.com/pganalyze/pg_query_go/v5"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/tenantproxy/tenantproxy/catalog"
	"github.com/tenantproxy/tenantproxy/rewrite/leakproof"
)

// The security barrier, checked on its own. Postgres may evaluate a
// condition before the tenant filter (it orders a scan's conditions by
// cost and flattens derived tables), so a statement holding an expression
// that is not leakproof is accepted only if no such expression can meet a
// row the filter rejects:
//
//   - every bound table read in a FROM clause is the only item of a fence:
//     (SELECT * FROM t WHERE <filter> AND <leakproof conditions> OFFSET 0),
//     which Postgres never pushes a condition into;
//   - every conjunct of a write target's filter (UPDATE/DELETE WHERE, MERGE
//     ON, ON CONFLICT WHERE) is the tenant filter, leakproof, or guarded as
//     CASE WHEN <the target's filter> THEN <conjunct> END.
//
// The tenant filter's own parts (predicates, parent sub-links, parent
// guards) are recognised by the other checks, which mark them.

// targetFilter is a write target's filter, for the barrier check.
type targetFilter struct {
	conj []*pg.Node
	ref  tableRef
	what string
}

// mark records a node the checks recognised as the proxy's own filter.
func (c *checker) mark(n *pg.Node) {
	if c.generated != nil {
		c.generated[n] = true
	}
}

// own reports a node the checks recognised, whose own sub-selects hold
// only recognised filters (a parent sub-link's WHERE may not carry a
// client condition in along with it).
func (c *checker) own(n *pg.Node) bool {
	if !c.generated[n] {
		return false
	}
	sl := n.GetSubLink()
	if sl == nil || sl.GetSubLinkType() != pg.SubLinkType_ANY_SUBLINK {
		return true // a tenant predicate, or a parent guard (checked whole)
	}
	for _, w := range conjuncts(sl.GetSubselect().GetSelectStmt().GetWhereClause()) {
		if !c.own(w) {
			return false
		}
	}
	return true
}

// barrier checks one statement that passed the other checks.
func (c *checker) barrier(stmt *pg.Node) error {
	env := leakproof.CatalogEnv{Snapshot: c.p.Snapshot, SearchPath: c.p.SearchPath}
	rep := leakproof.Scan(stmt, leakproof.Options{Env: env, Generated: c.own, UntypedParams: c.p.UntypedParams})
	if !rep.Leaky {
		return nil
	}
	safe := func(n *pg.Node) bool {
		info, ok := rep.Conjuncts[n]
		return c.own(n) || ok && info.Safe
	}
	for _, tf := range c.targets {
		for _, n := range tf.conj {
			if !safe(n) && !c.guard(n, tf.ref) {
				return refuse("a condition of %s on %s is not leakproof and not guarded by the tenant filter; the rewriter must write it as CASE WHEN <filter> THEN <condition> END",
					tf.what, rvName(tf.ref.rv))
			}
		}
	}
	ctes := cteNames(stmt)
	var err error
	walkTree(stmt.ProtoReflect(), func(m protoreflect.Message) bool {
		if err != nil {
			return false // the first refusal stands
		}
		switch x := m.Interface().(type) {
		case *pg.Node:
			return !c.own(x)
		case *pg.SelectStmt:
			err = c.fenced(x, ctes, safe)
		case *pg.UpdateStmt:
			err = c.unfenced(x.GetFromClause(), ctes, "UPDATE ... FROM")
		case *pg.DeleteStmt:
			err = c.unfenced(x.GetUsingClause(), ctes, "DELETE ... USING")
		case *pg.MergeStmt:
			err = c.unfenced([]*pg.Node{x.GetSourceRelation()}, ctes, "MERGE ... USING")
		}
		return err == nil
	})
	if err != nil {
		return refuse("the statement holds an expression that is not leakproof (%s), and %v", nodeName(rep.First), err)
	}
	return nil
}

// guard reports CASE WHEN <r's filter> THEN <condition> END.
func (c *checker) guard(n *pg.Node, r tableRef) bool {
	ce := n.GetCaseExpr()
	if ce == nil || ce.GetArg() != nil || ce.GetDefresult() != nil || len(ce.GetArgs()) != 1 {
		return false
	}
	when := ce.GetArgs()[0].GetCaseWhen().GetExpr()
	return when != nil && c.confined(conjuncts(when), r) == nil && allOwn(c, conjuncts(when))
}

func allOwn(c *checker, ns []*pg.Node) bool {
	for _, n := range ns {
		if !c.own(n) {
			return false
		}
	}
	return true
}

// boundRefs returns the bound tables a FROM list reads directly (in joins
// included, derived tables excluded).
func (c *checker) boundRefs(items []*pg.Node, ctes map[string]bool) []*pg.RangeVar {
	var out []*pg.RangeVar
	var add func(n *pg.Node)
	add = func(n *pg.Node) {
		switch x := n.GetNode().(type) {
		case *pg.Node_RangeVar:
			rv := x.RangeVar
			if rv.GetSchemaname() == "" && ctes[rv.GetRelname()] {
				return
			}
			if t, err := c.resolve(rv); err != nil || t.Kind == catalog.TenantBound || t.Kind == catalog.PathBound {
				out = append(out, rv)
			}
		case *pg.Node_JoinExpr:
			add(x.JoinExpr.GetLarg())
			add(x.JoinExpr.GetRarg())
		}
	}
	for _, n := range items {
		add(n)
	}
	return out
}

// fenced checks a query level that reads a bound table: it must be a fence.
func (c *checker) fenced(s *pg.SelectStmt, ctes map[string]bool, safe func(*pg.Node) bool) error {
	refs := c.boundRefs(s.GetFromClause(), ctes)
	if len(refs) == 0 {
		return nil
	}
	name := rvName(refs[0])
	star := len(s.GetTargetList()) == 1 && len(s.GetTargetList()[0].GetResTarget().GetVal().GetColumnRef().GetFields()) == 1 &&
		s.GetTargetList()[0].GetResTarget().GetVal().GetColumnRef().GetFields()[0].GetAStar() != nil
	switch {
	case len(s.GetFromClause()) != 1 || s.GetFromClause()[0].GetRangeVar() == nil:
		return refuse("bound table %s is read next to other FROM items instead of alone in a fence", name)
	case !star:
		return refuse("the fence around %s does not select *", name)
	case s.GetLimitOffset() == nil && s.GetLimitCount() == nil:
		return refuse("bound table %s is read without a fence (OFFSET 0) that keeps other conditions from being pushed to its scan", name)
	case s.GetWithClause() != nil || s.GetOp() != pg.SetOperation_SETOP_NONE || len(s.GetDistinctClause()) > 0 || len(s.GetGroupClause()) > 0 ||
		s.GetHavingClause() != nil || len(s.GetWindowClause()) > 0 || len(s.GetSortClause()) > 0 || len(s.GetLockingClause()) > 0:
		return refuse("the fence around %s computes more than its filter", name)
	}
	for _, n := range conjuncts(s.GetWhereClause()) {
		if !safe(n) {
			return refuse("the fence around %s holds a condition that is not leakproof", name)
		}
	}
	return nil
}

// unfenced refuses a bound table read directly in a write's FROM list.
func (c *checker) unfenced(items []*pg.Node, ctes map[string]bool, what string) error {
	if refs := c.boundRefs(items, ctes); len(refs) > 0 {
		return refuse("bound table %s in %s is read without a fence", rvName(refs[0]), what)
	}
	return nil
}

// cteNames returns every CTE name the statement defines, at any level.
func cteNames(stmt *pg.Node) map[string]bool {
	out := map[string]bool{}
	walkTree(stmt.ProtoReflect(), func(m protoreflect.Message) bool {
		if cte, ok := m.Interface().(*pg.CommonTableExpr); ok {
			out[cte.GetCtename()] = true
		}
		return true
	})
	return out
}

// walkTree calls fn for m and the messages below it, parents first; fn
// returns false to skip what is below a message.
func walkTree(m protoreflect.Message, fn func(protoreflect.Message) bool) {
	if !fn(m) {
		return
	}
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		switch {
		case fd.Kind() != protoreflect.MessageKind || fd.IsMap():
		case fd.IsList():
			l := v.List()
			for i := 0; i < l.Len(); i++ {
				walkTree(l.Get(i).Message(), fn)
			}
		default:
			walkTree(v.Message(), fn)
		}
		return true
	})
}
