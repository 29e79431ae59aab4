package auth

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Config says which tokens a Verifier accepts.
type Config struct {
	// KeyFiles are the --jwt-key files: a PEM public key (PUBLIC KEY, RSA
	// PUBLIC KEY or CERTIFICATE; RSA, ECDSA or Ed25519), a JWKS document, or
	// an HMAC secret. At least one is required.
	KeyFiles []string
	// Issuers, when any is set, are the only accepted iss values.
	Issuers []string
	// Audience, when set, must be one of the token's aud values.
	Audience string
	// TenantClaim names the tenant claim; default "tenant_id". A name is
	// looked up as a top-level key first, then as a dotted path ("org.id").
	TenantClaim string
	// RoleClaim names the optional role claim; default "role".
	RoleClaim string
	// Leeway is the clock skew allowed for exp, nbf and iat; default 30s.
	Leeway time.Duration
	// MaxTokenBytes is the longest token accepted; default 16384.
	MaxTokenBytes int
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// Defaults used when the Config leaves a field zero.
const (
	DefaultTenantClaim   = "tenant_id"
	DefaultRoleClaim     = "role"
	DefaultLeeway        = 30 * time.Second
	DefaultMaxTokenBytes = 16384
)

// Verifier checks tokens against the configured keys and rules. It is safe
// for concurrent use.
type Verifier struct {
	cfg     Config
	keys    []*key
	byKid   map[string][]*key
	noKid   []*key
	methods []string
	parser  *jwt.Parser
}

// algOrder lists every algorithm auth can accept, in a stable order.
var algOrder = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA", "HS256", "HS384", "HS512"}

// NewVerifier loads and checks every key file. Its errors name the file and
// say what is wrong with it.
func NewVerifier(cfg Config) (*Verifier, error) {
	if len(cfg.KeyFiles) == 0 {
		return nil, errors.New("no --jwt-key given; name a PEM public key, a JWKS file or an HMAC secret file")
	}
	if cfg.TenantClaim == "" {
		cfg.TenantClaim = DefaultTenantClaim
	}
	if cfg.RoleClaim == "" {
		cfg.RoleClaim = DefaultRoleClaim
	}
	switch {
	case cfg.Leeway == 0:
		cfg.Leeway = DefaultLeeway
	case cfg.Leeway < 0:
		return nil, fmt.Errorf("leeway %s is negative", cfg.Leeway)
	}
	switch {
	case cfg.MaxTokenBytes == 0:
		cfg.MaxTokenBytes = DefaultMaxTokenBytes
	case cfg.MaxTokenBytes < 0:
		return nil, fmt.Errorf("maximum token size %d is negative", cfg.MaxTokenBytes)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	for _, iss := range cfg.Issuers {
		if iss == "" {
			return nil, errors.New("--jwt-issuer is empty; give the issuer's exact iss value")
		}
	}
	cfg.Issuers = slices.Clone(cfg.Issuers)

	v := &Verifier{cfg: cfg, byKid: map[string][]*key{}}
	for _, path := range cfg.KeyFiles {
		keys, err := loadKeyFile(path)
		if err != nil {
			return nil, err
		}
		v.keys = append(v.keys, keys...)
	}
	for _, k := range v.keys {
		if k.kid == "" {
			v.noKid = append(v.noKid, k)
		} else {
			v.byKid[k.kid] = append(v.byKid[k.kid], k)
		}
	}
	for _, alg := range algOrder {
		if slices.ContainsFunc(v.keys, func(k *key) bool { return k.accepts(alg) }) {
			v.methods = append(v.methods, alg)
		}
	}
	v.parser = jwt.NewParser(
		jwt.WithValidMethods(v.methods),
		jwt.WithExpirationRequired(),
		jwt.WithLeeway(cfg.Leeway),
		jwt.WithIssuedAt(),
		jwt.WithJSONNumber(),
		jwt.WithTimeFunc(cfg.Now),
	)
	return v, nil
}

// Algorithms lists the signing algorithms the configured keys accept.
func (v *Verifier) Algorithms() []string { return slices.Clone(v.methods) }

// Keyfunc failures, told apart in Verify.
var (
	errCrit       = errors.New("crit header")
	errBadKid     = errors.New("kid is not a string")
	errUnknownKid = errors.New("unknown kid")
	errNoKeyAlg   = errors.New("no key for alg")
)

// keyfunc picks the candidate keys for a token. A kid is only ever a map
// key; jku, x5u, jwk and x5c headers are never looked at.
func (v *Verifier) keyfunc(t *jwt.Token) (any, error) {
	if _, ok := t.Header["crit"]; ok {
		return nil, errCrit
	}
	candidates := v.keys
	if raw, ok := t.Header["kid"]; ok {
		kid, ok := raw.(string)
		if !ok {
			return nil, errBadKid
		}
		if ks, ok := v.byKid[kid]; ok {
			candidates = ks
		} else if candidates = v.noKid; len(candidates) == 0 {
			return nil, errUnknownKid
		}
	}
	alg := t.Method.Alg()
	var set jwt.VerificationKeySet
	for _, k := range candidates {
		if k.accepts(alg) {
			set.Keys = append(set.Keys, k.pub)
		}
	}
	if len(set.Keys) == 0 {
		return nil, errNoKeyAlg
	}
	return set, nil
}

// Verify checks a token and returns who it names. Every error is an *Error;
// its message never contains any part of the token.
func (v *Verifier) Verify(token string) (*Identity, error) {
	if len(token) > v.cfg.MaxTokenBytes {
		return nil, badToken("token is %d bytes, longer than the %d allowed", len(token), v.cfg.MaxTokenBytes)
	}
	if token == "" {
		return nil, badToken("no token given; send a JWT as the password")
	}
	claims := jwt.MapClaims{}
	tok, err := v.parser.ParseWithClaims(token, claims, v.keyfunc)
	if err != nil {
		return nil, v.explain(tok, claims, err)
	}
	return v.identity(claims)
}

// explain turns a jwt error into an *Error. It builds every reason from
// fixed words and checked claim values, never from the library's message,
// which may quote bytes of the token.
func (v *Verifier) explain(tok *jwt.Token, claims jwt.MapClaims, err error) *Error {
	switch {
	case errors.Is(err, errCrit):
		return badToken("token has an unsupported critical header (crit)")
	case errors.Is(err, errBadKid):
		return badToken("token key id (kid) is not a string")
	case errors.Is(err, errUnknownKid):
		return badToken("token key id (kid) matches no configured key")
	case errors.Is(err, errNoKeyAlg):
		return badToken("no configured key verifies %s tokens with this key id", tok.Method.Alg())
	case errors.Is(err, jwt.ErrTokenMalformed):
		return badToken("token is not a JWT (three base64url parts holding JSON objects, joined by dots)")
	case errors.Is(err, jwt.ErrTokenUnverifiable):
		return badToken("token algorithm (alg) is missing or unknown; accepted: %s", strings.Join(v.methods, ", "))
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		if tok != nil && tok.Method != nil && !slices.Contains(v.methods, tok.Method.Alg()) {
			return badToken("token algorithm %s is not accepted; accepted: %s", tok.Method.Alg(), strings.Join(v.methods, ", "))
		}
		return badToken("token signature is invalid")
	case errors.Is(err, jwt.ErrInvalidType):
		return badToken("token claims exp, nbf and iat must be numbers of seconds")
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		return badToken("token has no exp claim; tokens must expire")
	case errors.Is(err, jwt.ErrTokenExpired):
		if _, ok := expSeconds(claims); !ok {
			return badToken("token exp claim is out of range")
		}
		if exp, e := claims.GetExpirationTime(); e == nil && exp != nil {
			return badToken("token expired at %s; get a new token", exp.UTC().Format(time.RFC3339))
		}
		return badToken("token expired; get a new token")
	case errors.Is(err, jwt.ErrTokenNotValidYet):
		if nbf, e := claims.GetNotBefore(); e == nil && nbf != nil {
			return badToken("token is not valid yet (nbf %s)", nbf.UTC().Format(time.RFC3339))
		}
		return badToken("token is not valid yet")
	case errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		return badToken("token was issued in the future (iat); check the issuer's and the proxy's clocks")
	}
	return badToken("token is invalid")
}

// maxUnix is 9999-12-31T23:59:59Z, the last exp auth takes literally.
const maxUnix = 253402300799

// expSeconds returns exp when it is a number between 1970 and 9999.
func expSeconds(claims jwt.MapClaims) (float64, bool) {
	exp, _ := claims["exp"].(json.Number)
	secs, err := exp.Float64()
	if err != nil || math.IsNaN(secs) || secs > maxUnix || secs < 0 {
		return 0, false
	}
	return secs, true
}

// identity checks the claims jwt does not and builds the Identity.
func (v *Verifier) identity(claims jwt.MapClaims) (*Identity, error) {
	secs, ok := expSeconds(claims)
	if !ok {
		return nil, badToken("token exp claim is out of range")
	}
	iss, err := claims.GetIssuer()
	if err != nil {
		return nil, badToken("token issuer (iss) is not a string")
	}
	if len(v.cfg.Issuers) > 0 && !slices.Contains(v.cfg.Issuers, iss) {
		if iss == "" {
			return nil, badToken("token has no issuer (iss); expected %s", quoteList(v.cfg.Issuers))
		}
		return nil, badToken("token issuer %s is not allowed; expected %s", quoteClaim(iss), quoteList(v.cfg.Issuers))
	}
	if v.cfg.Audience != "" {
		aud, err := claims.GetAudience()
		switch {
		case err != nil:
			return nil, badToken("token audience (aud) must be a string or an array of strings")
		case len(aud) == 0:
			return nil, badToken("token has no audience (aud); expected %q", v.cfg.Audience)
		case !slices.Contains(aud, v.cfg.Audience):
			return nil, badToken("token audience does not include %q", v.cfg.Audience)
		}
	}
	sub, err := claims.GetSubject()
	if err != nil {
		return nil, badToken("token subject (sub) is not a string")
	}
	tenants, err := tenantsFromClaims(claims, v.cfg.TenantClaim)
	if err != nil {
		return nil, err
	}
	role, err := roleFromClaims(claims, v.cfg.RoleClaim)
	if err != nil {
		return nil, err
	}
	whole, frac := math.Modf(secs)
	return &Identity{
		Subject: sub,
		Issuer:  iss,
		Tenants: tenants,
		Role:    role,
		Claims:  claimValues(claims),
		Expiry:  time.Unix(int64(whole), int64(frac*1e9)).UTC(),
	}, nil
}

// quoteClaim quotes a claim value for a message, cut to a readable length.
func quoteClaim(s string) string {
	const max = 64
	if r := []rune(s); len(r) > max {
		return fmt.Sprintf("%q...", string(r[:max]))
	}
	return fmt.Sprintf("%q", s)
}

func quoteList(list []string) string {
	q := make([]string, len(list))
	for i, s := range list {
		q[i] = fmt.Sprintf("%q", s)
	}
	if len(q) == 1 {
		return q[0]
	}
	return "one of " + strings.Join(q, ", ")
}
