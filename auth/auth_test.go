package auth_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/tenantproxy/tenantproxy/auth"
)

var now = time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)

type keys struct {
	dir       string
	secret    []byte
	rsa       *rsa.PrivateKey
	ec        *ecdsa.PrivateKey
	ed        ed25519.PrivateKey
	secretF   string
	rsaPEM    string
	ecPEM     string
	edPEM     string
	jwksF     string
	rsaPubPEM []byte
}

func newKeys(t testing.TB) *keys {
	t.Helper()
	k := &keys{dir: t.TempDir(), secret: []byte("0123456789abcdef0123456789abcdef-secret")}
	var err error
	if k.rsa, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
		t.Fatal(err)
	}
	if k.ec, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
		t.Fatal(err)
	}
	if _, k.ed, err = ed25519.GenerateKey(rand.Reader); err != nil {
		t.Fatal(err)
	}
	write := func(name string, b []byte) string {
		p := filepath.Join(k.dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	pemOf := func(pub crypto.PublicKey) []byte {
		der, err := x509.MarshalPKIXPublicKey(pub)
		if err != nil {
			t.Fatal(err)
		}
		return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	}
	k.secretF = write("hmac.key", append(k.secret, '\n'))
	k.rsaPubPEM = pemOf(&k.rsa.PublicKey)
	k.rsaPEM = write("rsa.pem", k.rsaPubPEM)
	k.ecPEM = write("ec.pem", pemOf(&k.ec.PublicKey))
	k.edPEM = write("ed.pem", pemOf(k.ed.Public()))
	b64 := func(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }
	jwks, _ := json.Marshal(map[string]any{"keys": []map[string]string{
		{"kty": "RSA", "kid": "r1", "n": b64(k.rsa.N.Bytes()), "e": b64(big.NewInt(int64(k.rsa.E)).Bytes())},
		{"kty": "EC", "kid": "e1", "crv": "P-256", "x": b64(k.ec.X.FillBytes(make([]byte, 32))), "y": b64(k.ec.Y.FillBytes(make([]byte, 32)))},
		{"kty": "RSA", "kid": "enc", "use": "enc", "n": "AQAB", "e": "AQAB"},
	}})
	k.jwksF = write("jwks.json", jwks)
	return k
}

func sign(t testing.TB, m jwt.SigningMethod, key any, claims jwt.MapClaims, header map[string]any) string {
	t.Helper()
	tok := jwt.NewWithClaims(m, claims)
	for h, v := range header {
		tok.Header[h] = v
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func claims(extra map[string]any) jwt.MapClaims {
	c := jwt.MapClaims{"sub": "user-1", "iss": "https://issuer.test", "tenant_id": "42", "exp": now.Add(time.Hour).Unix(), "iat": now.Unix()}
	for k, v := range extra {
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
	}
	return c
}

func verifier(t testing.TB, cfg auth.Config) *auth.Verifier {
	t.Helper()
	cfg.Now = func() time.Time { return now }
	v, err := auth.NewVerifier(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestAcceptedTokens(t *testing.T) {
	k := newKeys(t)
	v := verifier(t, auth.Config{KeyFiles: []string{k.secretF, k.rsaPEM, k.ecPEM, k.edPEM}, Issuers: []string{"https://issuer.test", "https://other.test"}})
	cases := []struct {
		name    string
		token   string
		tenants []string
	}{
		{"HS256", sign(t, jwt.SigningMethodHS256, k.secret, claims(nil), nil), []string{"42"}},
		{"HS512", sign(t, jwt.SigningMethodHS512, k.secret, claims(nil), nil), []string{"42"}},
		{"RS256", sign(t, jwt.SigningMethodRS256, k.rsa, claims(nil), nil), []string{"42"}},
		{"PS384", sign(t, jwt.SigningMethodPS384, k.rsa, claims(nil), nil), []string{"42"}},
		{"ES256", sign(t, jwt.SigningMethodES256, k.ec, claims(nil), nil), []string{"42"}},
		{"EdDSA", sign(t, jwt.SigningMethodEdDSA, k.ed, claims(nil), nil), []string{"42"}},
		{"integer tenant", sign(t, jwt.SigningMethodHS256, k.secret, claims(map[string]any{"tenant_id": 7}), nil), []string{"7"}},
		{"big integer tenant", sign(t, jwt.SigningMethodHS256, k.secret, claims(map[string]any{"tenant_id": json.Number("9007199254740993")}), nil), []string{"9007199254740993"}},
		{"tenant array", sign(t, jwt.SigningMethodHS256, k.secret, claims(map[string]any{"tenant_id": []any{"a", 2, "a"}}), nil), []string{"a", "2"}},
		{"second issuer", sign(t, jwt.SigningMethodHS256, k.secret, claims(map[string]any{"iss": "https://other.test"}), nil), []string{"42"}},
		{"jku header ignored", sign(t, jwt.SigningMethodHS256, k.secret, claims(nil), map[string]any{"jku": "https://evil.test/jwks", "x5u": "https://evil.test/x"}), []string{"42"}},
		{"expired within leeway", sign(t, jwt.SigningMethodHS256, k.secret, claims(map[string]any{"exp": now.Add(-10 * time.Second).Unix()}), nil), []string{"42"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			id, err := v.Verify(c.token)
			if err != nil {
				t.Fatal(err)
			}
			if strings.Join(id.Tenants, ",") != strings.Join(c.tenants, ",") || id.Subject != "user-1" {
				t.Fatalf("got %+v", id)
			}
		})
	}
}

func TestRefusedTokens(t *testing.T) {
	k := newKeys(t)
	v := verifier(t, auth.Config{KeyFiles: []string{k.secretF, k.rsaPEM}, Issuers: []string{"https://issuer.test"}, Audience: "api"})
	withAud := func(extra map[string]any) jwt.MapClaims {
		c := claims(extra)
		if _, ok := extra["aud"]; !ok {
			c["aud"] = "api"
		}
		return c
	}
	other, _ := rsa.GenerateKey(rand.Reader, 2048)
	none, _ := jwt.NewWithClaims(jwt.SigningMethodNone, withAud(nil)).SignedString(jwt.UnsafeAllowNoneSignatureType)
	cases := []struct {
		name, token, code, says string
	}{
		{"expired", sign(t, jwt.SigningMethodHS256, k.secret, withAud(map[string]any{"exp": now.Add(-31 * time.Second).Unix()}), nil), "28P01", "expired at"},
		{"no exp", sign(t, jwt.SigningMethodHS256, k.secret, withAud(map[string]any{"exp": nil}), nil), "28P01", "no expiry"},
		{"nbf in the future", sign(t, jwt.SigningMethodHS256, k.secret, withAud(map[string]any{"nbf": now.Add(time.Hour).Unix()}), nil), "28P01", "not valid yet"},
		{"iat in the future", sign(t, jwt.SigningMethodHS256, k.secret, withAud(map[string]any{"iat": now.Add(time.Hour).Unix()}), nil), "28P01", "issued in the future"},
		{"wrong issuer", sign(t, jwt.SigningMethodHS256, k.secret, withAud(map[string]any{"iss": "https://evil.test"}), nil), "28P01", "issuer"},
		{"no issuer", sign(t, jwt.SigningMethodHS256, k.secret, withAud(map[string]any{"iss": nil}), nil), "28P01", "issuer"},
		{"wrong audience", sign(t, jwt.SigningMethodHS256, k.secret, withAud(map[string]any{"aud": "other"}), nil), "28P01", "audience"},
		{"forged HMAC", sign(t, jwt.SigningMethodHS256, []byte("another-secret-another-secret-xx"), withAud(nil), nil), "28P01", "signature"},
		{"unknown RSA key", sign(t, jwt.SigningMethodRS256, other, withAud(nil), nil), "28P01", "signature"},
		{"alg none", none, "28P01", ""},
		{"algorithm confusion: RSA public key as HMAC secret", sign(t, jwt.SigningMethodHS256, k.rsaPubPEM, withAud(nil), nil), "28P01", "signature"},
		{"ES256 without an EC key", sign(t, jwt.SigningMethodES256, mustEC(t), withAud(nil), nil), "28P01", ""},
		{"crit header", sign(t, jwt.SigningMethodHS256, k.secret, withAud(nil), map[string]any{"crit": []string{"exp"}}), "28P01", "critical"},
		{"oversized", strings.Repeat("a", 20000) + ".b.c", "28P01", "larger"},
		{"not a jwt", "hunter2", "28P01", "not a JWT"},
		{"garbage segments", "a.b.c", "28P01", "malformed"},
		{"missing tenant", sign(t, jwt.SigningMethodHS256, k.secret, withAud(map[string]any{"tenant_id": nil}), nil), "28000", "tenant_id"},
		{"empty tenant", sign(t, jwt.SigningMethodHS256, k.secret, withAud(map[string]any{"tenant_id": ""}), nil), "28000", "empty"},
		{"float tenant", sign(t, jwt.SigningMethodHS256, k.secret, withAud(map[string]any{"tenant_id": 1.5}), nil), "28000", "fraction"},
		{"bool tenant", sign(t, jwt.SigningMethodHS256, k.secret, withAud(map[string]any{"tenant_id": true}), nil), "28000", "boolean"},
		{"object tenant", sign(t, jwt.SigningMethodHS256, k.secret, withAud(map[string]any{"tenant_id": map[string]any{"id": 1}}), nil), "28000", "object"},
		{"empty array", sign(t, jwt.SigningMethodHS256, k.secret, withAud(map[string]any{"tenant_id": []any{}}), nil), "28000", "empty array"},
		{"array with null", sign(t, jwt.SigningMethodHS256, k.secret, withAud(map[string]any{"tenant_id": []any{"1", nil}}), nil), "28000", "null"},
		{"nested arrays", sign(t, jwt.SigningMethodHS256, k.secret, withAud(map[string]any{"tenant_id": []any{[]any{"1"}}}), nil), "28000", "nest"},
		{"huge array", sign(t, jwt.SigningMethodHS256, k.secret, withAud(map[string]any{"tenant_id": make([]any, 1001)}), nil), "28000", "more than"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := v.Verify(c.token)
			var ae *auth.Error
			if !errors.As(err, &ae) {
				t.Fatalf("want *auth.Error, got %v", err)
			}
			if c.code != "" && ae.Code != c.code {
				t.Fatalf("code %s, want %s (%s)", ae.Code, c.code, ae.Reason)
			}
			if !strings.Contains(ae.Error(), c.says) {
				t.Fatalf("reason %q should say %q", ae.Error(), c.says)
			}
			if len(c.token) > 10 && strings.Contains(ae.Error(), c.token[:10]) {
				t.Fatalf("reason echoes the token: %q", ae.Error())
			}
		})
	}
}

func mustEC(t testing.TB) *ecdsa.PrivateKey {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestJWKSKeysAreSelectedByKid(t *testing.T) {
	k := newKeys(t)
	v := verifier(t, auth.Config{KeyFiles: []string{k.jwksF}})
	if _, err := v.Verify(sign(t, jwt.SigningMethodRS256, k.rsa, claims(nil), map[string]any{"kid": "r1"})); err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(sign(t, jwt.SigningMethodES256, k.ec, claims(nil), map[string]any{"kid": "e1"})); err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(sign(t, jwt.SigningMethodRS256, k.rsa, claims(nil), map[string]any{"kid": "e1"})); err == nil {
		t.Fatal("a token naming another key's kid verified")
	}
	for _, kid := range []string{"../../etc/passwd", "r1' OR '1'='1", "/dev/zero"} {
		var ae *auth.Error
		if _, err := v.Verify(sign(t, jwt.SigningMethodRS256, k.rsa, claims(nil), map[string]any{"kid": kid})); !errors.As(err, &ae) || ae.Code != "28P01" {
			t.Fatalf("kid %q: %v", kid, err)
		}
	}
	if _, err := v.Verify(sign(t, jwt.SigningMethodHS256, k.secret, claims(nil), nil)); err == nil {
		t.Fatal("HS256 verified against a JWKS without oct keys")
	}
}

func TestNestedAndURLClaims(t *testing.T) {
	k := newKeys(t)
	v := verifier(t, auth.Config{KeyFiles: []string{k.secretF}, TenantClaim: "org.id"})
	id, err := v.Verify(sign(t, jwt.SigningMethodHS256, k.secret, claims(map[string]any{"org": map[string]any{"id": 9}}), nil))
	if err != nil || id.Tenants[0] != "9" {
		t.Fatalf("%v %v", id, err)
	}
	v = verifier(t, auth.Config{KeyFiles: []string{k.secretF}, TenantClaim: "https://example.com/tenant"})
	id, err = v.Verify(sign(t, jwt.SigningMethodHS256, k.secret, claims(map[string]any{"https://example.com/tenant": "acme"}), nil))
	if err != nil || id.Tenants[0] != "acme" {
		t.Fatalf("%v %v", id, err)
	}
}

func TestBadKeyFiles(t *testing.T) {
	dir := t.TempDir()
	short := filepath.Join(dir, "short")
	os.WriteFile(short, []byte("too short"), 0o600)
	private := filepath.Join(dir, "private.pem")
	os.WriteFile(private, []byte("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"), 0o600)
	empty := filepath.Join(dir, "empty.json")
	os.WriteFile(empty, []byte(`{"keys": []}`), 0o600)
	for _, f := range []string{short, private, empty, filepath.Join(dir, "missing")} {
		if _, err := auth.NewVerifier(auth.Config{KeyFiles: []string{f}}); err == nil || !strings.Contains(err.Error(), f) {
			t.Errorf("%s: want an error naming the file, got %v", f, err)
		}
	}
	if _, err := auth.NewVerifier(auth.Config{}); err == nil {
		t.Error("no keys accepted")
	}
}

func TestMintRoundTrip(t *testing.T) {
	k := newKeys(t)
	tok, err := auth.Mint(k.secret, auth.MintOptions{Tenants: []string{"1", "2"}, Subject: "dev", Issuer: "https://issuer.test", TenantClaim: "org.tenants", Now: now})
	if err != nil {
		t.Fatal(err)
	}
	v := verifier(t, auth.Config{KeyFiles: []string{k.secretF}, TenantClaim: "org.tenants"})
	id, err := v.Verify(tok)
	if err != nil || strings.Join(id.Tenants, ",") != "1,2" || id.Subject != "dev" {
		t.Fatalf("%+v %v", id, err)
	}
}
