package rewrite

import pg "github.com/pganalyze/pg_query_go/v5"

// Fingerprint is pg_query's fingerprint of a statement string: the same
// for statements that differ only in their constants, "" when it does not
// parse.
func Fingerprint(sql string) string {
	fp, err := pg.Fingerprint(sql)
	if err != nil {
		return ""
	}
	return fp
}

// Redact replaces the constants of a statement string with placeholders
// ($1, $2, ...) for an audit stream that must not hold data. A string that
// does not parse is replaced whole.
func Redact(sql string) string {
	if sql == "" {
		return ""
	}
	out, err := pg.Normalize(sql)
	if err != nil {
		return "(redacted: does not parse)"
	}
	return out
}
