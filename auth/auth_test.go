package auth_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/tenantproxy/tenantproxy/auth"
)

// Every supported key kind verifies the algorithms that fit it.
func TestEveryKeyKindVerifiesItsAlgorithms(t *testing.T) {
	k := testKeys(t)
	files := keyFiles(t)
	octSecret := []byte("jwks-oct-secret-0123456789abcdef!")
	cases := []struct {
		name   string
		files  []string
		method jwt.SigningMethod
		key    any
		header []any
	}{
		{"RS256 with a PUBLIC KEY PEM", []string{"rsa"}, jwt.SigningMethodRS256, k.rsa, nil},
		{"RS384 with a PUBLIC KEY PEM", []string{"rsa"}, jwt.SigningMethodRS384, k.rsa, nil},
		{"RS512 with a PUBLIC KEY PEM", []string{"rsa"}, jwt.SigningMethodRS512, k.rsa, nil},
		{"PS256 with a PUBLIC KEY PEM", []string{"rsa"}, jwt.SigningMethodPS256, k.rsa, nil},
		{"PS384 with a PUBLIC KEY PEM", []string{"rsa"}, jwt.SigningMethodPS384, k.rsa, nil},
		{"PS512 with a PUBLIC KEY PEM", []string{"rsa"}, jwt.SigningMethodPS512, k.rsa, nil},
		{"RS256 with an RSA PUBLIC KEY PEM", []string{"rsa-pkcs"}, jwt.SigningMethodRS256, k.rsa, nil},
		{"RS256 with a certificate", []string{"rsa-cert"}, jwt.SigningMethodRS256, k.rsa, nil},
		{"ES256 with a P-256 key", []string{"p256"}, jwt.SigningMethodES256, k.p256, nil},
		{"ES384 with a P-384 key", []string{"p384"}, jwt.SigningMethodES384, k.p384, nil},
		{"ES512 with a P-521 key", []string{"p521"}, jwt.SigningMethodES512, k.p521, nil},
		{"EdDSA with an Ed25519 key", []string{"ed"}, jwt.SigningMethodEdDSA, k.ed, nil},
		{"EdDSA with an Ed25519 certificate", []string{"ed-cert"}, jwt.SigningMethodEdDSA, k.ed, nil},
		{"HS256 with a secret file", []string{"hmac"}, jwt.SigningMethodHS256, testSecret, nil},
		{"HS384 with a secret file", []string{"hmac"}, jwt.SigningMethodHS384, testSecret, nil},
		{"HS512 with a secret file", []string{"hmac"}, jwt.SigningMethodHS512, testSecret, nil},
		{"JWKS EC key by kid", []string{"jwks"}, jwt.SigningMethodES256, k.p256, []any{"kid", "ec-1"}},
		{"JWKS RSA key by kid with its pinned alg", []string{"jwks"}, jwt.SigningMethodRS256, k.rsa2, []any{"kid", "rsa-2"}},
		{"JWKS Ed25519 key by kid", []string{"jwks"}, jwt.SigningMethodEdDSA, k.ed, []any{"kid", "ed-1"}},
		{"JWKS oct key by kid", []string{"jwks"}, jwt.SigningMethodHS256, octSecret, []any{"kid", "oct-1"}},
		{"JWKS key without a kid in the token", []string{"jwks"}, jwt.SigningMethodES256, k.p256, nil},
		{"PEM key and a token kid the files do not name", []string{"rsa", "jwks"}, jwt.SigningMethodRS256, k.rsa, []any{"kid", "rotated-away"}},
		{"the second of several key files", []string{"hmac", "p384", "ed"}, jwt.SigningMethodEdDSA, k.ed, nil},
		{"jku and x5u headers are ignored", []string{"rsa"}, jwt.SigningMethodRS256, k.rsa, []any{"jku", "https://evil.test/jwks", "x5u", "https://evil.test/cert"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			v := newVerifier(t, files, c.files, nil)
			id, err := v.Verify(sign(t, c.method, c.key, claims(), c.header...))
			if err != nil {
				t.Fatalf("refused: %v", err)
			}
			if id.Subject != "user-1" || id.Issuer != "https://issuer.test" || len(id.Tenants) != 1 || id.Tenants[0] != "42" {
				t.Errorf("identity %+v", id)
			}
			if !id.Expiry.Equal(now.Add(time.Hour)) {
				t.Errorf("expiry %s, want %s", id.Expiry, now.Add(time.Hour))
			}
		})
	}
}

