package rewrite

import (
	"strings"

	pg "github.com/pganalyze/pg_query_go/v5"

	"github.com/tenantproxy/tenantproxy/rewrite/verify"
)

// topStatement handles one statement of the string.
func (w *walker) topStatement(n *pg.Node) {
	switch n.GetNode().(type) {
	case *pg.Node_SelectStmt, *pg.Node_InsertStmt, *pg.Node_UpdateStmt, *pg.Node_DeleteStmt, *pg.Node_MergeStmt,
		*pg.Node_TransactionStmt, *pg.Node_VariableShowStmt:
	default:
		w.literalSensitive = true
	}
	if w.connectionState(n); w.err != nil {
		return
	}
	switch x := n.GetNode().(type) {
	case *pg.Node_SelectStmt, *pg.Node_InsertStmt, *pg.Node_UpdateStmt, *pg.Node_DeleteStmt, *pg.Node_MergeStmt:
		w.statement(n, "")
	case *pg.Node_TransactionStmt, *pg.Node_VariableShowStmt, *pg.Node_DeallocateStmt, *pg.Node_FetchStmt, *pg.Node_ClosePortalStmt:
		// FETCH and CLOSE name a cursor, DEALLOCATE a prepared statement,
		// which went through the proxy when it was created.
	case *pg.Node_VariableSetStmt:
		w.setting(x.VariableSetStmt)
	case *pg.Node_ExplainStmt:
		w.explainStmt(x.ExplainStmt)
	case *pg.Node_PrepareStmt:
		w.prepareStmt(x.PrepareStmt)
	case *pg.Node_ExecuteStmt:
		w.exprs(x.ExecuteStmt.GetParams())
	case *pg.Node_DeclareCursorStmt:
		w.statement(x.DeclareCursorStmt.GetQuery(), "DECLARE CURSOR")
	case *pg.Node_CopyStmt:
		w.copyStmt(x.CopyStmt)
	case *pg.Node_ListenStmt:
		w.listenStmt(x.ListenStmt)
	case *pg.Node_UnlistenStmt:
		w.unlistenStmt(x.UnlistenStmt)
	case *pg.Node_NotifyStmt:
		w.notifyStmt(x.NotifyStmt)
	case *pg.Node_DiscardStmt:
		w.discard(x.DiscardStmt)
	case *pg.Node_DoStmt:
		w.doStmt(x.DoStmt)
	default:
		w.fail(refuseHint("only queries, EXPLAIN, PREPARE/EXECUTE, cursors, COPY TO STDOUT, transaction control, SHOW, LISTEN/NOTIFY and a few SETs pass the proxy",
			"%s statements are not supported", statementName(n)))
	}
}

// connectionState checks, in every session mode, what a statement leaves
// on the upstream connection or takes from the server: it refuses
// two-phase commit, COPY to or from a server file or program, and in
// transaction pooling the SQL prepared statements and WITH HOLD cursors
// that would outlive the transaction on a shared connection. It records
// the prepared statements and cursors the statement defines, uses and
// drops, which the session tracks.
func (w *walker) connectionState(n *pg.Node) {
	switch x := n.GetNode().(type) {
	case *pg.Node_TransactionStmt:
		switch x.TransactionStmt.GetKind() {
		case pg.TransactionStmtKind_TRANS_STMT_PREPARE, pg.TransactionStmtKind_TRANS_STMT_COMMIT_PREPARED, pg.TransactionStmtKind_TRANS_STMT_ROLLBACK_PREPARED:
			w.fail(refuseHint("use ordinary transactions", "two-phase commit is not supported"))
		}
	case *pg.Node_CopyStmt:
		if x.CopyStmt.GetIsProgram() || x.CopyStmt.GetFilename() != "" {
			w.fail(refuseHint("use COPY ... TO STDOUT or FROM STDIN", "COPY to or from a server file or program is not allowed"))
		}
	case *pg.Node_DeallocateStmt:
		name := x.DeallocateStmt.GetName()
		w.drops = append(w.drops, "stmt:"+orAll(name))
		if w.cfg.TransactionPooling {
			// No SQL-level prepared statement exists on a shared
			// connection: DEALLOCATE names the client's protocol-level
			// ones, which the session drops under their server names.
			w.reset(PooledReset{Deallocate: name, All: name == ""})
		}
	case *pg.Node_PrepareStmt, *pg.Node_ExecuteStmt:
		if w.cfg.TransactionPooling {
			w.fail(refuseHint("use the protocol's prepared statements (most drivers do), or a proxy in --pool-mode session",
				"%s is not available in transaction pooling mode: a prepared statement would outlive the transaction on a shared connection", statementName(n)))
			return
		}
		switch x := n.GetNode().(type) {
		case *pg.Node_PrepareStmt:
			w.defines = append(w.defines, "stmt:"+x.PrepareStmt.GetName())
		case *pg.Node_ExecuteStmt:
			w.uses = append(w.uses, "stmt:"+x.ExecuteStmt.GetName())
		}
	case *pg.Node_ExplainStmt:
		if e := x.ExplainStmt.GetQuery().GetExecuteStmt(); e != nil {
			w.uses = append(w.uses, "stmt:"+e.GetName())
		}
	case *pg.Node_DeclareCursorStmt:
		const cursorOptHold = 0x20 // CURSOR_OPT_HOLD
		if w.cfg.TransactionPooling && x.DeclareCursorStmt.GetOptions()&cursorOptHold != 0 {
			w.fail(refuseHint("declare the cursor without WITH HOLD, inside the transaction that reads it, or use a proxy in --pool-mode session",
				"DECLARE ... WITH HOLD is not available in transaction pooling mode: the cursor would outlive the transaction on a shared connection"))
			return
		}
		w.defines = append(w.defines, "cursor:"+x.DeclareCursorStmt.GetPortalname())
	case *pg.Node_FetchStmt:
		w.uses = append(w.uses, "cursor:"+x.FetchStmt.GetPortalname())
	case *pg.Node_ClosePortalStmt:
		w.drops = append(w.drops, "cursor:"+orAll(x.ClosePortalStmt.GetPortalname()))
	}
}

