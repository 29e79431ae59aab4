package auth

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Config says which tokens a Verifier accepts.
type Config struct {
	// KeyFiles are the --jwt-key files: a PEM public key (PUBLIC KEY, RSA
	// PUBLIC KEY or CERTIFICATE; RSA, ECDSA or Ed25519), a JWKS document, or
	// an HMAC secret. Without an IssuersFile at least one is required; with
	// one, none may be given.
	KeyFiles []string
	// Issuers, when any is set, are the only accepted iss values (not with
	// an IssuersFile).
	Issuers []string
	// IssuersFile is the --issuers YAML file: each issuer (an exact iss
	// value) with its own keys (files and/or a jwks_url) and the tenants it
	// may speak for. A token is verified only with the keys of the issuer
	// its iss names; an iss the file does not list is refused.
	IssuersFile string
	// JWKSCache keeps the key sets fetched from jwks_url addresses; give the
	// Verifier that replaces this one the same cache so an address that
	// cannot be fetched keeps its last good keys. Default: a new cache.
	JWKSCache *JWKSCache
	// Logger hears about jwks_url fetches; default: discarded.
	Logger *slog.Logger
	// Audience, when set, must be one of the token's aud values.
	Audience string
	// TenantClaim names the tenant claim; default "tenant_id". A name is
	// looked up as a top-level key first, then as a dotted path ("org.id").
	TenantClaim string
	// RoleClaim names the optional role claim; default "role".
	RoleClaim string
	// UnscopedRole, when set, is the role claim value that asks for an
	// unscoped session (Identity.Unscoped). Such a token needs no tenant
	// claim, and is refused unless its issuer may issue it: with an
	// IssuersFile, an issuer with unscoped: true; without one, any issuer.
	// When empty, no token is ever unscoped and the role is just a value.
	UnscopedRole string
	// ScopeClaim names the OAuth scope claim (a space-separated string or
	// an array of strings); default "scope".
	ScopeClaim string
	// WriteScope is the scope a token must hold to write when it carries
	// the scope claim at all (Identity.ReadOnly); default "write".
	WriteScope string
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
	DefaultScopeClaim    = "scope"
	DefaultWriteScope    = "write"
	DefaultLeeway        = 30 * time.Second
	DefaultMaxTokenBytes = 16384
)

// Verifier checks tokens against the configured keys and rules. It is safe
// for concurrent use.
type Verifier struct {
	cfg Config
	// single verifies every token when there is no issuers file.
	single *issuer
	// byName holds the issuers file's issuers by iss; names keeps the
	// file's order for messages, listed every tenant some issuer names.
	byName map[string]*issuer
	names  []string
	listed map[string]bool
}

