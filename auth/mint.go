package auth

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// MintOptions describe a development token.
type MintOptions struct {
	// Tenants the token names: one becomes a string claim, several an array.
	// None is allowed only with a Role (an unscoped-role token).
	Tenants []string
	// TenantClaim names the claim; default "tenant_id". A dotted path
	// ("org.id") nests the value in objects.
	TenantClaim string
	// Subject, Issuer and Audience become sub, iss and aud when not empty.
	Subject, Issuer, Audience string
	// Role becomes the RoleClaim claim (default "role") when not empty.
	Role, RoleClaim string
	// Scope, when not nil, becomes the ScopeClaim claim (default "scope")
	// as one space-separated string, as OAuth writes it; an empty list
	// makes a token with no scopes (read-only).
	Scope      []string
	ScopeClaim string
	// KeyID, when not empty, becomes the kid header: the key a JWKS
	// should verify the token with.
	KeyID string
	// TTL is how long the token is valid; default one hour.
	TTL time.Duration
	// Now is the issue time; default the current time.
	Now time.Time
}

// Mint signs an HS256 token with secret, for development, tests and demos.
// The secret must be at least MinSecretBytes long, as NewVerifier requires.
func Mint(secret []byte, o MintOptions) (string, error) {
	k, err := HMACSigningKey(secret)
	if err != nil {
		return "", err
	}
	return k.Mint(o)
}

// Mint signs a token with k, for development, tests and demos.
func (k SigningKey) Mint(o MintOptions) (string, error) {
	if k.method == nil {
		return "", errors.New("no signing key; give an HMAC secret or a private key")
	}
	claims, err := mintClaims(o)
	if err != nil {
		return "", err
	}
	tok := jwt.NewWithClaims(k.method, claims)
	if o.KeyID != "" {
		tok.Header["kid"] = o.KeyID
	}
	return tok.SignedString(k.key)
}

// mintClaims checks o and returns its claims.
func mintClaims(o MintOptions) (jwt.MapClaims, error) {
	if len(o.Tenants) == 0 && o.Role == "" {
		return nil, errors.New("a token needs at least one tenant (only a token with a role, for the unscoped role, may have none)")
	}
	for _, t := range o.Tenants {
		if t == "" {
			return nil, errors.New("a tenant may not be empty")
		}
	}
	for _, sc := range o.Scope {
		if sc == "" || strings.ContainsAny(sc, " \t\r\n") {
			return nil, fmt.Errorf("scope %q is empty or holds whitespace; give one scope per entry", sc)
		}
	}
	switch {
	case o.TTL == 0:
		o.TTL = time.Hour
	case o.TTL < 0:
		return nil, fmt.Errorf("TTL %s is negative; give how long the token should be valid", o.TTL)
	}
	if o.TenantClaim == "" {
		o.TenantClaim = DefaultTenantClaim
	}
	if o.RoleClaim == "" {
		o.RoleClaim = DefaultRoleClaim
	}
	if o.ScopeClaim == "" {
		o.ScopeClaim = DefaultScopeClaim
	}
	if o.Now.IsZero() {
		o.Now = time.Now()
	}
	claims := jwt.MapClaims{"iat": o.Now.Unix(), "exp": o.Now.Add(o.TTL).Unix()}
	for name, v := range map[string]string{"sub": o.Subject, "iss": o.Issuer, "aud": o.Audience} {
		if v != "" {
			claims[name] = v
		}
	}
	if len(o.Tenants) > 0 {
		var tenant any = o.Tenants[0]
		if len(o.Tenants) > 1 {
			tenant = o.Tenants
		}
		if err := setClaim(claims, "tenant", o.TenantClaim, tenant); err != nil {
			return nil, err
		}
	}
	if o.Role != "" {
		if err := setClaim(claims, "role", o.RoleClaim, o.Role); err != nil {
			return nil, err
		}
	}
	if o.Scope != nil {
		if err := setClaim(claims, "scope", o.ScopeClaim, strings.Join(o.Scope, " ")); err != nil {
			return nil, err
		}
	}
	return claims, nil
}

// setClaim puts value at a claim name; a dotted path nests it in objects.
// what says which claim it is, for messages.
func setClaim(claims jwt.MapClaims, what, name string, value any) error {
	path := strings.Split(name, ".")
	for _, p := range path {
		if p == "" {
			return fmt.Errorf("%s claim %q has an empty path segment", what, name)
		}
	}
	m := map[string]any(claims)
	for _, p := range path[:len(path)-1] {
		next, ok := m[p].(map[string]any)
		if !ok {
			if _, taken := m[p]; taken {
				return fmt.Errorf("%s claim %q collides with the %q claim", what, name, p)
			}
			next = map[string]any{}
			m[p] = next
		}
		m = next
	}
	last := path[len(path)-1]
	if _, taken := m[last]; taken {
		return fmt.Errorf("%s claim %q collides with another claim", what, name)
	}
	m[last] = value
	return nil
}