// statement rewrites a query-like statement wherever it appears.
func (w *walker) statement(n *pg.Node, where string) {
	if n == nil || w.err != nil {
		return
	}
	switch x := n.GetNode().(type) {
	case *pg.Node_SelectStmt:
		w.selectStmt(x.SelectStmt)
	case *pg.Node_InsertStmt:
		w.insertStmt(x.InsertStmt)
	case *pg.Node_UpdateStmt:
		w.updateStmt(x.UpdateStmt)
	case *pg.Node_DeleteStmt:
		w.deleteStmt(x.DeleteStmt)
	case *pg.Node_MergeStmt:
		if where != "" && where != "EXPLAIN" {
			w.fail(refusef("MERGE is not supported in %s", where))
			return
		}
		w.mergeStmt(x.MergeStmt)
	default:
		w.fail(refusef("%s is not supported in %s", statementName(n), where))
	}
}

// selectStmt rewrites a SELECT, VALUES or set operation.
func (w *walker) selectStmt(s *pg.SelectStmt) {
	if s == nil || w.err != nil {
		return
	}
	pop := w.with(s.GetWithClause())
	defer pop()
	if s.GetIntoClause() != nil {
		w.fail(refuseHint("use INSERT ... SELECT into a catalogued table", "SELECT ... INTO creates a table and is not allowed"))
		return
	}
	if s.GetOp() != pg.SetOperation_SETOP_NONE {
		w.selectStmt(s.GetLarg())
		w.selectStmt(s.GetRarg())
	}
	for _, row := range s.GetValuesLists() {
		w.expr(row)
	}
	w.fromList(s.GetFromClause())
	for _, d := range s.GetDistinctClause() {
		if d.GetNode() != nil { // plain DISTINCT is a list holding one empty node
			w.expr(d)
		}
	}
	w.exprs(s.GetTargetList())
	w.expr(s.GetWhereClause())
	w.exprs(s.GetGroupClause())
	w.expr(s.GetHavingClause())
	for _, win := range s.GetWindowClause() {
		w.windowDef(win.GetWindowDef())
	}
	w.exprs(s.GetSortClause())
	w.expr(s.GetLimitOffset())
	w.expr(s.GetLimitCount())
	// Locking clauses name FROM items by alias; the items are rewritten, and
	// Postgres pushes FOR UPDATE/SHARE into the derived tables.
	for _, l := range s.GetLockingClause() {
		lc := l.GetLockingClause()
		if len(lc.GetLockedRels()) > 0 && lc.GetWaitPolicy() != pg.LockWaitPolicy_LockWaitBlock {
			w.fail(refuseHint("lock every FROM item (FOR UPDATE NOWAIT without OF), or name them without NOWAIT/SKIP LOCKED",
				"FOR UPDATE/SHARE OF ... with NOWAIT or SKIP LOCKED is not supported yet: the SQL printer cannot write it back"))
		}
	}
}

// discard handles DISCARD, which a pool sends to reset a connection. In
// transaction pooling the client's state lives in the session (its
// prepared statements, settings); the session drops it, and upstream
// DISCARD acts on the lent connection only. In session mode the connection
// is the client's own and DISCARD acts on it as on Postgres.
func (w *walker) discard(d *pg.DiscardStmt) {
	switch d.GetTarget() {
	case pg.DiscardMode_DISCARD_ALL:
		w.reset(PooledReset{All: true, ResetAll: true})
		w.drops = append(w.drops, "stmt:*", "cursor:*")
	case pg.DiscardMode_DISCARD_PLANS, pg.DiscardMode_DISCARD_SEQUENCES, pg.DiscardMode_DISCARD_TEMP:
		// The lent connection's own plans, sequence values, temporary
		// objects (none: the proxy refuses temporary tables).
		w.reset(PooledReset{})
	default:
		w.fail(refusef("unsupported DISCARD"))
	}
}

