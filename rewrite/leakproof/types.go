// Package leakproof decides which client expressions are safe to evaluate
// on rows the session may not see. Postgres marks such functions and
// operators leakproof (pg_proc.proleakproof): they raise no error and take
// no time that depends on their arguments' values. An expression made only
// of columns, constants, parameters and leakproof comparisons can meet
// another tenant's row without telling the client anything about it; any
// other expression must only ever see the session's rows.
//
// The package is pure: it reads a parse tree and the column types the
// caller resolves, and answers for one statement whether it holds an
// expression that is not leakproof, and for each top-level conjunct of a
// WHERE or JOIN ... ON whether it is leakproof and which single FROM table
// it filters. The rewriter and the verifier both use it.
package leakproof

import (
	"strings"

	pg "github.com/pganalyze/pg_query_go/v5"
)

// Family is a group of types whose comparison operators among each other
// are all leakproof in Postgres 15 (=, <>, <, <=, >, >= and their
// cross-type variants). Comparing values of two different families needs
// a coercion that may not be leakproof (date to timestamptz raises "date
// out of range", text to regclass looks a relation up), so it is not.
type Family string

// The families. The empty Family means "not leakproof to compare".
const (
	Int         Family = "integer"   // smallint, integer, bigint
	Float       Family = "float"     // real, double precision
	Text        Family = "text"      // text, character varying, name
	Bpchar      Family = "character" // character(n)
	UUID        Family = "uuid"
	Bool        Family = "boolean"
	Date        Family = "date"
	Timestamp   Family = "timestamp"
	Timestamptz Family = "timestamptz"
	Time        Family = "time"
	Interval    Family = "interval"
	OID         Family = "oid"
	Bytea       Family = "bytea"
	Inet        Family = "inet"
	Char        Family = "\"char\""
)

// families maps Postgres's names for a type (format_type's spelling, the
// internal name, and the SQL-standard aliases) to its family.
var families = map[string]Family{
	"smallint": Int, "integer": Int, "bigint": Int, "int": Int, "int2": Int, "int4": Int, "int8": Int,
	"real": Float, "double precision": Float, "float4": Float, "float8": Float,
	"text": Text, "character varying": Text, "varchar": Text, "name": Text,
	"character": Bpchar, "bpchar": Bpchar,
	"uuid":    UUID,
	"boolean": Bool, "bool": Bool,
	"date":                        Date,
	"timestamp without time zone": Timestamp, "timestamp": Timestamp,
	"timestamp with time zone": Timestamptz, "timestamptz": Timestamptz,
	"time without time zone": Time, "time": Time,
	"interval": Interval,
	"oid":      OID,
	"bytea":    Bytea,
	"inet":     Inet,
	"\"char\"": Char, "char": Char,
}

// FamilyOf returns the family of a type as the catalog spells it
// (format_type: "character varying(255)", "timestamp(3) with time zone")
// or as a cast names it ("int4", "pg_catalog.timestamptz"). Arrays,
// domains, enums, numeric, json and every other type have none.
func FamilyOf(typ string) Family {
	typ = strings.TrimSpace(strings.ToLower(typ))
	if strings.HasSuffix(typ, "]") {
		return ""
	}
	typ = strings.TrimPrefix(typ, "pg_catalog.")
	// Drop type modifiers: "character varying(255)" -> "character varying".
	var b strings.Builder
	depth := 0
	for _, r := range typ {
		switch {
		case r == '(':
			depth++
		case r == ')':
			depth--
		case depth == 0:
			b.WriteRune(r)
		}
	}
	return families[strings.Join(strings.Fields(b.String()), " ")]
}

// typeNameFamily returns the family a cast's type name denotes, or "" for
// an array or a type outside the families. pg_catalog-qualified names and
// plain names are the same type; any other schema is a user type.
func typeNameFamily(t *pg.TypeName) Family {
	if t == nil || len(t.GetArrayBounds()) > 0 || t.GetSetof() || t.GetPctType() {
		return ""
	}
	names := t.GetNames()
	var parts []string
	for _, n := range names {
		parts = append(parts, n.GetString_().GetSval())
	}
	switch {
	case len(parts) == 2 && parts[0] == "pg_catalog":
		return FamilyOf(parts[1])
	case len(parts) == 1:
		if parts[0] == "char" {
			// The SQL keyword CHAR becomes pg_catalog.bpchar; a bare
			// "char" here is the one-byte type written with quotes.
			return Char
		}
		return FamilyOf(parts[0])
	}
	return ""
}

// ArrayOIDFamilies maps the OIDs of the built-in array types to their
// element's family.
var ArrayOIDFamilies = map[uint32]Family{
	1005: Int, 1007: Int, 1016: Int,
	1021: Float, 1022: Float,
	1009: Text, 1015: Text, 1003: Text,
	1014: Bpchar,
	2951: UUID,
	1000: Bool,
	1182: Date,
	1115: Timestamp,
	1185: Timestamptz,
	1183: Time,
	1187: Interval,
	1028: OID,
	1001: Bytea,
	1041: Inet,
	1002: Char,
}

// Fits reports whether a parameter declared with type oid (0 or 705,
// "unknown", leave it to Postgres) is of the use's family.
func (u ParamUse) Fits(oid uint32) bool {
	if oid == 0 || oid == 705 {
		return true
	}
	if u.Array {
		return ArrayOIDFamilies[oid] == u.Family
	}
	return OIDFamilies[oid] == u.Family
}

// OIDFamilies maps the OIDs of the built-in types to their families, for
// the parameter types a client declares in a protocol-level Parse.
var OIDFamilies = map[uint32]Family{
	21: Int, 23: Int, 20: Int,
	700: Float, 701: Float,
	25: Text, 1043: Text, 19: Text,
	1042: Bpchar,
	2950: UUID,
	16:   Bool,
	1082: Date,
	1114: Timestamp,
	1184: Timestamptz,
	1083: Time,
	1186: Interval,
	26:   OID,
	17:   Bytea,
	869:  Inet,
	18:   Char,
}
