package rewrite

import (
	"strings"

	pg "github.com/pganalyze/pg_query_go/v5"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// This file holds the two session modes a token can ask for: unscoped (the
// --unscoped-role) and read-only (a scope claim without the write scope).
// Both look at the whole parse tree, whatever the statement kind, so a node
// nested where the scoping walker never goes is seen all the same.

// eachMessage calls fn for m and every message below it, parents first.
func eachMessage(m protoreflect.Message, fn func(protoreflect.Message)) {
	fn(m)
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		switch {
		case fd.Kind() != protoreflect.MessageKind:
		case fd.IsList():
			l := v.List()
			for i := 0; i < l.Len(); i++ {
				eachMessage(l.Get(i).Message(), fn)
			}
		case fd.IsMap():
		default:
			eachMessage(v.Message(), fn)
		}
		return true
	})
}

// unscopedStatement checks one statement of an unscoped session. Nothing is
// scoped and any relation may be named, DDL included; what still applies is
// what protects the server and the other sessions: the function allowlist
// (widened to sequences and server metadata), the settings a client may
// change, no role switching, no code the proxy cannot see (DO), no server
// files, and in transaction pooling nothing that outlives the transaction.
func (w *walker) unscopedStatement(n *pg.Node) {
	w.literalSensitive = true // never cached: unscoped sessions bypass the cache
	switch n.GetNode().(type) {
	case *pg.Node_DoStmt:
		w.fail(refuseHint("run the block directly on the database, or write it as statements",
			"DO blocks are not allowed, even unscoped: their code runs unseen by the proxy"))
	case *pg.Node_AlterSystemStmt, *pg.Node_LoadStmt:
		w.fail(refuseHint("change the server's configuration directly on the database", "%s is not allowed through the proxy", statementName(n)))
	case *pg.Node_CreateRoleStmt, *pg.Node_AlterRoleStmt, *pg.Node_AlterRoleSetStmt, *pg.Node_DropRoleStmt,
		*pg.Node_GrantRoleStmt, *pg.Node_ReassignOwnedStmt:
		w.fail(refuseHint("manage roles directly on the database", "%s is not allowed through the proxy: the proxy's upstream role is shared by every session", statementName(n)))
	case *pg.Node_DiscardStmt:
		w.fail(refuseHint("RESET the settings you changed, DEALLOCATE and CLOSE what you created",
			"DISCARD is not allowed through the proxy: it would drop state the proxy keeps on the connection"))
	case *pg.Node_ListenStmt, *pg.Node_UnlistenStmt, *pg.Node_NotifyStmt:
		w.fail(refuseHint("use a token of the tenant whose channel it is",
			"%s is not available to an unscoped session: channels belong to a tenant", statementName(n)))
	default:
		w.connectionState(n)
	}
	if w.err != nil {
		return
	}
	eachMessage(n.ProtoReflect(), func(m protoreflect.Message) {
		if w.err != nil {
			return
		}
		switch x := m.Interface().(type) {
		case *pg.FuncCall:
			w.unscopedFunction(x)
		case *pg.VariableSetStmt:
			w.setting(x)
		case *pg.A_Expr:
			w.unscopedOperator(x.GetName())
		case *pg.SubLink:
			w.unscopedOperator(x.GetOperName())
		case *pg.RangeVar:
			if w.cfg.TransactionPooling && (x.GetRelpersistence() == "t" || strings.HasPrefix(x.GetSchemaname(), "pg_temp")) {
				// A temporary table would stay on the shared connection and
				// come first in the name resolution of the next session.
				w.fail(refuseHint("use a proxy in --pool-mode session for temporary tables",
					"temporary tables are not available in transaction pooling mode: they would outlive the transaction on a shared connection"))
			}
		}
	})
}

// unscopedFunction refuses, in an unscoped session, the functions that run
// SQL text, read the server's files, change settings or act on other
// sessions, and functions outside pg_catalog the catalog does not allow.
func (w *walker) unscopedFunction(f *pg.FuncCall) {
	names := f.GetFuncname()
	if len(names) == 0 || len(names) > 2 {
		w.fail(refusef("unsupported function call %s", qualified(names)))
		return
	}
	short := strings.ToLower(names[len(names)-1].GetString_().GetSval())
	schema := ""
	if len(names) == 2 {
		schema = names[0].GetString_().GetSval()
	}
	if schema != "" && schema != "pg_catalog" {
		if !w.snap.FunctionAllowed(schema + "." + short) {
			w.fail(&Rejection{Code: codeRefused, Reason: "function " + qualified(names) + " is not allowed",
				Hint:     "functions outside pg_catalog may run any SQL; one known to be safe can be allowed with: tenantproxy catalog allow-function " + qualified(names),
				Position: int(f.GetLocation()) + 1})
		}
		return
	}
	if allowedFunctions[short] || w.snap.FunctionAllowed(short) || unscopedFunctionOK(short) {
		if short == "current_setting" {
			w.settingRead(f)
		}
		return
	}
	hint := "an unscoped session may call built-in functions that compute, and sequence and server metadata functions"
	if why := whyRefused(short); why != "" {
		hint = short + " is refused because " + why
	}
	w.fail(&Rejection{Code: codeRefused, Reason: "function " + qualified(names) + " is not allowed", Hint: hint,
		Position: int(f.GetLocation()) + 1})
}

// unscopedFunctionOK reports whether a built-in function refused in scoped
// sessions only because it is not confined to a tenant (sequences, sizes,
// statistics, server metadata) may be called unscoped. Those that run SQL,
// read files, change settings or act on other sessions stay refused.
func unscopedFunctionOK(name string) bool {
	for _, denied := range unscopedDenied {
		if p, ok := strings.CutSuffix(denied, "*"); ok && strings.HasPrefix(name, p) || denied == name {
			return false
		}
	}
	switch why := whyRefused(name); why {
	case whySequences, whySizes, whyServerState:
		return true
	}
	return false
}

