package verify

import (
	"errors"
	"fmt"
	"strings"

	pg "github.com/pganalyze/pg_query_go/v5"

	"github.com/tenantproxy/tenantproxy/catalog"
)

// Policy is what a statement must respect.
type Policy struct {
	// Tenants maps a claim dimension to the tenant values the session may
	// see; "" is the primary claim (catalog.Table.Claim "" means primary).
	Tenants map[string][]string
	// SearchPath resolves unqualified relation names, first match wins.
	SearchPath []string
	// Snapshot is the catalog the statement is checked against.
	Snapshot *catalog.Snapshot
	// TenantSchema is the session's own schema under schema-per-tenant
	// isolation: any relation qualified with it is the tenant's.
	TenantSchema string
	// UntypedParams: the client declared parameter types, so no
	// comparison with a parameter counts as leakproof.
	UntypedParams bool
}

// ErrUnverified is wrapped by every error Check returns, so callers can
// recognise a verifier refusal with errors.Is.
var ErrUnverified = errors.New("statement is not provably tenant-confined")

// Check returns nil when sql is provably tenant-confined under p, else an
// error saying which reference is not. It never panics: an internal failure
// is reported as a refusal.
func Check(sql string, p Policy) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("verify: %w: internal error: %v (refusing; report this statement)", ErrUnverified, r)
		}
	}()
	if p.Snapshot == nil {
		return refuse("no catalog snapshot in the policy; load the catalog before checking statements")
	}
	tree, err := pg.Parse(sql)
	if err != nil {
		return refuse("the statement does not parse (%v); the rewriter emitted invalid SQL", err)
	}
	for i, raw := range tree.GetStmts() {
		c := &checker{p: p, generated: map[*pg.Node]bool{}}
		err := c.topLevel(raw.GetStmt())
		if err == nil {
			err = c.barrier(raw.GetStmt())
		}
		if err != nil {
			if len(tree.GetStmts()) > 1 {
				return fmt.Errorf("statement %d: %w", i+1, err)
			}
			return err
		}
	}
	return nil
}

// resetBlock is the DO block of asyncpg's connection reset, word by word:
// it runs UNLISTEN * when the connection listens on a channel.
const resetBlock = "BEGIN PERFORM * FROM pg_listening_channels() LIMIT 1; IF FOUND THEN UNLISTEN *; END IF; END;"

// IsResetBlock reports whether a DO block's code is asyncpg's reset block,
// the only DO block that passes the proxy: its code is known and touches
// only the connection's own channels.
func IsResetBlock(body string) bool {
	return strings.Join(strings.Fields(body), " ") == resetBlock
}

// refuse builds an error wrapping ErrUnverified.
func refuse(format string, args ...any) error {
	return fmt.Errorf("verify: %w: %s", ErrUnverified, fmt.Sprintf(format, args...))
}

// checker carries the state of one Check call.
type checker struct {
	p Policy
	// scopes is the stack of CTE names visible at the current point, one
	// map per WITH clause being walked, innermost last.
	scopes []map[string]bool
	// inPrepare is set inside PREPARE, whose parameters are never checked
	// at Bind and so may not supply a tenant column.
	inPrepare bool
	// generated are the tenant predicates, parent sub-links and parent
	// guards the checks recognised, and targets the filters of the write
	// targets: the security barrier's check reads them (barrier.go).
	generated map[*pg.Node]bool
	targets   []targetFilter
	// copyChecked: CheckCopy checks a COPY FROM with the check of its
	// rows after it, which scopes a path-bound table's rows.
	copyChecked bool
}

// topLevel checks one statement of the parse result.
func (c *checker) topLevel(n *pg.Node) error {
	switch x := n.GetNode().(type) {
	case *pg.Node_TransactionStmt:
		return c.fields(x.TransactionStmt.ProtoReflect(), nil)
	case *pg.Node_VariableSetStmt:
		return c.fields(x.VariableSetStmt.ProtoReflect(), nil)
	case *pg.Node_VariableShowStmt:
		return c.fields(x.VariableShowStmt.ProtoReflect(), nil)
	case *pg.Node_ExplainStmt:
		return c.explainStmt(x.ExplainStmt)
	case *pg.Node_PrepareStmt:
		return c.prepareStmt(x.PrepareStmt)
	case *pg.Node_ExecuteStmt:
		return c.fields(x.ExecuteStmt.ProtoReflect(), nil)
	case *pg.Node_DeallocateStmt:
		return c.fields(x.DeallocateStmt.ProtoReflect(), nil)
	case *pg.Node_DiscardStmt:
		return nil // the connection's own state; it names no relation
	case *pg.Node_DoStmt:
		for _, a := range x.DoStmt.GetArgs() {
			if de := a.GetDefElem(); de.GetDefname() == "as" && IsResetBlock(de.GetArg().GetString_().GetSval()) && len(x.DoStmt.GetArgs()) == 1 {
				return nil
			}
		}
		return refuse("DoStmt: DO blocks run code the verifier cannot read; only asyncpg's reset block is known")
	case *pg.Node_FetchStmt:
		return c.fields(x.FetchStmt.ProtoReflect(), nil)
	case *pg.Node_ClosePortalStmt:
		return c.fields(x.ClosePortalStmt.ProtoReflect(), nil)
	case *pg.Node_DeclareCursorStmt:
		return c.statement(x.DeclareCursorStmt.GetQuery())
	case *pg.Node_CopyStmt:
		return c.copyStmt(x.CopyStmt)
	case *pg.Node_ListenStmt:
		return c.channel(x.ListenStmt.GetConditionname())
	case *pg.Node_UnlistenStmt:
		if x.UnlistenStmt.GetConditionname() == "" {
			return nil // UNLISTEN *: the connection's own channels
		}
		return c.channel(x.UnlistenStmt.GetConditionname())
	case *pg.Node_NotifyStmt:
		return c.channel(x.NotifyStmt.GetConditionname())
	}
	return c.statement(n)
}

// statement checks a query that may modify data: a top-level statement or
// the body of a CTE.
func (c *checker) statement(n *pg.Node) error {
	switch x := n.GetNode().(type) {
	case *pg.Node_SelectStmt:
		return c.selectStmt(x.SelectStmt)
	case *pg.Node_InsertStmt:
		return c.insertStmt(x.InsertStmt)
	case *pg.Node_UpdateStmt:
		return c.updateStmt(x.UpdateStmt)
	case *pg.Node_DeleteStmt:
		return c.deleteStmt(x.DeleteStmt)
	case *pg.Node_MergeStmt:
		return c.mergeStmt(x.MergeStmt)
	case nil:
		return refuse("empty statement node")
	}
	return refuse("statement type %s is not allowed here; only SELECT, INSERT, UPDATE, DELETE, transaction control, SET and SHOW are", nodeName(n))
}
