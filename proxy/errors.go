package proxy

import (
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/tenantproxy/tenantproxy/auth"
	"github.com/tenantproxy/tenantproxy/rewrite"
)

// SQLSTATE codes the proxy raises itself.
const (
	codeProtocolViolation        = "08P01"
	codeTooManyConnections       = "53300"
	codeInvalidSQLStatementName  = "26000"
	codeDuplicatePrepared        = "42P05"
	codeConnectionFailure        = "08006"
	codeInvalidAuthSpec          = "28000"
	codeInsufficientPriv         = "42501"
	codeInvalidCatalogName       = "3D000"
	codeFeatureUnsupported       = "0A000"
	codeProgramLimitReached      = "54000"
	codeAdminShutdown            = "57P01"
	codeIdleSessionTimeout       = "57P05"
	codeIdleInTransactionTimeout = "25P03"
	codeTooManyTenantConns       = "53300"
	codeInternal                 = "XX000"
	codeAuditUnavailable         = "58030" // io_error: the audit stream cannot be written
)

// clientError is an error meant for the client, with its SQLSTATE and hint.
type clientError struct {
	code, msg, hint string
}

func (e *clientError) Error() string { return e.msg }

func newClientError(code, hint, format string, args ...any) *clientError {
	return &clientError{code: code, hint: hint, msg: fmt.Sprintf(format, args...)}
}

// errorResponse is the one place that turns a Go error into the ErrorResponse
// a client sees. Every message the proxy writes itself starts "tenantproxy: ".
func errorResponse(err error, severity string) *pgproto3.ErrorResponse {
	er := &pgproto3.ErrorResponse{Severity: severity, SeverityUnlocalized: severity}
	var (
		rej   *rewrite.Rejection
		aerr  *auth.Error
		cerr  *clientError
		pgerr *pgconn.PgError
	)
	switch {
	case errors.As(err, &rej):
		er.Code, er.Message, er.Hint, er.Position = rej.Code, rej.Error(), rej.Hint, int32(rej.Position)
	case errors.As(err, &aerr):
		er.Code, er.Message = aerr.Code, "tenantproxy: "+aerr.Error()
	case errors.As(err, &cerr):
		er.Code, er.Message, er.Hint = cerr.code, "tenantproxy: "+cerr.msg, cerr.hint
	case errors.As(err, &pgerr):
		er.Code, er.Message, er.Detail, er.Hint = pgerr.Code, "tenantproxy: upstream: "+pgerr.Message, pgerr.Detail, pgerr.Hint
	default:
		er.Code, er.Message = codeInternal, "tenantproxy: internal error"
		er.Hint = "the proxy's log has the details"
	}
	if er.Code == "" {
		er.Code = codeInternal
	}
	return er
}

// guardRefusal turns the error a rewritten write raises when it would attach
// a row to another tenant's parent (the rewriter's guard casts its message
// to integer, so Postgres reports invalid_text_representation quoting it)
// into the refusal it is.
func guardRefusal(m *pgproto3.ErrorResponse) {
	if m.Code == "22P02" {
		if v, ok := rewrite.ParseFKViolation(m.Message); ok {
			// A reference guard: the foreign-key violation the tenant's
			// own database reports.
			*m = pgproto3.ErrorResponse{Severity: m.Severity, SeverityUnlocalized: m.SeverityUnlocalized, Code: "23503",
				Message: v.Message(), Detail: v.Detail(), SchemaName: v.Schema, TableName: v.Table, ConstraintName: v.Constraint,
				File: "ri_triggers.c", Routine: "ri_ReportViolation"}
			return
		}
	}
	const marker = `"tenantproxy: `
	i := strings.Index(m.Message, marker)
	if m.Code != "22P02" || i < 0 || !strings.HasSuffix(m.Message, `"`) {
		return
	}
	m.Code = "42501"
	m.Message = m.Message[i+1 : len(m.Message)-1]
	m.Detail = ""
	m.Hint = "a row of a path-bound table belongs to the tenant of the parent row it references: reference a parent row of your tenant"
	m.Where, m.Position, m.InternalQuery, m.InternalPosition = "", 0, "", 0
}
