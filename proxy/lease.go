package proxy

import (
	"errors"
	"fmt"
	"maps"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"
)

// Transaction mode. The tenant is a literal in every rewritten statement,
// so an upstream connection carries nothing of its last client's tenant
// and can serve any client between transactions. What a connection does
// carry is made to follow the client instead:
//   - settings: the client's values of the tracked settings are applied
//     when a connection is lent to it, and read back after it ran a SET;
//   - protocol prepared statements get server-side names of their own
//     (tpx_<session>_<n>) and are prepared again, on demand, on a
//     connection that lacks them; the client never names a server-side
//     statement itself, so no client can run another's;
//   - session-level SQL state (PREPARE, WITH HOLD cursors, LISTEN) is
//     refused by the rewriter; advisory locks are refused in every mode.
//     NOTIFY works: it is delivered when its transaction commits.
// A connection goes back to the pool only when upstream is idle ('I')
// and has answered everything sent; one left mid-transaction, aborted or
// broken when its client leaves is closed, never lent again.

// settingsTimeout bounds the proxy's own statements on a lent connection.
const settingsTimeout = 10 * time.Second

// poolKey is the session's tenants, the key of its share of the pool.
func (s *session) poolKey() string {
	return strings.Join(s.identity.Tenants, ",")
}

// lease takes a connection from the pool for the session (leaseMu held)
// and brings it to the client's settings; with relay set it starts
// relaying it (else the caller relays: roundTripInline).
func (s *session) lease(relay bool) error {
	sc, err := s.srv.pool.acquire(s.ctx, s.poolKey())
	if err != nil {
		if errors.Is(err, errPoolTimeout) {
			p := s.srv.pool.cfg
			return newClientError(codeTooManyConnections,
				"retry; if it persists, raise --pool-size or --query-wait-timeout, or keep transactions shorter",
				"no database connection became free within %s (all %d in use)", p.WaitTimeout, p.Size)
		}
		return upstreamConnectError(s.log, err)
	}
	if err := s.applySettings(sc); err != nil {
		s.log.Warn("preparing an upstream connection failed", "err", err)
		s.srv.pool.release(sc, false)
		return newClientError(codeConnectionFailure, "retry; the proxy's log has details", "could not prepare a database connection")
	}
	s.up, s.fe = sc, sc.fe
	s.srv.cancels.retarget(s.keyPID, sc.cancelTarget())
	if relay {
		s.startRelay()
	} else {
		sc.owner.Store(s)
	}
	return nil
}

// startRelay starts relaying the held connection. The relay writes to the
// client, so it starts once the startup messages are out.
func (s *session) startRelay() {
	sc := s.up
	sc.owner.Store(s)
	done := make(chan error, 1)
	s.relayDone = done
	go s.relay(sc, done)
}

// applySettings brings a lent connection to the client's settings and
// clears its statements when it holds too many.
func (s *session) applySettings(sc *serverConn) error {
	var stmts []string
	if len(sc.prepared) >= maxServerStatements {
		stmts = append(stmts, "DEALLOCATE ALL")
		clear(sc.prepared)
	}
	for _, name := range trackedSettings {
		if v, ok := s.settings[name]; ok && (sc.settings == nil || sc.settings[name] != v) {
			stmts = append(stmts, "SET "+name+" = "+quoteLiteral(v))
		}
	}
	if len(stmts) == 0 {
		return nil
	}
	sc.settings = nil // unknown until the statements succeed
	if _, err := sc.exec(strings.Join(stmts, "; "), settingsTimeout); err != nil {
		return err
	}
	sc.settings = s.settings // never changed in place: shared
	return nil
}

// release gives sc back to the pool after a ReadyForQuery (relay
// goroutine) when the session may let it go: upstream idle, every round
// answered, no extended-protocol message since the last Sync. Settings a
// SET changed are read back first.
func (s *session) release(sc *serverConn, txStatus byte) bool {
	s.leaseMu.Lock()
	defer s.leaseMu.Unlock()
	if s.up != sc || txStatus != 'I' || s.ready != s.rounds || s.unsynced {
		return false
	}
	reusable := true
	if s.settingsDirty {
		s.settingsDirty = false
		vals, err := sc.readSettings(settingsTimeout)
		if err != nil {
			s.log.Warn("reading the session's settings back failed; the connection is closed", "err", err)
			reusable = false
		} else {
			s.settings, sc.settings = vals, vals
		}
	}
	s.up, s.fe = nil, nil
	s.srv.cancels.retarget(s.keyPID, cancelTarget{})
	_ = s.flushClient()
	s.srv.pool.release(sc, reusable)
	if cfg := s.srv.cfg; s.srv.parker != nil && !s.tls && cfg.ClientIdleTimeout <= 0 && cfg.IdleInTransactionTimeout <= 0 {
		// The session goroutine may be reading with no deadline (it
		// held the connection when it began): give it one, so that it
		// parks if its client stays idle.
		s.deadlineSet.Store(true)
		_ = s.conn.SetReadDeadline(time.Now().Add(parkAfter))
	}
	return true
}

// dropConn closes a connection that failed or whose session ended while
// holding it.
func (s *session) dropConn(sc *serverConn) {
	if sc.pool != nil {
		sc.pool.release(sc, false)
		return
	}
	sc.owner.Store(nil)
	sc.conn.Close()
	s.srv.cfg.Metrics.serverConnected(-1)
}