// Bad tokens are refused with 28P01 and a reason naming what was wrong.
func TestBadTokensAreRefused(t *testing.T) {
	k := testKeys(t)
	files := keyFiles(t)
	rsaPEM, err := os.ReadFile(files["rsa"])
	if err != nil {
		t.Fatal(err)
	}
	jwksBytes, err := os.ReadFile(files["jwks"])
	if err != nil {
		t.Fatal(err)
	}
	none, err := jwt.NewWithClaims(jwt.SigningMethodNone, claims()).SignedString(jwt.UnsafeAllowNoneSignatureType)
	if err != nil {
		t.Fatal(err)
	}
	hs := func(c jwt.MapClaims, header ...any) string {
		return sign(t, jwt.SigningMethodHS256, testSecret, c, header...)
	}
	good := hs(claims())
	parts := strings.Split(good, ".")
	tampered := parts[0] + "." + b64([]byte(`{"tenant_id":"43","exp":9999999999}`)) + "." + parts[2]
	leeway := 30 * time.Second
	otherP256, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}

	cases := []struct {
		name  string
		files []string
		edit  func(*auth.Config)
		token string
		says  string
	}{
		{"not a JWT", []string{"hmac"}, nil, "hunter2", "not a JWT"},
		{"empty password", []string{"hmac"}, nil, "", "no token"},
		{"three garbage parts", []string{"hmac"}, nil, "a.b.c", "not a JWT"},
		{"header is not JSON", []string{"hmac"}, nil, b64([]byte("not json")) + "." + parts[1] + "." + parts[2], "not a JWT"},
		{"too large", []string{"hmac"}, func(c *auth.Config) { c.MaxTokenBytes = 64 }, good, "longer than the 64 allowed"},
		{"too large by default", []string{"hmac"}, nil, hs(claims("pad", strings.Repeat("x", 17000))), "longer than the 16384 allowed"},
		{"tampered payload", []string{"hmac"}, nil, tampered, "signature is invalid"},
		{"signed with another secret", []string{"hmac"}, nil, sign(t, jwt.SigningMethodHS256, []byte("another-secret-of-at-least-32-bytes!!"), claims()), "signature is invalid"},
		{"signature stripped", []string{"hmac"}, nil, parts[0] + "." + parts[1] + ".", "signature is invalid"},
		{"alg none", []string{"hmac", "rsa"}, nil, none, "algorithm none is not accepted"},
		{"unknown alg", []string{"hmac"}, nil, b64([]byte(`{"alg":"XS999","typ":"JWT"}`)) + "." + parts[1] + "." + parts[2], "algorithm (alg) is missing or unknown"},
		{"no alg", []string{"hmac"}, nil, b64([]byte(`{"typ":"JWT"}`)) + "." + parts[1] + "." + parts[2], "algorithm (alg) is missing or unknown"},
		{"algorithm confusion: HS256 keyed with the RSA public key PEM", []string{"rsa"}, nil, sign(t, jwt.SigningMethodHS256, rsaPEM, claims()), "algorithm HS256 is not accepted"},
		{"algorithm confusion beside an HMAC key", []string{"rsa", "hmac"}, nil, sign(t, jwt.SigningMethodHS256, rsaPEM, claims()), "signature is invalid"},
		{"algorithm confusion with the JWKS bytes", []string{"jwks"}, nil, sign(t, jwt.SigningMethodHS256, jwksBytes, claims(), "kid", "ec-1"), "no configured key verifies HS256"},
		{"RS256 against an EC key", []string{"p256"}, nil, sign(t, jwt.SigningMethodRS256, k.rsa, claims()), "algorithm RS256 is not accepted"},
		{"ES384 against a P-256 key", []string{"p256", "rsa"}, nil, sign(t, jwt.SigningMethodES384, k.p384, claims()), "algorithm ES384 is not accepted"},
		{"ES256 signed by an unknown key", []string{"p256"}, nil, sign(t, jwt.SigningMethodES256, otherP256, claims()), "signature is invalid"},
		{"RSA key not configured", []string{"hmac"}, nil, sign(t, jwt.SigningMethodRS256, k.rsa, claims()), "not accepted"},
		{"JWKS pinned alg refuses another RSA alg", []string{"jwks", "rsa"}, nil, sign(t, jwt.SigningMethodPS256, k.rsa2, claims(), "kid", "rsa-2"), "no configured key verifies PS256"},
		{"JWKS enc key is never used", []string{"jwks"}, nil, sign(t, jwt.SigningMethodRS256, k.jwksEnc, claims(), "kid", "rsa-enc"), "kid"},
		{"JWKS enc key without kid", []string{"jwks", "rsa"}, nil, sign(t, jwt.SigningMethodRS256, k.jwksEnc, claims()), "signature is invalid"},
		{"kid naming another key", []string{"jwks"}, nil, sign(t, jwt.SigningMethodEdDSA, k.ed, claims(), "kid", "ec-1"), "no configured key verifies EdDSA"},
		{"kid path traversal", []string{"jwks"}, nil, sign(t, jwt.SigningMethodES256, k.p256, claims(), "kid", "../../etc/passwd"), "kid) matches no configured key"},
		{"kid absolute path", []string{"jwks"}, nil, sign(t, jwt.SigningMethodES256, k.p256, claims(), "kid", files["p256"]), "kid) matches no configured key"},
		{"kid not a string", []string{"jwks"}, nil, sign(t, jwt.SigningMethodES256, k.p256, claims(), "kid", 7), "kid) is not a string"},
		{"embedded jwk header is not trusted", []string{"rsa"}, nil, sign(t, jwt.SigningMethodRS256, k.rsa2, claims(), "jwk", jwkOf(t, &k.rsa2.PublicKey, "")), "signature is invalid"},
		{"jku header is not fetched", []string{"rsa"}, nil, sign(t, jwt.SigningMethodRS256, k.rsa2, claims(), "jku", "https://evil.test/jwks.json"), "signature is invalid"},
		{"crit header", []string{"hmac"}, nil, hs(claims(), "crit", []string{"exp"}), "unsupported critical header"},
		{"no exp", []string{"hmac"}, nil, hs(claims("exp", nil)), "no exp claim"},
		{"exp is a string", []string{"hmac"}, nil, hs(claims("exp", "tomorrow")), "must be numbers"},
		{"exp out of range", []string{"hmac"}, nil, hs(claims("exp", 1e300)), "out of range"},
		{"expired one second beyond the leeway", []string{"hmac"}, nil, hs(claims("exp", now.Add(-leeway-time.Second).Unix())), "token expired at 2026-01-02T03:03:34Z"},
		{"expired long ago", []string{"hmac"}, nil, hs(claims("exp", now.Add(-24*time.Hour).Unix())), "expired"},
		{"nbf in the future", []string{"hmac"}, nil, hs(claims("nbf", now.Add(time.Minute).Unix())), "not valid yet"},
		{"iat in the future", []string{"hmac"}, nil, hs(claims("iat", now.Add(time.Hour).Unix())), "issued in the future"},
		{"nbf is a string", []string{"hmac"}, nil, hs(claims("nbf", "now")), "must be numbers"},
		{"wrong issuer", []string{"hmac"}, func(c *auth.Config) { c.Issuers = []string{"https://a.test", "https://b.test"} }, good, `token issuer "https://issuer.test" is not allowed`},
		{"no issuer", []string{"hmac"}, func(c *auth.Config) { c.Issuers = []string{"https://issuer.test"} }, hs(claims("iss", nil)), "no issuer"},
		{"issuer not a string", []string{"hmac"}, func(c *auth.Config) { c.Issuers = []string{"https://issuer.test"} }, hs(claims("iss", 5)), "issuer (iss) is not a string"},
		{"long issuer is cut", []string{"hmac"}, func(c *auth.Config) { c.Issuers = []string{"x"} }, hs(claims("iss", strings.Repeat("i", 500))), `"...`},
		{"wrong audience", []string{"hmac"}, func(c *auth.Config) { c.Audience = "tenantproxy" }, hs(claims("aud", "other")), `audience does not include "tenantproxy"`},
		{"wrong audience array", []string{"hmac"}, func(c *auth.Config) { c.Audience = "tenantproxy" }, hs(claims("aud", []string{"a", "b"})), "does not include"},
		{"no audience", []string{"hmac"}, func(c *auth.Config) { c.Audience = "tenantproxy" }, good, "no audience"},
		{"audience of the wrong type", []string{"hmac"}, func(c *auth.Config) { c.Audience = "tenantproxy" }, hs(claims("aud", []any{"tenantproxy", 1})), "audience (aud) must be"},
		{"subject not a string", []string{"hmac"}, nil, hs(claims("sub", 12)), "subject (sub) is not a string"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			v := newVerifier(t, files, c.files, c.edit)
			id, err := v.Verify(c.token)
			if err == nil {
				t.Fatalf("accepted: %+v", id)
			}
			e := authError(t, err)
			if e.Code != auth.CodeInvalidPassword {
				t.Errorf("code %s, want 28P01 (%s)", e.Code, e.Reason)
			}
			if !strings.Contains(e.Error(), c.says) {
				t.Errorf("reason %q should say %q", e.Error(), c.says)
			}
			if echoes(e.Error(), c.token) {
				t.Errorf("reason %q echoes the token", e.Error())
			}
		})
	}
}

