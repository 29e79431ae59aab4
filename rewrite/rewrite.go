package rewrite

import (
	"errors"
	"fmt"
	"strings"

	pg "github.com/pganalyze/pg_query_go/v5"
	"github.com/pganalyze/pg_query_go/v5/parser"
	"github.com/tenantproxy/tenantproxy/catalog"
	"github.com/tenantproxy/tenantproxy/rewrite/leakproof"
	"github.com/tenantproxy/tenantproxy/rewrite/verify"
)

// Scope is what one session may see: for each claim dimension, the tenant
// values its token holds. The key "" is the proxy's primary tenant claim.
type Scope struct {
	Values map[string][]string
	// Unscoped sessions (a token of the --unscoped-role) run without
	// tenant predicates: statements go upstream as sent, DDL included,
	// once the checks that protect the server and the other sessions pass
	// (modes.go). Their decision is Unscoped.
	Unscoped bool
	// ReadOnly sessions (a token whose scope claim lacks the write scope)
	// may not write: INSERT, UPDATE, DELETE, MERGE, COPY FROM, row locks
	// and read-write transactions are refused (SQLSTATE 25006).
	ReadOnly bool
	// Fence rewrites as if every statement held an expression that is not
	// leakproof, and counts no comparison with a parameter as leakproof:
	// for a statement whose declared parameter types do not fit the
	// columns they are compared with (Result.ParamTypesFit).
	Fence bool
}

// Decision is what the rewriter did with a statement string.
type Decision string

const (
	// Passed statements touch no catalogued relation and go upstream as sent.
	Passed Decision = "passed"
	// Rewritten statements were scoped to the session's tenants.
	Rewritten Decision = "rewritten"
	// Rejected statements never go upstream.
	Rejected Decision = "rejected"
	// Unscoped statements ran in an unscoped session: sent as they came,
	// after the checks that still apply there.
	Unscoped Decision = "unscoped"
)

// ParamCheck asks the session to check a bound parameter: the value bound to
// parameter Index (1-based) must be one of the scope's values for Claim.
// Type is the tenant column's type as the catalog knows it ("integer",
// "uuid", ...; empty when unknown), which is the type Postgres gives the
// parameter unless the client declared another.
type ParamCheck struct {
	Index int
	Claim string
	Type  string
}

// PooledReset is what a pool's reset statement asks of the session in
// transaction pooling, where the upstream connection is shared.
type PooledReset struct {
	// Deallocate names the client's protocol-level prepared statement to
	// drop (the session sends DEALLOCATE of its server name instead); All
	// drops every one of them.
	Deallocate string
	All        bool
	// ResetAll: the session's settings go back to their defaults.
	ResetAll bool
}

// Rule says what the rewriter did with one relation, for --explain.
type Rule struct {
	Relation string // schema.name
	Rule     string
}

// Result is an accepted statement string.
type Result struct {
	SQL         string
	Decision    Decision
	ParamChecks []ParamCheck
	// Tables lists the tenant-bound tables the statement was scoped on
	// (schema.name, in order of first appearance).
	Tables []string
	// Rules lists, per relation in order of appearance, the rule applied.
	Rules []Rule
	// Defines and Uses name the SQL-level prepared statements ("stmt:p")
	// and cursors ("cursor:c") the string creates (PREPARE, DECLARE) and
	// runs (EXECUTE, FETCH, MOVE): a session re-checks a definition made
	// under an older catalog before it is used.
	Defines, Uses []string
	// Drops name what DEALLOCATE and CLOSE remove ("stmt:*" and
	// "cursor:*" for ALL).
	Drops []string
	// CopyIn, for COPY ... FROM STDIN into a tenant-bound table, says how
	// the session must check and fill the rows the client sends.
	CopyIn *CopyIn
	// Settings reports that the string changes session settings (SET or
	// RESET without LOCAL, SET SESSION CHARACTERISTICS).
	Settings bool
	// Reset, in transaction pooling, is the statement's reset of the
	// client's connection state (DEALLOCATE, DISCARD, RESET ALL): the
	// session carries it out on what it tracks for the client. The
	// string holds that statement only.
	Reset *PooledReset
	// Fingerprint is pg_query's fingerprint of the statement as the client
	// sent it (the same for every constant), for the audit stream.
	Fingerprint string

	// literalSensitive: the rewrite read a constant's value (literals.go).
	literalSensitive bool
	// paramUses are the parameters the security barrier compared as
	// leakproof, and the family each must be of.
	paramUses map[int]leakproof.ParamUse
}

