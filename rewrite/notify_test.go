package rewrite_test

import (
	"strings"
	"testing"

	"github.com/tenantproxy/tenantproxy/rewrite"
)

// A tenant's channel prefix is "tp", 16 hex digits of SHA-256 of the tenant
// value and "_": 19 bytes of plain ASCII whatever the value holds, and
// different for different tenants.
func TestChannelPrefix(t *testing.T) {
	// printf 42 | sha256sum
	if got := rewrite.ChannelPrefix("42"); got != "tp73475cb40a568e8d_" {
		t.Fatalf("ChannelPrefix(42) = %q", got)
	}
	seen := map[string]string{}
	for _, v := range []string{"1", "2", "42", "o'brien", "ünïcode", `"; DROP`, strings.Repeat("long", 100), " "} {
		p := rewrite.ChannelPrefix(v)
		if len(p) != 19 || !strings.HasPrefix(p, "tp") || !strings.HasSuffix(p, "_") || strings.Trim(p[2:18], "0123456789abcdef") != "" {
			t.Errorf("ChannelPrefix(%q) = %q", v, p)
		}
		if other, ok := seen[p]; ok {
			t.Errorf("%q and %q share the prefix %s", v, other, p)
		}
		seen[p] = v
	}
	if rewrite.MaxClientChannelLen != 44 {
		t.Fatalf("MaxClientChannelLen = %d", rewrite.MaxClientChannelLen)
	}
}

// A template made for one tenant's channel statement serves the next
// tenant with that tenant's own prefix, never the first one's (nor the
// placeholder's).
func TestCacheMapsChannelsPerTenant(t *testing.T) {
	r := rewrite.New(rewrite.Config{})
	cache, err := rewrite.NewCache(r, 100)
	if err != nil {
		t.Fatal(err)
	}
	snap := testCatalog()
	for _, sql := range []string{
		"LISTEN orders",
		"NOTIFY orders, 'x'",
		"SELECT pg_notify('orders', 'x')",
		"SELECT pg_notify(name, 'x') FROM customers WHERE id = 1",
		"SELECT pg_notify(name, 'y') FROM customers WHERE id = 2",
	} {
		for _, tenant := range []string{"1", "2", "1", "acme"} {
			scope := rewrite.Scope{Values: map[string][]string{"": {tenant}}}
			want, err := r.Rewrite(sql, scope, snap)
			if err != nil {
				t.Fatal(err)
			}
			got, err := cache.Rewrite(sql, scope, snap)
			if err != nil {
				t.Fatal(err)
			}
			if got.SQL != want.SQL || !strings.Contains(got.SQL, rewrite.ChannelPrefix(tenant)) {
				t.Fatalf("%s as %s: cached %q, uncached %q", sql, tenant, got.SQL, want.SQL)
			}
		}
	}
	// Every statement after its first run was served from a template:
	// the channel did not keep them from templating (the last statement
	// shares the template of the one before).
	if st := cache.Stats(); st.Hits < 15 {
		t.Fatalf("cache stats %+v: channel statements do not template", st)
	}
}