// NewVerifier loads and checks every key file (and the issuers file), and
// fetches every jwks_url once; a jwks_url that cannot be fetched is logged
// and fetched again when a token needs it. Its errors name the file and say
// what is wrong with it.
func NewVerifier(cfg Config) (*Verifier, error) {
	if cfg.IssuersFile != "" && (len(cfg.KeyFiles) > 0 || len(cfg.Issuers) > 0) {
		return nil, errors.New("give --issuers or --jwt-key/--jwt-issuer, not both: the issuers file names every issuer with its own keys, so it stands without --jwt-key or --jwt-issuer (move those keys into the file as an issuer's keys:)")
	}
	if len(cfg.KeyFiles) == 0 && cfg.IssuersFile == "" {
		return nil, errors.New("no --jwt-key given; name a PEM public key, a JWKS file or an HMAC secret file (or give --issuers)")
	}
	if cfg.TenantClaim == "" {
		cfg.TenantClaim = DefaultTenantClaim
	}
	if cfg.RoleClaim == "" {
		cfg.RoleClaim = DefaultRoleClaim
	}
	if cfg.ScopeClaim == "" {
		cfg.ScopeClaim = DefaultScopeClaim
	}
	if cfg.WriteScope == "" {
		cfg.WriteScope = DefaultWriteScope
	}
	if strings.ContainsAny(cfg.WriteScope, " \t\r\n") {
		return nil, fmt.Errorf("write scope %q holds whitespace; give one scope", cfg.WriteScope)
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
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.JWKSCache == nil {
		cfg.JWKSCache = NewJWKSCache()
	}
	for _, iss := range cfg.Issuers {
		if iss == "" {
			return nil, errors.New("--jwt-issuer is empty; give the issuer's exact iss value")
		}
	}
	cfg.Issuers = slices.Clone(cfg.Issuers)
	v := &Verifier{cfg: cfg}

	if cfg.IssuersFile == "" {
		var keys []*key
		for _, path := range cfg.KeyFiles {
			ks, err := loadKeyFile(path)
			if err != nil {
				return nil, fmt.Errorf("--jwt-key %w", err)
			}
			keys = append(keys, ks...)
		}
		v.single = &issuer{static: newKeySet(keys), unscoped: true}
		return v, nil
	}

	list, err := loadIssuers(cfg.IssuersFile, &cfg, cfg.JWKSCache)
	if err != nil {
		return nil, err
	}
	v.byName, v.names, v.listed = map[string]*issuer{}, issuerNames(list), map[string]bool{}
	urls := map[string]bool{}
	var wg sync.WaitGroup
	for _, iss := range list {
		v.byName[iss.name] = iss
		for t := range iss.names {
			v.listed[t] = true
		}
		if r := iss.remote; r != nil && !urls[r.url] {
			urls[r.url] = true
			wg.Go(func() { r.refresh(cfg.Now(), cfg.Logger.With("issuer", iss.name)) })
		}
	}
	wg.Wait()
	cfg.JWKSCache.retain(urls)
	return v, nil
}

// Algorithms lists the signing algorithms the configured keys accept (for
// an issuers file, those of every issuer's keys as last loaded or fetched).
func (v *Verifier) Algorithms() []string {
	if v.single != nil {
		return slices.Clone(v.single.static.methods)
	}
	var keys []*key
	for _, iss := range v.byName {
		keys = append(keys, iss.current().keysOrNil()...)
	}
	return methodsOf(keys)
}

// Issuers lists the issuers of the issuers file, in its order (nil
// without one).
func (v *Verifier) Issuers() []string { return slices.Clone(v.names) }

// current is the issuer's key set without fetching.
func (iss *issuer) current() *keySet {
	if iss.remote == nil {
		return iss.static
	}
	iss.remote.mu.Lock()
	set := iss.remote.set
	iss.remote.mu.Unlock()
	return iss.static.join(set)
}

func (s *keySet) keysOrNil() []*key {
	if s == nil {
		return nil
	}
	return s.keys
}

// keySet returns the keys to verify a token with kid by, fetching the
// issuer's jwks_url when it is due or the kid is new to it.
func (iss *issuer) keySet(kid string, now time.Time, log *slog.Logger) (*keySet, *Error) {
	if iss.remote == nil {
		return iss.static, nil
	}
	set := iss.remote.keys(kid, now, log.With("issuer", iss.name))
	if set == nil && iss.static == nil {
		return nil, badToken("the keys of issuer %s could not be fetched from its jwks_url; try again later", quoteClaim(iss.name))
	}
	return iss.static.join(set), nil
}

// parser checks signatures with methods and every registered claim.
func (v *Verifier) parser(methods []string) *jwt.Parser {
	return jwt.NewParser(
		jwt.WithValidMethods(methods),
		jwt.WithExpirationRequired(),
		jwt.WithLeeway(v.cfg.Leeway),
		jwt.WithIssuedAt(),
		jwt.WithJSONNumber(),
		jwt.WithTimeFunc(v.cfg.Now),
	)
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
	iss, kid := v.single, ""
	if iss == nil {
		var err *Error
		if iss, kid, err = v.route(token); err != nil {
			return nil, err
		}
	}
	set, e := iss.keySet(kid, v.cfg.Now(), v.cfg.Logger)
	if e != nil {
		return nil, e
	}
	claims := jwt.MapClaims{}
	tok, err := v.parser(set.methods).ParseWithClaims(token, claims, set.keyfunc)
	if err != nil {
		return nil, v.explain(tok, claims, err, set.methods)
	}
	return v.identity(claims, iss)
}

// route reads the unverified iss (and kid) to pick the issuer whose keys
// alone may verify the token.
func (v *Verifier) route(token string) (*issuer, string, *Error) {
	claims := jwt.MapClaims{}
	tok, _, err := jwt.NewParser(jwt.WithJSONNumber()).ParseUnverified(token, claims)
	if err != nil && !errors.Is(err, jwt.ErrTokenUnverifiable) {
		// Unverifiable (alg) is told with the issuer's algorithms below.
		return nil, "", v.explain(tok, claims, err, nil)
	}
	raw, ok := claims["iss"]
	if !ok {
		return nil, "", badToken("token has no issuer (iss); expected %s", quoteList(v.names))
	}
	name, ok := raw.(string)
	if !ok {
		return nil, "", badToken("token issuer (iss) is not a string")
	}
	iss := v.byName[name]
	if iss == nil {
		return nil, "", badToken("token issuer %s is not allowed; expected %s", quoteClaim(name), quoteList(v.names))
	}
	kid, _ := tok.Header["kid"].(string)
	return iss, kid, nil
}

// explain turns a jwt error into an *Error. It builds every reason from
// fixed words and checked claim values, never from the library's message,
// which may quote bytes of the token.
func (v *Verifier) explain(tok *jwt.Token, claims jwt.MapClaims, err error, methods []string) *Error {
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
		return badToken("token algorithm (alg) is missing or unknown; accepted: %s", strings.Join(methods, ", "))
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		if tok != nil && tok.Method != nil && !slices.Contains(methods, tok.Method.Alg()) {
			return badToken("token algorithm %s is not accepted; accepted: %s", tok.Method.Alg(), strings.Join(methods, ", "))
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

// identity checks the claims jwt does not and builds the Identity. iss is
// the issuer whose keys verified the token.
func (v *Verifier) identity(claims jwt.MapClaims, iss *issuer) (*Identity, error) {
	secs, ok := expSeconds(claims)
	if !ok {
		return nil, badToken("token exp claim is out of range")
	}
	name, err := claims.GetIssuer()
	if err != nil {
		return nil, badToken("token issuer (iss) is not a string")
	}
	if iss.bound && name != iss.name {
		// route read the same bytes, so this cannot happen; if it ever
		// did, the keys that verified the token were another issuer's.
		return nil, badToken("token issuer does not match the issuer whose keys verified it")
	}
	if len(v.cfg.Issuers) > 0 && !slices.Contains(v.cfg.Issuers, name) {
		if name == "" {
			return nil, badToken("token has no issuer (iss); expected %s", quoteList(v.cfg.Issuers))
		}
		return nil, badToken("token issuer %s is not allowed; expected %s", quoteClaim(name), quoteList(v.cfg.Issuers))
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
	role, err := roleFromClaims(claims, v.cfg.RoleClaim)
	if err != nil {
		return nil, err
	}
	unscoped := v.cfg.UnscopedRole != "" && role == v.cfg.UnscopedRole
	if unscoped && !iss.unscoped {
		return nil, badTenant("issuer %s may not issue tokens for the unscoped role %q", quoteClaim(name), v.cfg.UnscopedRole)
	}
	var tenants []string
	if _, named := lookupClaim(claims, v.cfg.TenantClaim); named || !unscoped {
		if tenants, err = tenantsFromClaims(claims, v.cfg.TenantClaim); err != nil {
			return nil, err
		}
	}
	for _, t := range tenants {
		if !iss.mayName(t, v.listed) {
			why := "it is not among the issuer's tenants"
			if iss.any {
				why = "the issuers file binds that tenant to other issuers"
			}
			return nil, badTenant("issuer %s may not speak for tenant %s; %s", quoteClaim(name), quoteClaim(t), why)
		}
	}
	scopes, hasScope, err := scopesFromClaims(claims, v.cfg.ScopeClaim)
	if err != nil {
		return nil, err
	}
	whole, frac := math.Modf(secs)
	return &Identity{
		Subject:  sub,
		Issuer:   name,
		Tenants:  tenants,
		Role:     role,
		Unscoped: unscoped,
		ReadOnly: hasScope && !slices.Contains(scopes, v.cfg.WriteScope),
		Claims:   claimValues(claims),
		Expiry:   time.Unix(int64(whole), int64(frac*1e9)).UTC(),
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