// ParamTypesFit reports whether the parameter types a client declared
// (Parse's OIDs, $1 first; 0 for unspecified) fit what the security barrier
// assumed of them: a parameter compared with an integer column must be an
// integer, or left to Postgres. When they do not, rewrite the statement
// again with Scope.Fence.
func (r *Result) ParamTypesFit(oids []uint32) bool {
	for i, use := range r.paramUses {
		if i >= 1 && i <= len(oids) && !use.Fits(oids[i-1]) {
			return false
		}
	}
	return true
}

// CopyIn describes the rows of a COPY ... FROM STDIN into a tenant-bound
// table: their format, which fields must hold one of the session's values,
// and which values the proxy appends to every row (the tenant columns the
// client's column list left out, added to the statement's column list).
type CopyIn struct {
	Binary    bool   // Postgres's binary COPY format
	CSV       bool   // else text format
	Delimiter byte   // field separator
	Quote     byte   // CSV quote
	Escape    byte   // CSV escape inside quotes
	Null      string // how a NULL is written
	Header    bool   // the first line is a header, passed on as it is
	Fields    int    // fields per row the client sends
	Checks    []CopyCheck
	Fill      []string
	// FillTypes are the catalogued types of the filled columns (the binary
	// format writes each value in its type's binary form).
	FillTypes []string
	// Keys, when the rows set guarded foreign keys: the session sends
	// each distinct key to the check the string runs after the client's
	// COPY (copykeys.go).
	Keys *CopyKeys
	// Statement is the COPY alone, when Keys puts the proxy's statements
	// around it in the string sent.
	Statement string

	keysCreate, keysLoad, keysCheck string
}

// CopyCheck is one field (0-based) that must hold one of Values.
type CopyCheck struct {
	Field  int
	Column string
	Type   string // the column's catalogued type
	Values []string
}

// Rejection is a refused statement: never sent upstream.
type Rejection struct {
	Code     string // SQLSTATE: 42501 for a refusal, 42601 for a syntax error
	Reason   string // what was refused and why, without the "tenantproxy: " prefix
	Hint     string // what to do about it
	Position int    // 1-based character position in the statement, 0 if none
}

func (r *Rejection) Error() string { return "tenantproxy: " + r.Reason }

// Config holds what does not change between statements.
type Config struct {
	// SearchPath resolves unqualified relation names (default ["public"]).
	SearchPath []string
	// Database is the upstream database's name: a relation qualified with
	// it (db.schema.table) is accepted, as Postgres does.
	Database string
	// TransactionPooling refuses what cannot outlive a transaction on a
	// pooled connection: SQL-level PREPARE, EXECUTE and DEALLOCATE,
	// cursors WITH HOLD, and LISTEN.
	TransactionPooling bool
	// TenantSchema, when set, is schema-per-tenant isolation: the pattern
	// naming each tenant's schema, with {tenant} for the tenant value
	// ("tenant_{tenant}"; see schema.go).
	TenantSchema string
}

// Rewriter scopes statements. It does no I/O and holds no mutable state.
type Rewriter struct{ cfg Config }

// New returns a Rewriter.
func New(cfg Config) *Rewriter {
	if len(cfg.SearchPath) == 0 {
		cfg.SearchPath = []string{"public"}
	}
	return &Rewriter{cfg: cfg}
}