// unscopedDenied are the refused classes an unscoped session keeps, by name.
var unscopedDenied = strings.Fields(`query_to_xml* query_to_xmlschema cursor_to_xml* table_to_xml* schema_to_xml*
database_to_xml* dblink* ts_stat ts_rewrite pg_read_file pg_read_binary_file pg_ls_* pg_stat_file lo_* loread
lowrite set_config pg_sleep* pg_terminate_backend pg_cancel_backend pg_reload_conf pg_rotate_logfile pg_notify
pg_advisory_* pg_try_advisory_* pg_promote pg_switch_wal pg_create_* pg_drop_* pg_replication_* pg_logical_*
pg_start_backup pg_stop_backup pg_backup_* pg_import_system_collations pg_file_* pg_wal_replay_* pg_log_backend_memory_contexts
pg_listening_channels`)

// unscopedOperator refuses operators qualified with a schema other than
// pg_catalog: their functions may run any SQL.
func (w *walker) unscopedOperator(name []*pg.Node) {
	if len(name) == 2 && name[0].GetString_().GetSval() != "pg_catalog" {
		w.fail(refuseHint("use the built-in operators", "operator %s is outside pg_catalog and not allowed", qualified(name)))
	}
}

// readOnly refuses, for a read-only token, anything in the statement that
// writes: INSERT, UPDATE, DELETE and MERGE wherever they appear (WITH bodies
// included), row locks, COPY FROM, SELECT INTO, a transaction or setting
// that asks for read-write, and every statement but queries, EXPLAIN, SHOW,
// settings, transaction control, cursors and prepared statements. The
// upstream connection runs with default_transaction_read_only on as well.
func (w *walker) readOnly(n *pg.Node) {
	switch n.GetNode().(type) {
	case *pg.Node_SelectStmt, *pg.Node_InsertStmt, *pg.Node_UpdateStmt, *pg.Node_DeleteStmt, *pg.Node_MergeStmt,
		*pg.Node_ExplainStmt, *pg.Node_VariableShowStmt, *pg.Node_VariableSetStmt, *pg.Node_TransactionStmt,
		*pg.Node_DeclareCursorStmt, *pg.Node_FetchStmt, *pg.Node_ClosePortalStmt,
		*pg.Node_PrepareStmt, *pg.Node_ExecuteStmt, *pg.Node_DeallocateStmt, *pg.Node_CopyStmt,
		*pg.Node_ListenStmt, *pg.Node_UnlistenStmt, *pg.Node_NotifyStmt:
	default:
		w.fail(readOnlyRefusal("%s statements are", statementName(n)))
		return
	}
	eachMessage(n.ProtoReflect(), func(m protoreflect.Message) {
		if w.err != nil {
			return
		}
		switch x := m.Interface().(type) {
		case *pg.InsertStmt:
			w.fail(readOnlyRefusal("INSERT is"))
		case *pg.UpdateStmt:
			w.fail(readOnlyRefusal("UPDATE is"))
		case *pg.DeleteStmt:
			w.fail(readOnlyRefusal("DELETE is"))
		case *pg.MergeStmt:
			w.fail(readOnlyRefusal("MERGE is"))
		case *pg.LockingClause:
			w.fail(readOnlyRefusal("row locks (FOR UPDATE/SHARE) are"))
		case *pg.IntoClause:
			w.fail(readOnlyRefusal("SELECT INTO is"))
		case *pg.CopyStmt:
			if x.GetIsFrom() {
				w.fail(readOnlyRefusal("COPY FROM is"))
			}
		case *pg.DefElem:
			if strings.EqualFold(x.GetDefname(), "transaction_read_only") && !settingOn(x.GetArg()) {
				w.fail(readOnlyRefusal("read-write transactions are"))
			}
		case *pg.VariableSetStmt:
			// RESET and SET ... TO DEFAULT count as read-write: before
			// Postgres 16 they set the session's start value, off,
			// whatever default_transaction_read_only says.
			if strings.EqualFold(x.GetName(), "transaction_read_only") && (x.GetKind() != pg.VariableSetKind_VAR_SET_VALUE ||
				len(x.GetArgs()) != 1 || !settingOn(x.GetArgs()[0])) {
				w.fail(readOnlyRefusal("read-write transactions are"))
			}
		}
	})
}

// settingOn reports whether a boolean setting's value says on, read as
// Postgres's parse_bool does; anything else (NULL, a word it does not know)
// counts as off, so a read-only session refuses it.
func settingOn(n *pg.Node) bool {
	c := n.GetAConst()
	switch {
	case c == nil:
		return false
	case c.GetIval() != nil:
		return c.GetIval().GetIval() != 0
	case c.GetBoolval() != nil:
		return c.GetBoolval().GetBoolval()
	case c.GetSval() != nil:
		switch strings.ToLower(strings.TrimSpace(c.GetSval().GetSval())) {
		case "on", "1", "t", "tr", "tru", "true", "y", "ye", "yes":
			return true
		}
	}
	return false
}

func readOnlyRefusal(format string, args ...any) *Rejection {
	r := refuseHint("use a token with the write scope", format, args...)
	r.Code = codeReadOnly
	r.Reason += " not allowed: the token is read-only (its scope claim does not include the write scope)"
	return r
}

// codeReadOnly is read_only_sql_transaction, what Postgres says to a write
// in a read-only transaction.
const codeReadOnly = "25006"
