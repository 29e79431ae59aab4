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
	Tenants []string
	// TenantClaim names the claim; default "tenant_id". A dotted path
	// ("org.id") nests the value in objects.
	TenantClaim string
	// Subject, Issuer, Audience and Role become sub, iss, aud and role when
	// not empty.
	Subject, Issuer, Audience, Role string
	// TTL is how long the token is valid; default one hour.
	TTL time.Duration
	// Now is the issue time; default the current time.
	Now time.Time
}

// Mint signs an HS256 token with secret, for development, tests and demos.
// The secret must be at least MinSecretBytes long, as NewVerifier requires.
func Mint(secret []byte, o MintOptions) (string, error) {
	if len(secret) < MinSecretBytes {
		return "", fmt.Errorf("HMAC secret is %d bytes, shorter than %d; use a longer random secret (e.g. openssl rand -hex 32)", len(secret), MinSecretBytes)
	}
	if len(o.Tenants) == 0 {
		return "", errors.New("a token needs at least one tenant")
	}
	for _, t := range o.Tenants {
		if t == "" {
			return "", errors.New("a tenant may not be empty")
		}
	}
	switch {
	case o.TTL == 0:
		o.TTL = time.Hour
	case o.TTL < 0:
		return "", fmt.Errorf("TTL %s is negative; give how long the token should be valid", o.TTL)
	}
	if o.TenantClaim == "" {
		o.TenantClaim = DefaultTenantClaim
	}
	if o.Now.IsZero() {
		o.Now = time.Now()
	}
	path := strings.Split(o.TenantClaim, ".")
	for _, p := range path {
		if p == "" {
			return "", fmt.Errorf("tenant claim %q has an empty path segment", o.TenantClaim)
		}
	}
	claims := jwt.MapClaims{"iat": o.Now.Unix(), "exp": o.Now.Add(o.TTL).Unix()}
	for name, v := range map[string]string{"sub": o.Subject, "iss": o.Issuer, "aud": o.Audience, DefaultRoleClaim: o.Role} {
		if v != "" {
			claims[name] = v
		}
	}
	var tenant any = o.Tenants[0]
	if len(o.Tenants) > 1 {
		tenant = o.Tenants
	}
	m := map[string]any(claims)
	for _, p := range path[:len(path)-1] {
		next, ok := m[p].(map[string]any)
		if !ok {
			if _, taken := m[p]; taken {
				return "", fmt.Errorf("tenant claim %q collides with the %q claim", o.TenantClaim, p)
			}
			next = map[string]any{}
			m[p] = next
		}
		m = next
	}
	last := path[len(path)-1]
	if _, taken := m[last]; taken {
		return "", fmt.Errorf("tenant claim %q collides with another claim", o.TenantClaim)
	}
	m[last] = tenant
	return jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(secret)
}
