package proxy

import (
	"time"

	"github.com/tenantproxy/tenantproxy/audit"
	"github.com/tenantproxy/tenantproxy/rewrite"
)

type event = audit.Event

// audit records an event with the session's identity filled in. A failed
// write is logged and returned: the caller refuses the statement.
func (s *session) audit(ev event) error {
	ev.Session = s.id
	ev.Client = s.conn.RemoteAddr().String()
	ev.Database = s.database
	ev.Application = s.application
	if s.shadow {
		ev.Mode = ModeShadow
	}
	if s.identity != nil {
		ev.Subject, ev.Issuer, ev.Tenants = s.identity.Subject, s.identity.Issuer, s.identity.Tenants
		ev.Role, ev.Access = s.identity.Role, s.identity.Access()
	}
	if err := s.srv.cfg.Audit.Write(ev); err != nil {
		s.log.Error("audit event not accepted", "err", err, "kind", ev.Kind)
		return err
	}
	return nil
}

// auditStatement records the decision on one statement string (in shadow
// mode, what enforce mode would have done).
func (s *session) auditStatement(id, sql string, res *rewrite.Result, err error, version int64, start time.Time) error {
	ev := event{Kind: "statement", StatementID: id, SQL: sql, CatalogVersion: version,
		DurationMS: float64(time.Since(start).Microseconds()) / 1000}
	switch {
	case res != nil:
		ev.Fingerprint = res.Fingerprint // made once per cached statement
	case sql != "": // "" is a fast-path function call
		ev.Fingerprint = rewrite.Fingerprint(sql)
	}
	s.statements++
	if err != nil {
		s.rejected++
	}
	if err != nil {
		ev.Decision = s.decision(rewrite.Rejected)
		ev.Reason = err.Error()
		ev.SQLState = errorResponse(err, "ERROR").Code
	} else {
		ev.Decision = s.decision(res.Decision)
		if res.Decision == rewrite.Rewritten {
			ev.Rewritten = res.SQL
		}
	}
	s.srv.cfg.Metrics.statement(ev.Decision, time.Since(start))
	if s.srv.cfg.AuditRedact {
		ev.SQL, ev.Rewritten = rewrite.Redact(ev.SQL), rewrite.Redact(ev.Rewritten)
	}
	return s.audit(ev)
}

// errAuditUnavailable refuses a statement whose audit event could not be
// recorded.
// errAuditSession refuses a session whose start cannot be recorded.
func errAuditSession(err error) error {
	return newClientError(codeAuditUnavailable, "retry shortly; the proxy's operators are alerted by its log",
		"the audit stream cannot record this session (%v), so it is not served", err)
}

func errAuditUnavailable(err error) error {
	return newClientError(codeAuditUnavailable, "retry shortly; the proxy's operators are alerted by its log",
		"the audit stream cannot record this statement (%v), so it is not run", err)
}