// reset records a pooled driver's reset; several in one string add up.
func (w *walker) reset(r PooledReset) {
	if w.pooledReset == nil {
		w.pooledReset = &PooledReset{}
	}
	p := w.pooledReset
	if r.Deallocate != "" {
		p.Deallocate = r.Deallocate
	}
	p.All = p.All || r.All
	p.ResetAll = p.ResetAll || r.ResetAll
}

// doStmt admits asyncpg's reset block and refuses every other DO block.
func (w *walker) doStmt(d *pg.DoStmt) {
	var body string
	for _, a := range d.GetArgs() {
		de := a.GetDefElem()
		switch de.GetDefname() {
		case "as":
			body = de.GetArg().GetString_().GetSval()
		case "language":
			if de.GetArg().GetString_().GetSval() != "plpgsql" {
				body = ""
			}
		}
	}
	if verify.IsResetBlock(body) {
		w.reset(PooledReset{})
		return
	}
	w.fail(refuseHint("run the block directly on the database, or write it as statements",
		"DO blocks are not allowed: their code runs unseen by the proxy"))
}

// allowedSettings may be SET and RESET by clients: they change formatting,
// timeouts and labels, never what a statement reads.
var allowedSettings = toSet(`application_name timezone datestyle intervalstyle statement_timeout
lock_timeout idle_in_transaction_session_timeout client_encoding extra_float_digits
client_min_messages bytea_output standard_conforming_strings transaction_isolation
transaction_read_only transaction_deferrable`)

func (w *walker) setting(s *pg.VariableSetStmt) {
	name := strings.ToLower(s.GetName())
	switch s.GetKind() {
	case pg.VariableSetKind_VAR_SET_MULTI:
		if name == "transaction" || name == "session characteristics" {
			w.settings = w.settings || !s.GetIsLocal()
			return // SET TRANSACTION ISOLATION LEVEL / READ ONLY
		}
	case pg.VariableSetKind_VAR_RESET_ALL:
		if w.cfg.TransactionPooling {
			// The connection's settings go back to their defaults; the
			// session reads its settings back, and the next lent
			// connection gets them.
			w.reset(PooledReset{ResetAll: true})
		}
		// In session mode the connection is the client's own: RESET ALL
		// returns it to its startup parameters (the read-only flag of a
		// read-only token among them), as on Postgres.
		return
	}
	w.settings = w.settings || !s.GetIsLocal()
	if !allowedSettings[name] {
		w.fail(refuseHint("only formatting, timeout and label settings may be changed through the proxy", "setting %s is not allowed", s.GetName()))
		return
	}
	if s.GetKind() != pg.VariableSetKind_VAR_SET_VALUE {
		return
	}
	value := ""
	if args := s.GetArgs(); len(args) == 1 {
		c := args[0].GetAConst()
		value = strings.ToLower(c.GetSval().GetSval())
	}
	switch name {
	case "client_encoding":
		norm := strings.NewReplacer("-", "", "_", "").Replace(value)
		if norm != "utf8" && norm != "unicode" && norm != "sqlascii" {
			w.fail(refuseHint("use UTF8", "client_encoding %q is not allowed", value))
		}
	case "standard_conforming_strings":
		if value != "on" && value != "true" {
			w.fail(refuseHint("leave standard_conforming_strings on", "standard_conforming_strings must stay on: the proxy parses strings that way"))
		}
	}
}

// statementNames spell the statement kinds whose node names read badly.
var statementNames = map[string]string{
	"CheckPointStmt": "CHECKPOINT", "ClosePortalStmt": "CLOSE", "SecLabelStmt": "SECURITY LABEL",
	"RefreshMatViewStmt": "REFRESH MATERIALIZED VIEW", "ConstraintsSetStmt": "SET CONSTRAINTS",
	"VariableShowStmt": "SHOW", "VariableSetStmt": "SET",
}

// statementName names a statement kind for messages ("CREATE TABLE").
func statementName(n *pg.Node) string {
	k := nodeKind(n)
	if v := n.GetVacuumStmt(); v != nil && !v.GetIsVacuumcmd() {
		return "ANALYZE"
	}
	if name, ok := statementNames[k]; ok {
		return name
	}
	k = strings.TrimSuffix(k, "Stmt")
	var b strings.Builder
	for i, r := range k {
		if i > 0 && r >= 'A' && r <= 'Z' {
			b.WriteByte(' ')
		}
		b.WriteRune(r)
	}
	return strings.ToUpper(b.String())
}

// orAll names what DEALLOCATE ALL and CLOSE ALL drop (their name is empty).
func orAll(name string) string {
	if name == "" {
		return "*"
	}
	return name
}