// Time claims get the configured leeway, no more.
func TestLeeway(t *testing.T) {
	files := keyFiles(t)
	cases := []struct {
		name   string
		claims jwt.MapClaims
		ok     bool
	}{
		{"expired within the leeway", claims("exp", now.Add(-29*time.Second).Unix()), true},
		{"expired beyond the leeway", claims("exp", now.Add(-31*time.Second).Unix()), false},
		{"nbf within the leeway", claims("nbf", now.Add(29*time.Second).Unix()), true},
		{"nbf beyond the leeway", claims("nbf", now.Add(31*time.Second).Unix()), false},
		{"iat within the leeway", claims("iat", now.Add(29*time.Second).Unix()), true},
		{"iat beyond the leeway", claims("iat", now.Add(31*time.Second).Unix()), false},
		{"nbf in the past", claims("nbf", now.Add(-time.Hour).Unix()), true},
	}
	v := newVerifier(t, files, []string{"hmac"}, nil)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := v.Verify(sign(t, jwt.SigningMethodHS256, testSecret, c.claims))
			if (err == nil) != c.ok {
				t.Errorf("accepted %v, want %v (err %v)", err == nil, c.ok, err)
			}
		})
	}
	strict := newVerifier(t, files, []string{"hmac"}, func(c *auth.Config) { c.Leeway = time.Second })
	if _, err := strict.Verify(sign(t, jwt.SigningMethodHS256, testSecret, claims("exp", now.Add(-2*time.Second).Unix()))); err == nil {
		t.Error("a 1s leeway accepted a token expired 2s ago")
	}
}

