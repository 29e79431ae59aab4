package e2e_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/jackc/pgx/v5"
)

// idpServer is an identity provider's JWKS endpoint whose keys the test
// rotates.
type idpServer struct {
	*httptest.Server
	hits atomic.Int64
	mu   sync.Mutex
	body []byte
}

func newIdPServer(t *testing.T) *idpServer {
	t.Helper()
	s := &idpServer{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		s.hits.Add(1)
		s.mu.Lock()
		body := s.body
		s.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "public, max-age=3600")
		_, _ = w.Write(body)
	}))
	t.Cleanup(s.Close)
	return s
}

// publish serves the public halves of keys, by kid.
func (s *idpServer) publish(t *testing.T, keys map[string]*rsa.PrivateKey) {
	t.Helper()
	b64 := base64.RawURLEncoding.EncodeToString
	var set []map[string]string
	for kid, k := range keys {
		set = append(set, map[string]string{"kty": "RSA", "kid": kid, "alg": "RS256", "use": "sig",
			"n": b64(k.N.Bytes()), "e": b64(big.NewInt(int64(k.E)).Bytes())})
	}
	body, err := json.Marshal(map[string]any{"keys": set})
	if err != nil {
		t.Fatal(err)
	}
	s.mu.Lock()
	s.body = body
	s.mu.Unlock()
}

// TestIssuersBoundToTenants: two identity providers, one verified with a
// secret file and one with a JWKS URL, are each bound to their own tenant.
// Each connects for its own tenant; naming the other's tenant is refused
// at connect with 28000; an unlisted issuer, or a token signed with the
// other issuer's key, with 28P01; the JWKS URL's keys rotate without a
// restart, and SIGHUP re-reads the issuers file.
func TestIssuersBoundToTenants(t *testing.T) {
	const (
		issA = "https://a.idp.test" // HMAC secret file; tenant 1
		issB = "https://b.idp.test" // JWKS URL; tenant 2
	)
	ctx := context.Background()
	dir := t.TempDir()
	secretA := []byte("issuer-a-secret-0123456789-abcdefghij")
	if err := os.WriteFile(filepath.Join(dir, "a.key"), secretA, 0o600); err != nil {
		t.Fatal(err)
	}
	b1, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	b2, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	idp := newIdPServer(t)
	idp.publish(t, map[string]*rsa.PrivateKey{"b1": b1})
	issuersFile := filepath.Join(dir, "issuers.yaml")
	writeIssuers := func(tenantsA string) {
		yaml := fmt.Sprintf(`issuers:
  - issuer: %s
    keys: [a.key]
    tenants: %s
  - issuer: %s
    jwks_url: %s/.well-known/jwks.json
    tenants: [2]
`, issA, tenantsA, issB, idp.URL)
		if err := os.WriteFile(issuersFile, []byte(yaml), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	writeIssuers("[1]")
	e := newEnv(t, envOptions{extraArgs: []string{"--issuers", issuersFile, "--unscoped-role", "support"}})
	if n := idp.hits.Load(); n != 1 {
		t.Fatalf("the JWKS was fetched %d times at start, want 1", n)
	}

	now := time.Now()
	claimsFor := func(iss string, tenant any, extra ...any) jwt.MapClaims {
		c := jwt.MapClaims{"iss": iss, "sub": "e2e", "tenant_id": tenant, "iat": now.Unix(), "exp": now.Add(time.Hour).Unix()}
		for i := 0; i < len(extra); i += 2 {
			c[extra[i].(string)] = extra[i+1]
		}
		return c
	}
	tokenA := func(c jwt.MapClaims) string {
		s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(secretA)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	tokenB := func(kid string, key *rsa.PrivateKey, c jwt.MapClaims) string {
		tok := jwt.NewWithClaims(jwt.SigningMethodRS256, c)
		tok.Header["kid"] = kid
		s, err := tok.SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	orders := func(tok string) []string {
		return column(t, e.connectToken(t, tok), "SELECT count(*)::text FROM orders")
	}

	// Each issuer for its own tenant.
	wantRows(t, orders(tokenA(claimsFor(issA, "1"))), "3")
	wantRows(t, orders(tokenB("b1", b1, claimsFor(issB, 2))), "2")

	// B rotates: a key published after the proxy started is fetched when
	// the first token naming it arrives, without a restart.
	idp.publish(t, map[string]*rsa.PrivateKey{"b1": b1, "b2": b2})
	wantRows(t, orders(tokenB("b2", b2, claimsFor(issB, 2))), "2")
	wantRows(t, orders(tokenB("b1", b1, claimsFor(issB, 2))), "2")
	if n := idp.hits.Load(); n != 2 {
		t.Fatalf("the JWKS was fetched %d times, want 2 (start, and the new kid b2)", n)
	}

	refusals := []struct {
		name, token, code, says string
	}{
		{"A naming B's tenant", tokenA(claimsFor(issA, "2")), "28000", `issuer "https://a.idp.test" may not speak for tenant "2"`},
		{"B naming A's tenant", tokenB("b1", b1, claimsFor(issB, "1")), "28000", `issuer "https://b.idp.test" may not speak for tenant "1"`},
		{"A naming both tenants", tokenA(claimsFor(issA, []any{"1", "2"})), "28000", `may not speak for tenant "2"`},
		{"A asking for the unscoped role", tokenA(claimsFor(issA, "1", "role", "support")), "28000", "may not issue tokens for the unscoped role"},
		{"an issuer not in the file", tokenA(claimsFor("https://evil.test", "1")), "28P01", `expected one of "https://a.idp.test", "https://b.idp.test"`},
		{"A's iss signed with B's key", tokenB("b1", b1, claimsFor(issA, "1")), "28P01", "algorithm RS256 is not accepted"},
		{"B's iss signed with A's secret", tokenA(claimsFor(issB, "2")), "28P01", "algorithm HS256 is not accepted"},
		{"B's iss with a kid B never published", tokenB("b3", b2, claimsFor(issB, "2")), "28P01", "kid"},
	}
	for _, c := range refusals {
		t.Run(c.name, func(t *testing.T) {
			conn, err := pgx.Connect(ctx, e.connString(c.token))
			if err == nil {
				conn.Close(ctx)
				t.Fatal("accepted")
			}
			if pe := wantState(t, err, c.code); !strings.Contains(pe.Message, c.says) {
				t.Fatalf("message %q should say %q", pe.Message, c.says)
			}
		})
	}
	// The unknown kid b3 came within 30 s of the fetch for b2: no new fetch.
	if n := idp.hits.Load(); n != 2 {
		t.Fatalf("the JWKS was fetched %d times, want still 2", n)
	}

	// SIGHUP re-reads the issuers file: A now also speaks for tenant 3.
	writeIssuers("[1, 3]")
	if err := e.proxy.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "A speaks for tenant 3 after SIGHUP", func() error {
		conn, err := pgx.Connect(ctx, e.connString(tokenA(claimsFor(issA, "3"))))
		if err != nil {
			return err
		}
		return conn.Close(ctx)
	})
	wantRows(t, orders(tokenA(claimsFor(issA, "3"))), "1")
	wantRows(t, orders(tokenB("b2", b2, claimsFor(issB, "2"))), "2")
	if !strings.Contains(e.logs.String(), "issuers file reloaded") {
		t.Errorf("the reload is not logged")
	}
}