// startPooled authenticates a transaction-mode client against a lent
// connection: the client's startup settings are applied and read back
// (Postgres checks them), and the connection's parameter status is what
// the client is told.
func (s *session) startPooled(params map[string]string) (map[string]string, error) {
	sc, err := s.srv.pool.acquire(s.ctx, s.poolKey())
	if err != nil {
		if errors.Is(err, errPoolTimeout) {
			p := s.srv.pool.cfg
			return nil, newClientError(codeTooManyConnections, "retry; if it persists, raise --pool-size or --query-wait-timeout",
				"no database connection became free within %s (all %d in use)", p.WaitTimeout, p.Size)
		}
		return nil, upstreamConnectError(s.log, err)
	}
	// The connection carries the settings of whichever client used it
	// last: back to the connection's defaults first, then the client's
	// startup parameters, so a new client starts as on a connection of
	// its own (never with another's read-only flag or time zone).
	stmts := []string{"RESET ALL"}
	for _, name := range trackedSettings {
		for k, v := range params {
			if strings.EqualFold(k, name) {
				stmts = append(stmts, "SET "+name+" = "+quoteLiteral(v))
			}
		}
	}
	sc.settings = nil
	if _, err := sc.exec(strings.Join(stmts, "; "), settingsTimeout); err != nil {
		s.srv.pool.release(sc, true)
		return nil, err // Postgres's own error about the setting
	}
	vals, err := sc.readSettings(settingsTimeout)
	if err != nil {
		s.srv.pool.release(sc, false)
		return nil, upstreamConnectError(s.log, err)
	}
	s.settings, sc.settings = vals, vals
	s.startSettings = vals
	status := maps.Clone(sc.params)
	s.srv.pool.release(sc, true)
	s.keyPID, s.keySecret = s.srv.cancels.register(cancelTarget{})
	return status, nil
}

// quoteLiteral quotes a setting's value as a SQL string constant
// (standard_conforming_strings is on for the proxy's statements).
func quoteLiteral(v string) string {
	if strings.ContainsAny(v, "\\\x00") {
		return "E'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`, "\x00", "").Replace(v) + "'"
	}
	return "'" + strings.ReplaceAll(v, "'", "''") + "'"
}

// serverName is the name a new protocol statement gets upstream: its own
// in session mode; in transaction mode one no other session uses.
func (s *session) serverName(client string) string {
	if !s.pooled || client == "" {
		return client
	}
	s.stmtGen++
	return fmt.Sprintf("tpx_%s_%d", s.id, s.stmtGen)
}

// onServer makes sure the connection holds st before a Bind or Describe
// names it (transaction mode): a Parse is added in front when it does
// not, and its ParseComplete is not relayed.
func (s *session) onServer(st preparedStmt) {
	if !s.pooled {
		return
	}
	sc := s.up
	if st.serverName == "" {
		if sc.unnamed == st.id {
			return
		}
		sc.unnamed = st.id
	} else {
		if sc.prepared[st.serverName] {
			return
		}
		sc.prepared[st.serverName] = true
	}
	s.book.injected(st.serverName, s.rounds)
	s.fe.Send(&pgproto3.Parse{Name: st.serverName, Query: st.rewritten, ParameterOIDs: st.oids})
}

// sentParse notes a Parse sent to the held connection (transaction mode):
// the statement is there unless the Parse fails, which the relay notes.
func (s *session) sentParse(serverName, id string) {
	if !s.pooled {
		return
	}
	if serverName == "" {
		s.up.unnamed = id
		return
	}
	s.up.prepared[serverName] = true
}

// forgetFailedParses removes from sc the statements whose Parse never
// completed (leaseMu held).
func (s *session) forgetFailedParses(sc *serverConn, failed []pendingParse) {
	for _, p := range failed {
		if p.stmt.serverName == "" {
			sc.unnamed = ""
		} else {
			delete(sc.prepared, p.stmt.serverName)
		}
	}
}

// unknownStatement is Postgres's error for a statement name the session
// does not have.
func unknownStatement(name string) error {
	if name == "" {
		return newClientError(codeInvalidSQLStatementName, "", "unnamed prepared statement does not exist")
	}
	return newClientError(codeInvalidSQLStatementName, "", "prepared statement %q does not exist", name)
}

// handleClose forwards Close. In transaction mode a statement is closed
// under its server name on the held connection (others drop theirs when
// cleared); a name the session does not have is closed as a name nobody
// has, which Postgres answers like any Close.
func (s *session) handleClose(m *pgproto3.Close) {
	if m.ObjectType != 'S' {
		s.fe.Send(m)
		return
	}
	recs := s.book.statement(m.Name)
	if len(recs) > 0 {
		s.statementEnded(recs[0].id, s.results.take(recs[0].id))
	}
	s.book.closed(m.Name)
	if !s.pooled {
		s.fe.Send(m)
		return
	}
	name := "tpx_" + s.id + "_none"
	if len(recs) > 0 {
		name = recs[len(recs)-1].serverName
	}
	if name == "" {
		s.up.unnamed = ""
	} else {
		delete(s.up.prepared, name)
	}
	s.fe.Send(&pgproto3.Close{ObjectType: 'S', Name: name})
}

// handleDescribe forwards Describe; in transaction mode a statement is
// described under its server name, prepared first where it is missing.
func (s *session) handleDescribe(m *pgproto3.Describe) {
	if m.ObjectType != 'S' || !s.pooled {
		s.fe.Send(m)
		return
	}
	recs := s.book.statement(m.Name)
	if len(recs) == 0 {
		s.refuse(unknownStatement(m.Name), &pgproto3.Parse{Name: sentinelPrefix + randomHex(8)})
		return
	}
	st := recs[len(recs)-1]
	s.onServer(st)
	s.fe.Send(&pgproto3.Describe{ObjectType: 'S', Name: st.serverName})
}