// Issuer and audience rules accept what they should.
func TestIssuerAndAudienceAccepted(t *testing.T) {
	files := keyFiles(t)
	v := newVerifier(t, files, []string{"hmac"}, func(c *auth.Config) {
		c.Issuers = []string{"https://other.test", "https://issuer.test"}
		c.Audience = "tenantproxy"
	})
	for _, aud := range []any{"tenantproxy", []string{"x", "tenantproxy"}} {
		id, err := v.Verify(sign(t, jwt.SigningMethodHS256, testSecret, claims("aud", aud)))
		if err != nil {
			t.Fatalf("aud %v: %v", aud, err)
		}
		if id.Issuer != "https://issuer.test" {
			t.Errorf("issuer %q", id.Issuer)
		}
	}
}

// The tenant claim accepts strings, integers and arrays of them, and refuses
// everything else with 28000.
func TestTenantClaim(t *testing.T) {
	files := keyFiles(t)
	many := make([]any, auth.MaxTenants+1)
	for i := range many {
		many[i] = i
	}
	cases := []struct {
		name    string
		claim   string // TenantClaim config; default tenant_id
		payload string // tenant part of the claims JSON; empty means absent
		want    []string
		says    string // for refusals
	}{
		{"string", "", `"tenant_id":"acme"`, []string{"acme"}, ""},
		{"integer", "", `"tenant_id":42`, []string{"42"}, ""},
		{"negative zero is canonical", "", `"tenant_id":-0`, []string{"0"}, ""},
		{"big integer", "", `"tenant_id":123456789012345678901234567890`, []string{"123456789012345678901234567890"}, ""},
		{"array", "", `"tenant_id":["b","a",7]`, []string{"b", "a", "7"}, ""},
		{"array with duplicates", "", `"tenant_id":[1,"1",2,1]`, []string{"1", "2"}, ""},
		{"nested path", "org.id", `"org":{"id":9}`, []string{"9"}, ""},
		{"deeply nested path", "a.b.c", `"a":{"b":{"c":["x","y"]}}`, []string{"x", "y"}, ""},
		{"claim name with dots", "https://x.io/tenant", `"https://x.io/tenant":"t1"`, []string{"t1"}, ""},
		{"top-level dotted name wins over the path", "org.id", `"org.id":"top","org":{"id":"nested"}`, []string{"top"}, ""},
		{"missing", "", ``, nil, `token has no "tenant_id" claim`},
		{"missing nested", "org.id", `"org":{"name":"x"}`, nil, `token has no "org.id" claim`},
		{"path through a string", "org.id", `"org":"x"`, nil, `no "org.id" claim`},
		{"null", "", `"tenant_id":null`, nil, "not null"},
		{"empty string", "", `"tenant_id":""`, nil, "not an empty string"},
		{"NUL in string", "", `"tenant_id":"a\u0000b"`, nil, "NUL"},
		{"float", "", `"tenant_id":1.5`, nil, `claim "tenant_id" must be a string, an integer or an array of them, not a float`},
		{"integral float", "", `"tenant_id":1.0`, nil, "not a float"},
		{"exponent", "", `"tenant_id":1e3`, nil, "not a float"},
		{"bool", "", `"tenant_id":true`, nil, "not a boolean"},
		{"object", "", `"tenant_id":{"id":1}`, nil, "not an object"},
		{"empty array", "", `"tenant_id":[]`, nil, "empty array"},
		{"array with null", "", `"tenant_id":["a",null]`, nil, "entry 1 must be a string or an integer, not null"},
		{"array with float", "", `"tenant_id":[1,2.5]`, nil, "entry 1"},
		{"nested array", "", `"tenant_id":[["a"]]`, nil, "not an array"},
		{"array with empty string", "", `"tenant_id":["a",""]`, nil, "empty string"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			v := newVerifier(t, files, []string{"hmac"}, func(cfg *auth.Config) { cfg.TenantClaim = c.claim })
			payload := `{"sub":"u","exp":` + strconv.FormatInt(now.Add(time.Hour).Unix(), 10)
			if c.payload != "" {
				payload += "," + c.payload
			}
			token := rawToken(t, `{"alg":"HS256","typ":"JWT"}`, payload+"}", testSecret)
			id, err := v.Verify(token)
			if c.says == "" {
				if err != nil {
					t.Fatal(err)
				}
				if strings.Join(id.Tenants, "|") != strings.Join(c.want, "|") {
					t.Errorf("tenants %q, want %q", id.Tenants, c.want)
				}
				return
			}
			if err == nil {
				t.Fatalf("accepted with tenants %q", id.Tenants)
			}
			e := authError(t, err)
			if e.Code != auth.CodeInvalidAuthorization {
				t.Errorf("code %s, want 28000 (%s)", e.Code, e.Reason)
			}
			if !strings.Contains(e.Reason, c.says) {
				t.Errorf("reason %q should say %q", e.Reason, c.says)
			}
		})
	}
	t.Run("too many tenants", func(t *testing.T) {
		v := newVerifier(t, files, []string{"hmac"}, nil)
		_, err := v.Verify(sign(t, jwt.SigningMethodHS256, testSecret, claims("tenant_id", many)))
		if e := authError(t, err); e.Code != auth.CodeInvalidAuthorization || !strings.Contains(e.Reason, "at most 1000") {
			t.Errorf("got %s %q", e.Code, e.Reason)
		}
		id, err := v.Verify(sign(t, jwt.SigningMethodHS256, testSecret, claims("tenant_id", many[:auth.MaxTenants])))
		if err != nil || len(id.Tenants) != auth.MaxTenants {
			t.Errorf("1000 tenants: %v", err)
		}
	})
}

