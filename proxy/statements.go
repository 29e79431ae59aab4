package proxy

import (
	"encoding/binary"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/tenantproxy/tenantproxy/catalog"
	"github.com/tenantproxy/tenantproxy/rewrite"
)

// sentinelPrefix starts the statement sent upstream in place of a refused
// one. Postgres answers it with a syntax error at exactly the point the
// refused statement would have failed: the transaction is aborted, the rest
// of a pipeline is skipped until Sync, and ReadyForQuery carries the right
// status. The relay swaps that error for the refusal before the client
// sees it. The sentinel runs nothing.
const sentinelPrefix = "tenantproxy_refused_"

// nonceLen is the length of a sentinel's hex nonce.
const nonceLen = 24

// A decision is what the session decided about one statement string
// before it takes the upstream connection: the rewrite (or the refusal)
// and, for a statement that runs, its audit event made durable. Deciding
// needs no lock, so a slow rewrite or a waiting audit stream never holds
// back the relay. Statements whose rewrite acts on the lent connection
// (the pooled resets) are decided when it is held: undecided is set.
type decision struct {
	id      string
	start   time.Time
	version int64
	res     *rewrite.Result
	err     error // the refusal (shadow mode: what enforce mode would refuse)
	// auditErr: the event could not be made durable; the statement is
	// refused in its place.
	auditErr  error
	undecided bool
	// fence: a Parse rewritten with rewrite.Scope.Fence (its declared
	// parameter types do not fit the security barrier's assumptions).
	fence bool
}

// decideReset finishes the decision on a pooled reset, which acts on the
// lent connection (leaseMu held): it returns what goes upstream in the
// client's place ("" when the client's string goes as it is).
func (s *session) decideReset(d *decision, sql string) string {
	if !d.undecided {
		return ""
	}
	upstream, err := s.pooledReset(d.res.Reset)
	if d.err = err; err != nil {
		d.res = nil
	}
	d.auditErr = s.auditStatement(d.id, sql, d.res, d.err, d.version, d.start)
	return upstream
}

// decideQuery rewrites and audits a simple-protocol query string (no lock
// held).
func (s *session) decideQuery(m *pgproto3.Query) *decision {
	d := &decision{id: s.nextStatementID(), start: time.Now()}
	snap := s.srv.cfg.Catalog.Snapshot()
	d.version = snap.Version()
	d.res, d.err = s.srv.cfg.Rewriter.Rewrite(m.String, s.scope, snap)
	if d.err == nil {
		if d.err = s.checkUses(d.res.Uses, snap); d.err != nil {
			d.res = nil
		}
	}
	if d.err == nil && d.res.Reset != nil {
		d.undecided = true
		return d
	}
	d.auditErr = s.auditStatement(d.id, m.String, d.res, d.err, d.version, d.start)
	return d
}

// handleQuery sends a decided simple Query upstream, rewritten, or a
// sentinel in its place. In shadow mode the client's string goes upstream
// either way.
func (s *session) handleQuery(m *pgproto3.Query, d *decision) {
	upstream := s.decideReset(d, m.String)
	res, err, id := d.res, d.err, d.id
	if err != nil && !s.shadow {
		s.refuse(err, nil)
		return
	}
	if d.auditErr != nil {
		s.refuse(errAuditUnavailable(d.auditErr), nil)
		return
	}
	if err != nil {
		// Shadow mode: enforce mode would have refused it; it runs.
		s.logWouldRefuse("statement", err)
		s.results.expect(id, false, s.rounds)
		s.sendQuery(m.String, false)
		return
	}
	s.book.sqlChanges(res, m.String, d.version)
	if res.CopyIn != nil && res.CopyIn.Keys != nil && !s.shadow {
		s.results.expectCopyKeys(id, s.rounds) // shadow mode sends the client's COPY alone
	} else {
		s.results.expect(id, false, s.rounds)
	}
	if res.CopyIn != nil {
		s.copyIn = newCopyFilter(res.CopyIn)
		s.copyIn.stmt = stmtRef{id: id, sql: m.String, fingerprint: res.Fingerprint}
		s.copyIn.watch = s.shadow
	}
	switch {
	case upstream != "":
		s.sendQuery(upstream, res.Settings)
	case s.shadow:
		s.sendQuery(m.String, res.Settings)
	default:
		s.sendQuery(res.SQL, res.Settings)
	}
}

