package auth

import (
	"errors"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// MintOptions describe a development token.
type MintOptions struct {
	Tenants     []string
	TenantClaim string // default "tenant_id"; a dotted path nests objects
	Subject     string
	Issuer      string
	Audience    string
	Role        string
	TTL         time.Duration // default 1h
	Now         time.Time     // default time.Now()
}

// Mint signs an HS256 token for development and tests. One tenant becomes a
// string claim, several an array.
func Mint(secret []byte, o MintOptions) (string, error) {
	if len(o.Tenants) == 0 {
		return "", errors.New("a token needs at least one tenant")
	}
	if len(secret) < minHMACSecret {
		return "", errors.New("the HMAC secret must be at least 32 bytes")
	}
	if o.TenantClaim == "" {
		o.TenantClaim = "tenant_id"
	}
	if o.TTL == 0 {
		o.TTL = time.Hour
	}
	if o.Now.IsZero() {
		o.Now = time.Now()
	}
	claims := jwt.MapClaims{"iat": o.Now.Unix(), "exp": o.Now.Add(o.TTL).Unix()}
	for k, v := range map[string]string{"sub": o.Subject, "iss": o.Issuer, "aud": o.Audience, "role": o.Role} {
		if v != "" {
			claims[k] = v
		}
	}
	var tenant any = o.Tenants[0]
	if len(o.Tenants) > 1 {
		tenant = o.Tenants
	}
	parts := strings.Split(o.TenantClaim, ".")
	m := map[string]any(claims)
	for _, p := range parts[:len(parts)-1] {
		next := map[string]any{}
		m[p] = next
		m = next
	}
	m[parts[len(parts)-1]] = tenant
	return jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(secret)
}