// The role claim is optional and must be a string.
func TestRoleClaim(t *testing.T) {
	files := keyFiles(t)
	v := newVerifier(t, files, []string{"hmac"}, nil)
	id, err := v.Verify(sign(t, jwt.SigningMethodHS256, testSecret, claims("role", "reader")))
	if err != nil || id.Role != "reader" {
		t.Fatalf("role %q, err %v", id.Role, err)
	}
	id, err = v.Verify(sign(t, jwt.SigningMethodHS256, testSecret, claims()))
	if err != nil || id.Role != "" {
		t.Fatalf("no role: %+v, %v", id, err)
	}
	custom := newVerifier(t, files, []string{"hmac"}, func(c *auth.Config) { c.RoleClaim = "app.role" })
	id, err = custom.Verify(sign(t, jwt.SigningMethodHS256, testSecret, claims("app", map[string]any{"role": "admin"})))
	if err != nil || id.Role != "admin" {
		t.Fatalf("nested role %+v, %v", id, err)
	}
	_, err = v.Verify(sign(t, jwt.SigningMethodHS256, testSecret, claims("role", []string{"a"})))
	if e := authError(t, err); e.Code != auth.CodeInvalidAuthorization || !strings.Contains(e.Reason, `claim "role" must be a string`) {
		t.Errorf("got %s %q", e.Code, e.Reason)
	}
}

