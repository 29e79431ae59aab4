package e2e_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/jackc/pgx/v5"
)

// TestHostileTokens: tokens built to get past the check are refused at
// connect with the SQLSTATE for their kind (28P01: the token itself is bad;
// 28000: genuine but naming no usable tenant), never crash the proxy, and
// headers that point elsewhere (kid, jku, x5u, jwk) are never followed.
func TestHostileTokens(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	var fetched atomic.Int64
	trap := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { fetched.Add(1) }))
	defer trap.Close()
	now := time.Now()
	sign := func(claims jwt.MapClaims, header map[string]any, secret []byte) string {
		tok := jwt.NewWithClaims(jwt.SigningMethodHS256, claims)
		for k, v := range header {
			tok.Header[k] = v
		}
		s, err := tok.SignedString(secret)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	base := func(extra jwt.MapClaims) jwt.MapClaims {
		c := jwt.MapClaims{"tenant_id": "1", "sub": "hostile", "exp": now.Add(time.Hour).Unix()}
		for k, v := range extra {
			if v == nil {
				delete(c, k)
				continue
			}
			c[k] = v
		}
		return c
	}
	none, err := jwt.NewWithClaims(jwt.SigningMethodNone, base(nil)).SignedString(jwt.UnsafeAllowNoneSignatureType)
	if err != nil {
		t.Fatal(err)
	}
	huge := make([]any, 5000)
	for i := range huge {
		huge[i] = i
	}
	cases := []struct {
		name, token, code, says string
	}{
		{"alg none", none, "28P01", "algorithm"},
		{"another secret", sign(base(nil), nil, []byte("not-the-proxy-secret-0123456789-abcdef")), "28P01", "signature"},
		{"expired beyond the leeway", sign(base(jwt.MapClaims{"exp": now.Add(-31 * time.Second).Unix()}), nil, e.secret), "28P01", "expired"},
		{"no exp", sign(base(jwt.MapClaims{"exp": nil}), nil, e.secret), "28P01", "exp"},
		{"nbf in the future", sign(base(jwt.MapClaims{"nbf": now.Add(2 * time.Minute).Unix()}), nil, e.secret), "28P01", "not valid yet"},
		{"crit header", sign(base(nil), map[string]any{"crit": []string{"exp"}}, e.secret), "28P01", "crit"},
		{"kid not a string", sign(base(nil), map[string]any{"kid": 7}, e.secret), "28P01", "kid"},
		{"oversized", sign(base(jwt.MapClaims{"pad": strings.Repeat("x", 17000)}), nil, e.secret), "28P01", "longer than"},
		{"huge tenant array", sign(base(jwt.MapClaims{"tenant_id": huge}), nil, e.secret), "28P01", "longer than"},
		{"tenant an object", sign(base(jwt.MapClaims{"tenant_id": map[string]any{"id": 1}}), nil, e.secret), "28000", "tenant"},
		{"tenant a float", sign(base(jwt.MapClaims{"tenant_id": 1.5}), nil, e.secret), "28000", "float"},
		{"tenant empty", sign(base(jwt.MapClaims{"tenant_id": ""}), nil, e.secret), "28000", "empty"},
		{"tenant empty array", sign(base(jwt.MapClaims{"tenant_id": []any{}}), nil, e.secret), "28000", "tenant"},
		{"tenant nested nulls", sign(base(jwt.MapClaims{"tenant_id": []any{nil, []any{nil}}}), nil, e.secret), "28000", "tenant"},
		{"tenant a boolean", sign(base(jwt.MapClaims{"tenant_id": true}), nil, e.secret), "28000", "boolean"},
		{"no tenant", sign(base(jwt.MapClaims{"tenant_id": nil}), nil, e.secret), "28000", "tenant"},
		{"garbage", "not.a.token", "28P01", "token"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			conn, err := pgx.Connect(ctx, e.connString(c.token))
			if err == nil {
				conn.Close(ctx)
				t.Fatal("accepted")
			}
			if pgCode(err) != c.code || !strings.Contains(strings.ToLower(err.Error()), c.says) {
				t.Fatalf("%v, want %s saying %q", err, c.code, c.says)
			}
			if len(c.token) > 20 && strings.Contains(err.Error(), c.token[:20]) {
				t.Fatal("the error echoes the token")
			}
		})
	}
	// Headers that name other keys are not followed: a kid is only a map
	// key, and jku/x5u/jwk are never fetched or trusted.
	for name, header := range map[string]map[string]any{
		"kid path traversal": {"kid": "../../../../etc/passwd"},
		"jku, x5u and jwk":   {"jku": trap.URL + "/jwks", "x5u": trap.URL + "/cert", "jwk": map[string]any{"kty": "oct", "k": "AAAA"}},
	} {
		t.Run(name, func(t *testing.T) {
			c := e.connectToken(t, sign(base(nil), header, e.secret))
			wantRows(t, column(t, c, "SELECT count(*)::text FROM orders"), "3")
			forged := sign(base(nil), header, []byte("AAAA-forged-secret-0123456789-abcdefgh"))
			if _, err := pgx.Connect(ctx, e.connString(forged)); pgCode(err) != "28P01" {
				t.Fatalf("a token signed with the key its own header names: %v, want 28P01", err)
			}
		})
	}
	if n := fetched.Load(); n != 0 {
		t.Fatalf("the proxy fetched a URL from a token header %d times", n)
	}
	wantRows(t, column(t, e.connect(t, "2"), "SELECT count(*)::text FROM orders"), "2")
}
