package auth

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Identity is what a verified token says about its bearer.
type Identity struct {
	Subject string
	Issuer  string
	// Tenants are the values of the tenant claim, in token order, without
	// duplicates; never empty.
	Tenants []string
	Role    string
	Expiry  time.Time
}

// Config says which tokens a Verifier accepts.
type Config struct {
	// KeyFiles are PEM public keys (RSA, ECDSA, Ed25519; PUBLIC KEY, RSA
	// PUBLIC KEY or CERTIFICATE blocks), JWKS documents, or HMAC secrets.
	KeyFiles []string
	// Issuers, when any is set, lists the accepted iss values.
	Issuers []string
	// Audience, when set, must be in aud.
	Audience string
	// TenantClaim names the tenant claim (default "tenant_id"); a dotted
	// path reaches nested objects. A top-level claim whose name contains
	// dots (a URL) is tried first.
	TenantClaim string
	// RoleClaim names an optional string claim (default "role").
	RoleClaim string
	// Leeway tolerates clock skew on exp, nbf and iat (default 30s).
	Leeway time.Duration
	// MaxTokenBytes caps a token's size (default 16 KiB).
	MaxTokenBytes int
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Error is a refused token. Code is the SQLSTATE the client sees: 28P01 for
// a bad token, 28000 for a token without a usable tenant claim.
type Error struct {
	Code   string
	Reason string
}

func (e *Error) Error() string { return e.Reason }

func badToken(format string, args ...any) *Error {
	return &Error{Code: "28P01", Reason: fmt.Sprintf(format, args...)}
}

func badClaim(format string, args ...any) *Error {
	return &Error{Code: "28000", Reason: fmt.Sprintf(format, args...)}
}

// maxTenants caps the tenant array of one token.
const maxTenants = 1000

// Verifier checks tokens. It is safe for concurrent use.
type Verifier struct {
	cfg    Config
	keys   []key
	parser *jwt.Parser
}

// NewVerifier loads every key file and returns a Verifier.
func NewVerifier(cfg Config) (*Verifier, error) {
	if cfg.TenantClaim == "" {
		cfg.TenantClaim = "tenant_id"
	}
	if cfg.RoleClaim == "" {
		cfg.RoleClaim = "role"
	}
	if cfg.Leeway == 0 {
		cfg.Leeway = 30 * time.Second
	}
	if cfg.MaxTokenBytes == 0 {
		cfg.MaxTokenBytes = 16 << 10
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if len(cfg.KeyFiles) == 0 {
		return nil, errors.New("no JWT key given: pass --jwt-key with a PEM public key, a JWKS file or an HMAC secret file")
	}
	v := &Verifier{cfg: cfg}
	for _, f := range cfg.KeyFiles {
		keys, err := loadKeyFile(f)
		if err != nil {
			return nil, err
		}
		v.keys = append(v.keys, keys...)
	}
	var methods []string
	for _, k := range v.keys {
		for _, a := range k.algs {
			if !slices.Contains(methods, a) {
				methods = append(methods, a)
			}
		}
	}
	opts := []jwt.ParserOption{
		jwt.WithValidMethods(methods),
		jwt.WithExpirationRequired(),
		jwt.WithLeeway(cfg.Leeway),
		jwt.WithIssuedAt(),
		jwt.WithJSONNumber(),
		jwt.WithTimeFunc(cfg.Now),
	}
	if len(cfg.Issuers) == 1 {
		opts = append(opts, jwt.WithIssuer(cfg.Issuers[0]))
	}
	if cfg.Audience != "" {
		opts = append(opts, jwt.WithAudience(cfg.Audience))
	}
	v.parser = jwt.NewParser(opts...)
	return v, nil
}

// Verify checks a token and returns the identity it carries. Errors are
// *Error and never contain the token.
func (v *Verifier) Verify(token string) (*Identity, error) {
	if len(token) > v.cfg.MaxTokenBytes {
		return nil, badToken("token is larger than %d bytes", v.cfg.MaxTokenBytes)
	}
	if strings.Count(token, ".") != 2 {
		return nil, badToken("password is not a JWT: send the token as the password")
	}
	claims := jwt.MapClaims{}
	tok, err := v.parser.ParseWithClaims(token, claims, v.keyFor)
	if err != nil {
		return nil, v.explain(err, claims)
	}
	if crit, ok := tok.Header["crit"]; ok && crit != nil {
		return nil, badToken("token has a critical header extension this proxy does not understand")
	}
	if len(v.cfg.Issuers) > 1 {
		iss, _ := claims.GetIssuer()
		if !slices.Contains(v.cfg.Issuers, iss) {
			return nil, badToken("token issuer %q is not allowed", iss)
		}
	}
	id := &Identity{}
	id.Subject, _ = claims.GetSubject()
	id.Issuer, _ = claims.GetIssuer()
	if exp, _ := claims.GetExpirationTime(); exp != nil {
		id.Expiry = exp.Time
	}
	if r, ok := claims[v.cfg.RoleClaim].(string); ok {
		id.Role = r
	}
	id.Tenants, err = tenantValues(claims, v.cfg.TenantClaim)
	if err != nil {
		return nil, err
	}
	return id, nil
}

// explain turns a parser error into a reason a client can act on.
func (v *Verifier) explain(err error, claims jwt.MapClaims) error {
	var e *Error
	switch {
	case errors.As(err, &e):
		return e
	case errors.Is(err, jwt.ErrTokenExpired):
		if exp, _ := claims.GetExpirationTime(); exp != nil {
			return badToken("token expired at %s", exp.UTC().Format(time.RFC3339))
		}
		return badToken("token expired")
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		switch {
		case claims["exp"] == nil:
			return badToken("token has no expiry (exp claim)")
		case claims["iss"] == nil && len(v.cfg.Issuers) > 0:
			return badToken("token has no issuer, and only issuers %q are allowed", v.cfg.Issuers)
		case claims["aud"] == nil && v.cfg.Audience != "":
			return badToken("token has no audience; %q is required", v.cfg.Audience)
		}
		return badToken("token lacks a required claim")
	case errors.Is(err, jwt.ErrTokenNotValidYet):
		return badToken("token is not valid yet (nbf)")
	case errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		return badToken("token is issued in the future (iat)")
	case errors.Is(err, jwt.ErrTokenInvalidIssuer):
		iss, _ := claims.GetIssuer()
		return badToken("token issuer %q is not allowed", iss)
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		return badToken("token audience does not include %q", v.cfg.Audience)
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return badToken("token signature is invalid")
	case errors.Is(err, jwt.ErrTokenUnverifiable):
		return badToken("token cannot be verified: its algorithm or key id matches no configured key")
	case errors.Is(err, jwt.ErrTokenMalformed):
		return badToken("token is malformed")
	case errors.Is(err, jwt.ErrTokenInvalidClaims):
		return badToken("token claims are invalid")
	}
	return badToken("token is invalid")
}

// tenantValues reads the tenant claim: a non-empty string or an integer, or
// an array of them.
func tenantValues(claims jwt.MapClaims, path string) ([]string, error) {
	raw, ok := lookupClaim(claims, path)
	if !ok || raw == nil {
		return nil, badClaim("token has no %q claim naming its tenant", path)
	}
	if arr, ok := raw.([]any); ok {
		if len(arr) == 0 {
			return nil, badClaim("claim %q is an empty array: it names no tenant", path)
		}
		if len(arr) > maxTenants {
			return nil, badClaim("claim %q names more than %d tenants", path, maxTenants)
		}
		var out []string
		for _, item := range arr {
			s, err := tenantScalar(item, path)
			if err != nil {
				return nil, err
			}
			if !slices.Contains(out, s) {
				out = append(out, s)
			}
		}
		return out, nil
	}
	s, err := tenantScalar(raw, path)
	if err != nil {
		return nil, err
	}
	return []string{s}, nil
}

func tenantScalar(v any, path string) (string, error) {
	switch x := v.(type) {
	case string:
		if x == "" {
			return "", badClaim("claim %q is an empty string", path)
		}
		return x, nil
	case json.Number:
		if i, ok := new(big.Int).SetString(string(x), 10); ok {
			return i.String(), nil
		}
		return "", badClaim("claim %q must be a string, an integer or an array of them, not a fraction", path)
	case bool:
		return "", badClaim("claim %q must be a string, an integer or an array of them, not a boolean", path)
	case nil:
		return "", badClaim("claim %q contains null", path)
	case map[string]any:
		return "", badClaim("claim %q must be a string, an integer or an array of them, not an object", path)
	case []any:
		return "", badClaim("claim %q must not nest arrays", path)
	}
	return "", badClaim("claim %q has an unsupported type", path)
}

// lookupClaim finds a claim by its whole name, else by a dotted path.
func lookupClaim(claims map[string]any, path string) (any, bool) {
	if v, ok := claims[path]; ok {
		return v, true
	}
	var cur any = claims
	for _, part := range strings.Split(path, ".") {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		if cur, ok = m[part]; !ok {
			return nil, false
		}
	}
	return cur, true
}