// sendQuery sends a simple Query upstream. changesSettings marks the
// session's settings for reading back (transaction mode).
func (s *session) sendQuery(sql string, changesSettings bool) {
	if s.pooled {
		s.up.unnamed = "" // a simple Query drops the unnamed statement
		s.settingsDirty = s.settingsDirty || changesSettings
	}
	s.fe.Send(&pgproto3.Query{String: sql})
	s.rounds++
}

// decideParse rewrites and audits the SQL of a Parse (no lock held; see
// decision).
func (s *session) decideParse(m *pgproto3.Parse) *decision {
	d := &decision{id: s.nextStatementID(), start: time.Now()}
	if m.Name == "" {
		s.endUnnamed()
	}
	snap := s.srv.cfg.Catalog.Snapshot()
	d.version = snap.Version()
	d.res, d.fence, d.err = s.rewriteParse(m.Query, m.ParameterOIDs, snap)
	if d.err == nil && s.pooled && m.Name != "" && len(s.book.statement(m.Name)) > 0 {
		// Upstream, every Parse has a name of its own: say what
		// Postgres would.
		d.err = newClientError(codeDuplicatePrepared, "Close it first, or use another name", "prepared statement %q already exists", m.Name)
	}
	if d.err == nil && d.res.CopyIn != nil {
		d.err = newClientError(codeFeatureUnsupported, "send the COPY as a simple query", "COPY FROM STDIN into a tenant-bound table must use the simple query protocol")
	}
	if d.err == nil && d.res.Reset != nil {
		// The reset happens as the Parse goes upstream: what it sends
		// is a statement of the lent connection's.
		d.undecided = true
		return d
	}
	if d.err != nil {
		d.res = nil
	}
	d.auditErr = s.auditStatement(d.id, m.Query, d.res, d.err, d.version, d.start)
	return d
}

// handleParse sends a decided Parse upstream and remembers which parameters
// of the statement must carry the session's tenant. In shadow mode the
// client's SQL goes upstream either way.
func (s *session) handleParse(m *pgproto3.Parse, d *decision) {
	upstream := s.decideReset(d, m.Query)
	res, err, id := d.res, d.err, d.id
	if err != nil && !s.shadow || d.auditErr != nil {
		if m.Name == "" {
			s.book.refusedUnnamed()
		}
		if err == nil || s.shadow {
			err = errAuditUnavailable(d.auditErr)
		}
		s.refuse(err, &pgproto3.Parse{Name: m.Name})
		return
	}
	serverName := s.serverName(m.Name)
	st := preparedStmt{id: id, serverName: serverName, oids: slices.Clone(m.ParameterOIDs)}
	query := m.Query
	if err != nil {
		// Shadow mode: enforce mode would have refused it; it is
		// prepared as sent, and its Binds have nothing to check. The
		// book still records it: its ParseComplete will come.
		s.logWouldRefuse("statement", err)
		st.definition, st.unscoped = definition{sql: m.Query}, true
	} else {
		// Drops take effect only when executed; definitions are
		// recorded now (keeping more than exists only adds checks).
		s.book.sqlChanges(&rewrite.Result{SQL: res.SQL, Defines: res.Defines, Uses: res.Uses}, m.Query, d.version)
		st.definition = definition{sql: m.Query, rewritten: res.SQL, version: d.version, uses: res.Uses, fence: d.fence}
		if upstream != "" {
			st.rewritten = upstream
		}
		st.checks, st.fingerprint = res.ParamChecks, res.Fingerprint
		s.settingsDirty = s.settingsDirty || s.pooled && res.Settings
		if !s.shadow {
			query = res.SQL
		}
		if upstream != "" {
			query = upstream
		}
	}
	s.book.parsed(m.Name, st, s.rounds)
	s.sentParse(serverName, id)
	s.fe.Send(&pgproto3.Parse{Name: serverName, Query: query, ParameterOIDs: m.ParameterOIDs})
}

