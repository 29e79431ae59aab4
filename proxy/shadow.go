package proxy

import (
	"fmt"

	"github.com/tenantproxy/tenantproxy/audit"
	"github.com/tenantproxy/tenantproxy/rewrite"
)

// Modes: what a session does with the rewriter's decision on a statement.
//
// The decision (passed, rewritten, or a Rejection) is one value, made the
// same way in both modes: every Query and Parse is rewritten, every Bind's
// tenant parameters and every prepared statement's catalog version are
// checked, every COPY row is checked. Enforce mode acts on it. Shadow mode
// records it (decision would-rewrite with the SQL enforce mode would send,
// would-reject with the reason and SQLSTATE, passed) and sends what the
// client sent, so a team can see what enforce mode would break before it
// turns it on. A proxy in shadow mode confines nothing and protects
// nothing.
//
// Shadow mode still enforces what is not a statement's decision, or what
// the proxy itself depends on:
//   - admission: the token (and its expiry), TLS for tokens, the allowed
//     startup parameters, the database name, the connection caps;
//   - the protocol: --max-message-size, unexpected messages;
//   - the audit stream: a statement whose event cannot be recorded is
//     refused (58030) or held (--audit-on-failure), as in enforce mode; a
//     shadow finding that is not recorded is worth nothing;
//   - one upstream connection per client (PoolSession only): statements
//     enforce mode would refuse do run here, and the session state they
//     may leave (SET search_path or ROLE, PREPARE, LISTEN, advisory
//     locks, temporary tables, cursors WITH HOLD) must never reach
//     another client's transaction on a shared connection, nor the
//     pool's bookkeeping of settings and prepared statements, which
//     assumes refused statements never ran.
//
// The rewriter can still be configured to predict transaction pooling
// (rewrite.Config.TransactionPooling), so shadow findings include what
// transaction mode refuses.
const (
	// ModeEnforce scopes every statement and refuses what it cannot scope.
	ModeEnforce = "enforce"
	// ModeShadow sends every statement as the client wrote it and audits
	// what enforce mode would have done.
	ModeShadow = "shadow"
)

// checkMode refuses a mode the server cannot run.
func checkMode(cfg Config) error {
	switch cfg.Mode {
	case "", ModeEnforce:
		return nil
	case ModeShadow:
		if cfg.PoolMode != PoolSession {
			return fmt.Errorf("proxy: shadow mode needs pool mode %s: statements enforce mode would refuse run in shadow mode, and the session state they leave must not reach other clients on a shared connection", PoolSession)
		}
		return nil
	}
	return fmt.Errorf("proxy: mode %q: use %s or %s", cfg.Mode, ModeEnforce, ModeShadow)
}

// decision is what the audit stream records for the rewriter's decision:
// in shadow mode, what enforce mode would have done.
func (s *session) decision(d rewrite.Decision) string {
	if !s.shadow {
		return string(d)
	}
	switch d {
	case rewrite.Rewritten:
		return audit.DecisionWouldRewrite
	case rewrite.Rejected:
		return audit.DecisionWouldReject
	}
	return string(d)
}

// stmtRef names the statement a late refusal is about, for its event.
type stmtRef struct {
	id, sql, fingerprint string
}

// lateRefusal records a refusal that enforce mode makes after the
// statement's own decision, on what it runs with: kind statement.bind (a
// tenant parameter bound to another tenant, a prepared statement the
// catalog changed under) or statement.copy (a COPY row it may not
// write). It returns the error the client must get: err in enforce mode;
// in shadow mode nil (the message goes on as sent), unless the event
// could not be recorded.
func (s *session) lateRefusal(kind string, st stmtRef, err error) error {
	ev := event{Kind: kind, StatementID: st.id, SQL: st.sql, Fingerprint: st.fingerprint,
		Decision: s.decision(rewrite.Rejected), Reason: err.Error(), SQLState: errorResponse(err, "ERROR").Code}
	if s.srv.cfg.AuditRedact {
		ev.SQL = rewrite.Redact(ev.SQL)
	}
	if !s.shadow {
		s.record(ev) // refused: nothing runs
		return err
	}
	if aerr := s.audit(ev); aerr != nil {
		return errAuditUnavailable(aerr)
	}
	s.logWouldRefuse(kind, err)
	return nil
}

// logWouldRefuse logs, in shadow mode, a refusal enforce mode would have
// made (kind: the audit event's) of what was sent as written.
func (s *session) logWouldRefuse(kind string, err error) {
	s.log.Info("would refuse (shadow mode: sent as written)", "kind", kind, "code", errorResponse(err, "ERROR").Code, "reason", err.Error())
}