// One Verifier serves many sessions at once.
func TestVerifyConcurrently(t *testing.T) {
	files := keyFiles(t)
	v := newVerifier(t, files, []string{"hmac", "jwks"}, nil)
	good := sign(t, jwt.SigningMethodHS256, testSecret, claims())
	bad := sign(t, jwt.SigningMethodHS256, testSecret, claims("tenant_id", nil))
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 50 {
				if id, err := v.Verify(good); err != nil || id.Tenants[0] != "42" {
					t.Errorf("good token: %v", err)
					return
				}
				if _, err := v.Verify(bad); err == nil {
					t.Error("accepted a token without a tenant")
					return
				}
			}
		})
	}
	wg.Wait()
}

// TestIdentityCarriesEveryDimension: other claims reach the session's scope
// for tables bound to them; values are canonical, unusable claims left out.
func TestIdentityCarriesEveryDimension(t *testing.T) {
	v := newVerifier(t, keyFiles(t), []string{"hmac"}, nil)
	tok := sign(t, jwt.SigningMethodHS256, testSecret, claims("tenant_id", "t1", "sub", "u1", "teams", []any{"a", 7, "a"},
		"org", map[string]any{"id": 42, "name": "x"}, "admin", true))
	id, err := v.Verify(tok)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{"tenant_id": {"t1"}, "sub": {"u1"}, "teams": {"a", "7"}, "org.id": {"42"}, "org.name": {"x"}, "iss": {"https://issuer.test"}}
	for name, vals := range want {
		if !slices.Equal(id.Claims[name], vals) {
			t.Errorf("claim %s = %v, want %v", name, id.Claims[name], vals)
		}
	}
	if _, ok := id.Claims["admin"]; ok {
		t.Error("a boolean claim became a dimension")
	}
}