// Rewrite confines every statement of sql to scope under the catalog snap.
// The error is always a *Rejection.
func (r *Rewriter) Rewrite(sql string, scope Scope, snap *catalog.Snapshot) (res *Result, err error) {
	defer func() {
		// The parser's protobuf tree is untrusted input to our walker; a
		// bug there must become a refusal, never a crash of the session.
		if p := recover(); p != nil {
			res, err = nil, refusef("internal error while rewriting (%v)", p)
		}
	}()
	if snap == nil {
		return nil, refuseHint("load the catalog before serving statements", "no tenant catalog is loaded")
	}
	if i := strings.IndexByte(sql, 0); i >= 0 {
		// The parser reads a C string and would stop at the NUL; nothing
		// may follow that it has not seen.
		return nil, &Rejection{Code: codeRefused, Reason: "the statement contains a NUL byte", Position: i + 1,
			Hint: "send the statement without NUL characters"}
	}
	tree, err := pg.Parse(sql)
	if err != nil {
		return nil, syntaxRejection(err)
	}
	w := &walker{cfg: r.cfg, scope: scope, snap: snap}
	if r.cfg.TenantSchema != "" {
		w.ownSchema, w.ownSchemaErr = TenantSchemaName(r.cfg.TenantSchema, scope.Values[""])
	}
	for _, raw := range tree.GetStmts() {
		if scope.ReadOnly {
			w.readOnly(raw.GetStmt())
		}
		switch {
		case w.err != nil:
		case scope.Unscoped:
			w.unscopedStatement(raw.GetStmt())
		default:
			w.scanBarrier(raw.GetStmt())
			w.topStatement(raw.GetStmt())
			if w.err == nil {
				w.moveIntoFences(raw.GetStmt())
			}
		}
		if w.err != nil {
			return nil, w.err
		}
	}
	if w.pooledReset != nil {
		if w.pooledReset.Deallocate != "" && len(tree.GetStmts()) > 1 {
			return nil, refuseHint("send it as a statement of its own",
				"DEALLOCATE of a prepared statement must be the only statement of its string in transaction pooling mode")
		}
		w.literalSensitive = true // names matter; rare enough not to cache
	}
	if scope.Unscoped {
		// Nothing to scope and nothing the verifier could check: the
		// statement goes as sent.
		return &Result{SQL: sql, Decision: Unscoped, Defines: w.defines, Uses: w.uses, Drops: w.drops,
			Settings: w.settings, Fingerprint: Fingerprint(sql), literalSensitive: true, Reset: w.pooledReset}, nil
	}
	if w.copyIn != nil && len(tree.GetStmts()) > 1 {
		// The session checks the rows of exactly one COPY.
		return nil, refuseHint("send the COPY on its own", "COPY FROM STDIN into a tenant-bound table must be the only statement of its string")
	}
	res = &Result{SQL: sql, Decision: Passed, ParamChecks: w.params, Rules: w.rules, Defines: w.defines, Uses: w.uses, Drops: w.drops, CopyIn: w.copyIn,
		Settings: w.settings, literalSensitive: w.literalSensitive}
	if w.changed {
		out, rej := deparse(tree)
		if rej != nil {
			return nil, rej
		}
		res = &Result{SQL: out, Decision: Rewritten, ParamChecks: w.params, Tables: w.tables, Rules: w.rules, Defines: w.defines, Uses: w.uses, Drops: w.drops, CopyIn: w.copyIn,
			Settings: w.settings, literalSensitive: w.literalSensitive}
	}
	res.Fingerprint = Fingerprint(sql)
	res.paramUses = w.paramUses
	if w.cfg.TransactionPooling {
		res.Reset = w.pooledReset
	}
	// The second line: an independent checker must agree with what is sent,
	// passed statements included.
	policy := verify.Policy{Tenants: scope.Values, SearchPath: r.cfg.SearchPath, Snapshot: snap, TenantSchema: w.ownSchema, UntypedParams: scope.Fence}
	if ci := res.CopyIn; ci != nil && ci.Keys != nil {
		// The COPY and the check of its rows' keys after it, which
		// reads bound tables (and scopes a path-bound table's rows).
		if err := verify.CheckCopy(res.SQL, ci.keysCheck, policy); err != nil {
			return nil, &Rejection{Code: codeRefused, Reason: "the COPY and the check of its rows could not be verified as tenant-confined: " + err.Error(),
				Hint: "this is a gap in the rewriter; use INSERT, and report it"}
		}
		ci.Statement = res.SQL
		res.SQL = copyKeysString(ci, res.SQL)
		return res, nil
	}
	if err := verify.Check(res.SQL, policy); err != nil {
		return nil, &Rejection{Code: codeRefused, Reason: "statement could not be verified as tenant-confined: " + err.Error(),
			Hint: "this is a gap in the rewriter; rephrase the statement, and report it"}
	}
	return res, nil
}

const (
	codeRefused = "42501"
	codeSyntax  = "42601"
)

func syntaxRejection(err error) *Rejection {
	var pe *parser.Error
	if errors.As(err, &pe) {
		return &Rejection{Code: codeSyntax, Reason: pe.Message, Position: pe.Cursorpos, Hint: "the statement is not valid SQL"}
	}
	return &Rejection{Code: codeSyntax, Reason: err.Error()}
}

// refusal is what the walker records when it must refuse.
func refusef(format string, args ...any) *Rejection {
	return &Rejection{Code: codeRefused, Reason: fmt.Sprintf(format, args...), Hint: defaultHint}
}

// defaultHint goes with refusals that have no more specific advice.
const defaultHint = "the proxy refuses what it cannot confine to your tenant; rephrase the statement (the README lists what is supported)"

func refuseHint(hint, format string, args ...any) *Rejection {
	return &Rejection{Code: codeRefused, Reason: fmt.Sprintf(format, args...), Hint: hint}
}
