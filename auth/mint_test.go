package auth_test

import (
	"strings"
	"testing"
	"time"

	"github.com/tenantproxy/tenantproxy/auth"
)

// Minted tokens verify with the same secret file and carry what was asked.
func TestMintRoundTrip(t *testing.T) {
	files := keyFiles(t)
	cases := []struct {
		name string
		opts auth.MintOptions
		cfg  func(*auth.Config)
	}{
		{"one tenant", auth.MintOptions{Tenants: []string{"42"}}, nil},
		{"several tenants", auth.MintOptions{Tenants: []string{"1", "2", "3"}}, nil},
		{"nested claim", auth.MintOptions{Tenants: []string{"x"}, TenantClaim: "org.tenant"}, func(c *auth.Config) { c.TenantClaim = "org.tenant" }},
		{"every field", auth.MintOptions{Tenants: []string{"7"}, Subject: "s", Issuer: "https://issuer.test", Audience: "tp", Role: "reader", TTL: 5 * time.Minute},
			func(c *auth.Config) { c.Issuers = []string{"https://issuer.test"}; c.Audience = "tp" }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.opts.Now = now
			tok, err := auth.Mint(testSecret, c.opts)
			if err != nil {
				t.Fatal(err)
			}
			id, err := newVerifier(t, files, []string{"hmac"}, c.cfg).Verify(tok)
			if err != nil {
				t.Fatal(err)
			}
			if strings.Join(id.Tenants, ",") != strings.Join(c.opts.Tenants, ",") || id.Subject != c.opts.Subject || id.Role != c.opts.Role || id.Issuer != c.opts.Issuer {
				t.Errorf("identity %+v from %+v", id, c.opts)
			}
			ttl := c.opts.TTL
			if ttl == 0 {
				ttl = time.Hour
			}
			if !id.Expiry.Equal(now.Add(ttl)) {
				t.Errorf("expiry %s", id.Expiry)
			}
		})
	}
}

func TestMintRefuses(t *testing.T) {
	cases := []struct {
		name   string
		secret []byte
		opts   auth.MintOptions
		says   string
	}{
		{"short secret", []byte("short"), auth.MintOptions{Tenants: []string{"1"}}, "shorter than 32"},
		{"no tenant", testSecret, auth.MintOptions{}, "at least one tenant"},
		{"empty tenant", testSecret, auth.MintOptions{Tenants: []string{""}}, "may not be empty"},
		{"negative TTL", testSecret, auth.MintOptions{Tenants: []string{"1"}, TTL: -time.Second}, "negative"},
		{"bad claim path", testSecret, auth.MintOptions{Tenants: []string{"1"}, TenantClaim: "a..b"}, "empty path segment"},
		{"claim collides", testSecret, auth.MintOptions{Tenants: []string{"1"}, TenantClaim: "sub.x", Subject: "s"}, "collides"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := auth.Mint(c.secret, c.opts)
			if err == nil || !strings.Contains(err.Error(), c.says) {
				t.Errorf("error %v should say %q", err, c.says)
			}
		})
	}
}
