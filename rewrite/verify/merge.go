package verify

import (
	pg "github.com/pganalyze/pg_query_go/v5"
)

var skipMerge = handled(&pg.MergeStmt{}, "with_clause", "relation", "source_relation")

// mergeStmt checks MERGE: a tenant-bound target must be confined by a
// top-level conjunct of the ON condition (so only the session's rows can be
// MATCHED), its UPDATE actions may only keep the tenant, its INSERT actions
// must write an allowed tenant, and the source is a read.
func (c *checker) mergeStmt(m *pg.MergeStmt) error {
	pop, err := c.with(m.GetWithClause())
	defer pop()
	if err != nil {
		return err
	}
	t, bound, err := c.target(m.GetRelation(), "MERGE")
	if err != nil {
		return err
	}
	if bound {
		ref := tableRef{table: t, rv: m.GetRelation()}
		c.targets = append(c.targets, targetFilter{conj: conjuncts(m.GetJoinCondition()), ref: ref, what: "MERGE ... ON"})
		if err := c.confined(conjuncts(m.GetJoinCondition()), ref); err != nil {
			return refuse("MERGE into tenant-bound table %s is not confined: %v; the rewriter must add %s.%s = '<tenant>' to the ON condition",
				rvName(m.GetRelation()), err, ref.refname(), t.TenantColumn)
		}
		for _, n := range m.GetMergeWhenClauses() {
			wc := n.GetMergeWhenClause()
			if wc == nil {
				return refuse("MERGE item %s is not a WHEN clause", nodeName(n))
			}
			switch wc.GetCommandType() {
			case pg.CmdType_CMD_UPDATE:
				err = c.tenantAssignments(wc.GetTargetList(), t, true, refName(m.GetRelation()))
			case pg.CmdType_CMD_INSERT:
				err = c.insertValues(&pg.InsertStmt{Relation: m.GetRelation(), Cols: wc.GetTargetList(), SelectStmt: valuesRow(wc.GetValues())}, t)
			case pg.CmdType_CMD_DELETE, pg.CmdType_CMD_NOTHING:
			default:
				err = refuse("MERGE action %s is unknown to the verifier", wc.GetCommandType())
			}
			if err != nil {
				return err
			}
		}
	}
	if !bound {
		// A writable global table's keys are guarded too.
		for _, n := range m.GetMergeWhenClauses() {
			wc := n.GetMergeWhenClause()
			switch wc.GetCommandType() {
			case pg.CmdType_CMD_UPDATE:
				err = c.referenceAssignments(wc.GetTargetList(), t, refName(m.GetRelation()))
			case pg.CmdType_CMD_INSERT:
				err = c.referenceInserts(&pg.InsertStmt{Relation: m.GetRelation(), Cols: wc.GetTargetList(), SelectStmt: valuesRow(wc.GetValues())}, t)
			}
			if err != nil {
				return err
			}
		}
	}
	if err := c.fromItem(m.GetSourceRelation(), fromCtx{stmt: "MERGE ... USING"}); err != nil {
		return err
	}
	return c.fields(m.ProtoReflect(), skipMerge)
}

// valuesRow wraps one VALUES row as an INSERT source (nil for none).
func valuesRow(items []*pg.Node) *pg.Node {
	if len(items) == 0 {
		return nil
	}
	return &pg.Node{Node: &pg.Node_SelectStmt{SelectStmt: &pg.SelectStmt{
		ValuesLists: []*pg.Node{pg.MakeListNode(items)},
		Op:          pg.SetOperation_SETOP_NONE,
	}}}
}
