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

// Minted tokens can carry a role in any claim, a scope claim and an issuer,
// and a role token may name no tenant (for the unscoped role).
func TestMintRoleScopeAndIssuer(t *testing.T) {
	files := keyFiles(t)
	cases := []struct {
		name     string
		opts     auth.MintOptions
		cfg      func(*auth.Config)
		unscoped bool
		readOnly bool
	}{
		{"read-only scope", auth.MintOptions{Tenants: []string{"1"}, Scope: []string{"read"}}, nil, false, true},
		{"write scope", auth.MintOptions{Tenants: []string{"1"}, Scope: []string{"read", "write"}}, nil, false, false},
		{"no scopes at all", auth.MintOptions{Tenants: []string{"1"}, Scope: []string{}}, nil, false, true},
		{"no scope claim", auth.MintOptions{Tenants: []string{"1"}}, nil, false, false},
		{"custom scope claim", auth.MintOptions{Tenants: []string{"1"}, Scope: []string{"db:read"}, ScopeClaim: "scp"},
			func(c *auth.Config) { c.ScopeClaim = "scp"; c.WriteScope = "db:write" }, false, true},
		{"unscoped role without tenant", auth.MintOptions{Role: "support", Issuer: "https://issuer.test"},
			func(c *auth.Config) { c.UnscopedRole = "support" }, true, false},
		{"nested role claim", auth.MintOptions{Role: "support", RoleClaim: "app.role"},
			func(c *auth.Config) { c.UnscopedRole = "support"; c.RoleClaim = "app.role" }, true, false},
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
			if id.Unscoped != c.unscoped || id.ReadOnly != c.readOnly || id.Role != c.opts.Role || id.Issuer != c.opts.Issuer {
				t.Errorf("identity %+v from %+v", id, c.opts)
			}
		})
	}
	for _, bad := range []struct {
		opts auth.MintOptions
		says string
	}{
		{auth.MintOptions{Tenants: []string{"1"}, Scope: []string{"read write"}}, "holds whitespace"},
		{auth.MintOptions{Tenants: []string{"1"}, Scope: []string{""}}, "is empty"},
		{auth.MintOptions{Tenants: []string{"1"}, Role: "r", RoleClaim: "tenant_id"}, "collides"},
		{auth.MintOptions{Tenants: []string{"1"}, Scope: []string{"a"}, ScopeClaim: "sub", Subject: "s"}, "collides"},
	} {
		if _, err := auth.Mint(testSecret, bad.opts); err == nil || !strings.Contains(err.Error(), bad.says) {
			t.Errorf("%+v: error %v should say %q", bad.opts, err, bad.says)
		}
	}
}