// handleBind checks the parameters that must name the session's tenant and
// forwards the Bind, or refuses it. In shadow mode a Bind enforce mode
// would refuse is recorded and forwarded.
func (s *session) handleBind(m *pgproto3.Bind) {
	recs := s.book.statement(m.PreparedStatement)
	err := s.checkBind(m)
	if err != nil {
		ref := stmtRef{}
		if len(recs) > 0 {
			st := recs[len(recs)-1]
			ref = stmtRef{id: st.id, sql: st.sql, fingerprint: st.fingerprint}
		}
		err = s.lateRefusal("statement.bind", ref, err)
	}
	if err == nil && s.pooled && len(recs) == 0 {
		// Never pass on a name this session did not prepare: upstream
		// it could be another session's statement.
		err = unknownStatement(m.PreparedStatement)
	}
	if err != nil {
		s.refuse(err, &pgproto3.Parse{Name: sentinelPrefix + randomHex(8)})
		return
	}
	s.results.portals[m.DestinationPortal] = ""
	if len(recs) > 0 {
		st := recs[len(recs)-1]
		s.results.portals[m.DestinationPortal] = st.id
		s.onServer(st)
		if st.serverName != m.PreparedStatement {
			bind := *m
			bind.PreparedStatement = st.serverName
			m = &bind
		}
	}
	s.fe.Send(m)
}

// handleFunctionCall refuses the fast-path function call protocol, which
// carries no SQL to scope (in shadow mode: records that enforce mode
// would, and forwards it).
func (s *session) handleFunctionCall(m *pgproto3.FunctionCall) {
	start := time.Now()
	id := s.nextStatementID()
	err := newClientError(codeInsufficientPriv, "call functions from SQL instead",
		"the fast-path function call protocol is not allowed (function oid %d)", m.Function)
	aerr := s.auditStatement(id, "", nil, err, s.srv.cfg.Catalog.Snapshot().Version(), start)
	switch {
	case !s.shadow:
		s.refuse(err, nil)
	case aerr != nil:
		s.refuse(errAuditUnavailable(aerr), nil)
	default:
		s.results.expect(id, false, s.rounds)
		s.fe.Send(m)
		s.rounds++ // answered with ReadyForQuery
	}
}

// checkBind checks every record of the statement being bound: it must still
// be scoped the same way under the current catalog, and its tenant
// parameters must carry the session's tenants.
func (s *session) checkBind(m *pgproto3.Bind) error {
	snap := s.srv.cfg.Catalog.Snapshot()
	recs := s.book.statement(m.PreparedStatement)
	if len(recs) == 0 {
		// Perhaps a statement made by SQL PREPARE.
		return s.checkUses([]string{"stmt:" + m.PreparedStatement}, snap)
	}
	for _, st := range recs {
		if st.unscoped {
			continue // shadow mode: its Parse was recorded as would-reject
		}
		if !s.current(st.definition, snap) {
			return staleError("prepared statement "+quoteName(m.PreparedStatement), snap.Version())
		}
		if err := s.checkUses(st.uses, snap); err != nil {
			return err
		}
		for _, c := range st.checks {
			if err := s.checkParam(m, st, c); err != nil {
				return err
			}
		}
	}
	s.book.revalidated(m.PreparedStatement, snap.Version())
	return nil
}

// current reports whether a definition is scoped today as it was when it
// went upstream: same catalog version, or the same rewritten SQL now.
func (s *session) current(def definition, snap *catalog.Snapshot) bool {
	if def.version == snap.Version() {
		return true
	}
	scope := s.scope
	scope.Fence = def.fence
	res, err := s.srv.cfg.Rewriter.Rewrite(def.sql, scope, snap)
	return err == nil && res.SQL == def.rewritten
}

