package proxy

import (
	"strings"
	"time"

	"github.com/tenantproxy/tenantproxy/audit"
	"github.com/tenantproxy/tenantproxy/rewrite"
)

type event = audit.Event

// audit records an event for something about to happen (a session let in,
// a statement about to run) and returns once the event is durable (see
// audit.Queue). An error means the event could not be made durable: the
// caller refuses what it was about to do, and a follow-up event records
// that it did not happen.
func (s *session) audit(ev event) error {
	s.identify(&ev)
	t, err := s.srv.cfg.Audit.Append(ev)
	if err == nil {
		if err = s.srv.cfg.Audit.Durable(t); err != nil {
			// Queued, and written once the stream recovers: say that
			// what it announced did not happen.
			s.record(notRun(ev, err))
		}
	}
	if err != nil {
		s.log.Error("audit event not accepted", "err", err, "kind", ev.Kind)
		return err
	}
	return nil
}

// record records an event for something that already happened (a
// completion, a refusal, a failed authentication, a session's end). It is
// never refused: while the audit stream fails it waits to be written.
func (s *session) record(ev event) {
	s.identify(&ev)
	s.srv.cfg.Audit.Record(ev)
}

// identify fills in the session's identity.
func (s *session) identify(ev *event) {
	ev.Session = s.id
	ev.Client = s.client
	ev.Database = s.database
	ev.Application = s.application
	if s.shadow {
		ev.Mode = ModeShadow
	}
	if s.identity != nil {
		ev.Subject, ev.Issuer, ev.Tenants = s.identity.Subject, s.identity.Issuer, s.identity.Tenants
		ev.Role, ev.Access = s.identity.Role, s.identity.Access()
	}
}

// notRun is the event that follows one whose action was refused because
// the event could not be made durable.
func notRun(ev event, err error) event {
	reason := "not run: " + err.Error()
	if strings.HasPrefix(ev.Kind, "statement") {
		return event{Kind: "statement.completed", StatementID: ev.StatementID, SQLState: codeAuditUnavailable, Reason: reason}
	}
	return event{Kind: "session.ended", Reason: reason}
}

// auditStatement records the decision on one statement string (in shadow
// mode, what enforce mode would have done). A statement that runs (in
// enforce mode, one without err) is audited before it is sent: an error
// means it must not run. A refusal is recorded; it returns nil.
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
	if err != nil && !s.shadow {
		s.record(ev)
		return nil
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
