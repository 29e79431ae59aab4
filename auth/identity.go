package auth

import (
	"fmt"
	"time"
)

// Identity is what a verified token says about its bearer.
type Identity struct {
	// Subject is the token's sub claim; it may be empty.
	Subject string
	// Issuer is the token's iss claim; it may be empty when no issuer is
	// required.
	Issuer string
	// Tenants holds the tenant claim's values: at least one, canonical
	// (integers in decimal without sign for zero or leading zeros),
	// duplicates removed, in token order. It is empty only when Unscoped
	// and the token has no tenant claim (Config.UnscopedRole says when a
	// token is unscoped, Config.ScopeClaim and Config.WriteScope when it is
	// read-only; auth reports both, the proxy acts on them).
	Tenants []string
	// Role is the role claim, or empty when the token has none.
	Role string
	// Claims holds every claim that can bind a table to a dimension (a
	// string, an integer or an array of them), by name, nested objects'
	// claims also by dotted path ("org.id"), values canonical as Tenants.
	Claims map[string][]string
	// Expiry is the token's exp claim.
	Expiry time.Time
	// Unscoped: the token's role is the configured unscoped role and its
	// issuer may issue such tokens; Tenants may then be empty.
	Unscoped bool
	// ReadOnly: the token carries the scope claim without the write scope.
	ReadOnly bool
}

// Access names how the session runs when it is not the default,
// tenant-scoped and read-write: "unscoped", "read-only", or both
// space-separated; empty otherwise. The audit stream records it.
func (id *Identity) Access() string {
	switch {
	case id.Unscoped && id.ReadOnly:
		return "unscoped read-only"
	case id.Unscoped:
		return "unscoped"
	case id.ReadOnly:
		return "read-only"
	}
	return ""
}

// SQLSTATE codes carried by Error.
const (
	// CodeInvalidPassword (28P01, invalid_password) means the token itself is
	// bad: malformed, badly signed, expired, not yet valid, from an issuer
	// not accepted (or whose keys cannot be fetched) or for the wrong
	// audience.
	CodeInvalidPassword = "28P01"
	// CodeInvalidAuthorization (28000, invalid_authorization_specification)
	// means the token is genuine but does not name its tenants usably, names
	// a tenant its issuer may not speak for, asks for the unscoped role its
	// issuer may not grant, or carries a scope claim of the wrong shape.
	CodeInvalidAuthorization = "28000"
)

// Error is why a token was refused. Code is a SQLSTATE (CodeInvalidPassword
// or CodeInvalidAuthorization); Reason says what was wrong in words fit for
// the client. Neither ever contains the token or any part of its text.
type Error struct {
	Code   string
	Reason string
}

// Error returns the reason.
func (e *Error) Error() string { return e.Reason }

func badToken(format string, args ...any) *Error {
	return &Error{Code: CodeInvalidPassword, Reason: fmt.Sprintf(format, args...)}
}

func badTenant(format string, args ...any) *Error {
	return &Error{Code: CodeInvalidAuthorization, Reason: fmt.Sprintf(format, args...)}
}