// rewriteParse rewrites a Parse's SQL. When the parameter types the client
// declared do not fit the comparisons the security barrier counted as
// leakproof (a parameter declared numeric against an integer column
// coerces the column), it rewrites again with every statement fenced.
func (s *session) rewriteParse(sql string, oids []uint32, snap *catalog.Snapshot) (res *rewrite.Result, fence bool, err error) {
	res, err = s.srv.cfg.Rewriter.Rewrite(sql, s.scope, snap)
	if err != nil || res.ParamTypesFit(oids) {
		return res, false, err
	}
	scope := s.scope
	scope.Fence = true
	res, err = s.srv.cfg.Rewriter.Rewrite(sql, scope, snap)
	return res, true, err
}

// checkUses refuses running a prepared statement or cursor that was defined
// under an older catalog and would now be scoped differently.
func (s *session) checkUses(uses []string, snap *catalog.Snapshot) error {
	for _, key := range uses {
		defs := s.book.sqlDefinitions(key)
		if name, ok := strings.CutPrefix(key, "stmt:"); ok {
			for _, st := range s.book.statement(name) {
				defs = append(defs, st.definition)
			}
		}
		for _, d := range defs {
			if !s.current(d, snap) {
				kind, name, _ := strings.Cut(key, ":")
				what := "prepared statement " + quoteName(name)
				if kind == "cursor" {
					what = "cursor " + quoteName(name)
				}
				return staleError(what, snap.Version())
			}
		}
		s.book.sqlRevalidated(key, snap.Version())
	}
	return nil
}

// staleError says that a statement prepared under an older catalog would
// now be scoped differently.
func staleError(what string, version int64) error {
	return newClientError(codeInsufficientPriv, "prepare it again (DEALLOCATE or Close it, then PREPARE or Parse it anew)",
		"the tenant catalog changed (now version %d) since %s was defined; it would no longer be scoped the same way", version, what)
}

func quoteName(name string) string {
	if name == "" {
		return "(unnamed)"
	}
	return strconv.Quote(name)
}

// checkParam verifies that the value bound to a tenant-column parameter is
// one of the scope's tenants.
func (s *session) checkParam(m *pgproto3.Bind, st preparedStmt, c rewrite.ParamCheck) error {
	i := c.Index - 1
	if i < 0 || i >= len(m.Parameters) {
		return nil // Postgres rejects the Bind for its parameter count
	}
	value := m.Parameters[i]
	if value == nil {
		return newClientError(codeInsufficientPriv, "bind the tenant column to your tenant", "parameter $%d sets the tenant column to NULL", c.Index)
	}
	format := int16(0)
	switch len(m.ParameterFormatCodes) {
	case 0:
	case 1:
		format = m.ParameterFormatCodes[0]
	default:
		if i < len(m.ParameterFormatCodes) {
			format = m.ParameterFormatCodes[i]
		}
	}
	var oid uint32
	if i < len(st.oids) {
		oid = st.oids[i]
	}
	if oid == 0 {
		// Undeclared: Postgres gives the parameter the tenant column's type.
		oid = typeOID(c.Type)
	}
	text, err := paramText(value, format, oid)
	if err != nil {
		return newClientError(codeInsufficientPriv, "bind the tenant column in text format or declare its type in Parse", "parameter $%d sets the tenant column, but %v", c.Index, err)
	}
	if slices.Contains(s.scope.Values[c.Claim], text) {
		return nil
	}
	return newClientError(codeInsufficientPriv, "a session may only write rows of the tenants in its token",
		"parameter $%d names tenant %q, which is not the session's tenant", c.Index, text)
}

// Type OIDs whose binary form paramText can read.
const (
	oidInt2    = 21
	oidInt4    = 23
	oidInt8    = 20
	oidText    = 25
	oidVarchar = 1043
	oidUUID    = 2950
)

