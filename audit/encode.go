package audit

import (
	"encoding/json"
	"math"
	"strconv"
	"time"
	"unicode/utf8"
)

// appendEvent appends e as JSON, byte for byte what json.Marshal gives
// (field order, omitempty, escaping), without reflection: it runs twice
// per statement on the hot path. ok is false for what it does not
// handle the same way (a time outside years 0-9999, a NaN or infinite
// duration); the caller uses json.Marshal then. eventFields, checked
// against the struct by a test, keeps it in step with Event.
func appendEvent(b []byte, e *Event) ([]byte, bool) {
	if y := e.Time.Year(); y < 0 || y > 9999 || math.IsNaN(e.DurationMS) || math.IsInf(e.DurationMS, 0) {
		return b, false
	}
	b = append(b, `{"seq":`...)
	b = strconv.AppendInt(b, e.Seq, 10)
	b = append(b, `,"time":"`...)
	b = e.Time.AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","prev_hash":`...)
	b = appendJSONString(b, e.PrevHash)
	str := func(name, v string) {
		if v != "" {
			b = append(b, ',', '"')
			b = append(b, name...)
			b = append(b, '"', ':')
			b = appendJSONString(b, v)
		}
	}
	num := func(name string, v int64) {
		if v != 0 {
			b = append(b, ',', '"')
			b = append(b, name...)
			b = append(b, '"', ':')
			b = strconv.AppendInt(b, v, 10)
		}
	}
	str("hash", e.Hash)
	b = append(b, `,"kind":`...)
	b = appendJSONString(b, e.Kind)
	str("mode", e.Mode)
	str("session", e.Session)
	str("client", e.Client)
	str("subject", e.Subject)
	str("issuer", e.Issuer)
	if len(e.Tenants) > 0 {
		b = append(b, `,"tenants":[`...)
		for i, t := range e.Tenants {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendJSONString(b, t)
		}
		b = append(b, ']')
	}
	str("role", e.Role)
	str("access", e.Access)
	str("database", e.Database)
	str("application", e.Application)
	str("sql", e.SQL)
	str("fingerprint", e.Fingerprint)
	str("decision", e.Decision)
	str("reason", e.Reason)
	str("rewritten", e.Rewritten)
	num("catalog_version", e.CatalogVersion)
	str("command_tag", e.CommandTag)
	num("rows", e.Rows)
	str("sqlstate", e.SQLState)
	if e.DurationMS != 0 {
		b = append(b, `,"duration_ms":`...)
		b = appendJSONFloat(b, e.DurationMS)
	}
	str("statement_id", e.StatementID)
	num("executions", e.Executions)
	num("statements", e.Statements)
	num("rejected", e.Rejected)
	return append(b, '}'), true
}

// eventFields are the JSON names appendEvent writes, in order.
var eventFields = []string{"seq", "time", "prev_hash", "hash", "kind", "mode", "session", "client", "subject", "issuer", "tenants",
	"role", "access", "database", "application", "sql", "fingerprint", "decision", "reason", "rewritten", "catalog_version", "command_tag",
	"rows", "sqlstate", "duration_ms", "statement_id", "executions", "statements", "rejected"}

// marshalEvent is appendEvent, or json.Marshal where it steps aside.
func marshalEvent(e *Event) ([]byte, error) {
	if b, ok := appendEvent(make([]byte, 0, 256+len(e.SQL)+len(e.Rewritten)), e); ok {
		return b, nil
	}
	return json.Marshal(e)
}

const hexDigits = "0123456789abcdef"

// appendJSONString quotes s as encoding/json does (HTML-safe).
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// appendJSONFloat formats f as encoding/json does.
func appendJSONFloat(b []byte, f float64) []byte {
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if format == 'e' {
		// clean up e-09 to e-9
		if n := len(b); n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b
}