// typeOID maps a catalogued column type (format_type output) to the OID
// paramText can read, or 0.
func typeOID(typ string) uint32 {
	switch {
	case typ == "smallint":
		return oidInt2
	case typ == "integer":
		return oidInt4
	case typ == "bigint":
		return oidInt8
	case typ == "text", strings.HasPrefix(typ, "character varying"):
		return oidText
	case typ == "uuid":
		return oidUUID
	}
	return 0
}

// paramText returns the text form of a bound value, as Postgres would read it.
// Binary values are read only when their type is known exactly.
func paramText(v []byte, format int16, oid uint32) (string, error) {
	if format == 0 {
		return string(v), nil
	}
	switch {
	case oid == oidInt2 && len(v) == 2:
		return strconv.FormatInt(int64(int16(binary.BigEndian.Uint16(v))), 10), nil
	case oid == oidInt4 && len(v) == 4:
		return strconv.FormatInt(int64(int32(binary.BigEndian.Uint32(v))), 10), nil
	case oid == oidInt8 && len(v) == 8:
		return strconv.FormatInt(int64(binary.BigEndian.Uint64(v)), 10), nil
	case oid == oidText || oid == oidVarchar:
		return string(v), nil
	case oid == oidUUID && len(v) == 16:
		h := fmt.Sprintf("%x", v)
		return strings.Join([]string{h[0:8], h[8:12], h[12:16], h[16:20], h[20:32]}, "-"), nil
	}
	return "", fmt.Errorf("its binary value of type oid %d cannot be checked", oid)
}

// refuse makes the client see err where the refused message would have
// failed. A nil parse sends a simple Query sentinel (for Query and
// FunctionCall); otherwise a Parse of the sentinel under parse.Name.
func (s *session) refuse(err error, parse *pgproto3.Parse) {
	nonce := randomHex(nonceLen / 2)
	resp := errorResponse(err, "ERROR")
	s.refusalMu.Lock()
	s.refusals[nonce] = refusal{resp: resp, round: s.rounds}
	s.refusalMu.Unlock()
	s.log.Info("statement refused", "code", resp.Code, "reason", resp.Message)
	if parse == nil {
		s.results.expect("", false, s.rounds)
		s.sendQuery(sentinelPrefix+nonce, false)
		return
	}
	name := parse.Name
	if s.pooled && name != "" && !strings.HasPrefix(name, sentinelPrefix) {
		name = sentinelPrefix + randomHex(8) // the client's names are not used upstream
	}
	if s.pooled && name == "" {
		s.up.unnamed = ""
	}
	s.fe.Send(&pgproto3.Parse{Name: name, Query: sentinelPrefix + nonce})
}

// takeRefusal returns the refusal whose sentinel caused upstream error e.
func (s *session) takeRefusal(e *pgproto3.ErrorResponse) (*pgproto3.ErrorResponse, bool) {
	if e.Code != "42601" && e.Code != "57014" { // 57014: a CopyFail we sent
		return nil, false
	}
	i := strings.Index(e.Message, sentinelPrefix)
	if i < 0 {
		return nil, false
	}
	// Take the hex nonce itself: the quotes around it depend on lc_messages.
	nonce := e.Message[i+len(sentinelPrefix):]
	if len(nonce) < nonceLen {
		return nil, false
	}
	nonce = nonce[:nonceLen]
	s.refusalMu.Lock()
	defer s.refusalMu.Unlock()
	r, ok := s.refusals[nonce]
	if !ok {
		return nil, false
	}
	delete(s.refusals, nonce)
	return r.resp, true
}

// expireRefusals drops refusals whose round has ended without their sentinel
// coming back (Postgres skipped it after an earlier error in the pipeline).
// ready counts the ReadyForQuery messages relayed so far.
func (s *session) expireRefusals(ready int) {
	s.refusalMu.Lock()
	defer s.refusalMu.Unlock()
	for k, r := range s.refusals {
		if r.round < ready {
			delete(s.refusals, k)
		}
	}
}
