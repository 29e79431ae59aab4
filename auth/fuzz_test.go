package auth_test

import (
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/tenantproxy/tenantproxy/auth"
)

// checkRefusal asserts the contract every Verify error keeps.
func checkRefusal(t *testing.T, err error, token string) {
	t.Helper()
	var e *auth.Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v (%T) is not an *auth.Error", err, err)
	}
	if e.Code != auth.CodeInvalidPassword && e.Code != auth.CodeInvalidAuthorization {
		t.Fatalf("code %q is neither 28P01 nor 28000", e.Code)
	}
	if e.Reason == "" || e.Error() != e.Reason {
		t.Fatalf("reason %q, Error() %q", e.Reason, e.Error())
	}
	// Short inputs can coincide with words of a fixed reason; anything
	// shaped like a token (it has a dot) or long must never appear.
	if (strings.Contains(token, ".") || len(token) >= 32) && strings.Contains(e.Reason, token) {
		t.Fatalf("reason %q contains the input", e.Reason)
	}
}

// Verify never panics on any input, and every refusal is an *Error with a
// valid SQLSTATE that does not echo the input.
func FuzzVerify(f *testing.F) {
	files := keyFiles(f)
	v := newVerifier(f, files, []string{"hmac", "rsa", "p256", "ed", "jwks"}, func(c *auth.Config) {
		c.Issuers = []string{"https://issuer.test"}
		c.MaxTokenBytes = 4096
	})
	k := testKeys(f)
	f.Add(sign(f, jwt.SigningMethodHS256, testSecret, claims()))
	f.Add(sign(f, jwt.SigningMethodRS256, k.rsa, claims("tenant_id", []any{1, "2"})))
	f.Add(sign(f, jwt.SigningMethodES256, k.p256, claims(), "kid", "ec-1"))
	f.Add(sign(f, jwt.SigningMethodEdDSA, k.ed, claims(), "kid", "../../etc/passwd"))
	f.Add(sign(f, jwt.SigningMethodHS256, testSecret, claims("exp", nil, "tenant_id", 1.5)))
	f.Add(sign(f, jwt.SigningMethodHS256, testSecret, claims(), "crit", []string{"b64"}))
	f.Add(rawToken(f, `{"alg":"none"}`, `{"tenant_id":"1"}`, testSecret))
	f.Add(rawToken(f, `{"alg":"HS256","kid":{}}`, `[]`, testSecret))
	f.Add("hunter2")
	f.Add("..")
	f.Add("eyJhbGciOiJIUzI1NiJ9..")
	f.Add("")
	f.Fuzz(func(t *testing.T, token string) {
		id, err := v.Verify(token)
		if err != nil {
			checkRefusal(t, err, token)
			return
		}
		if len(id.Tenants) == 0 || id.Issuer != "https://issuer.test" {
			t.Fatalf("accepted identity %+v", id)
		}
	})
}

// Validly signed tokens with arbitrary claims never panic the claim checks,
// and an accepted one always names at least one non-empty tenant.
func FuzzClaims(f *testing.F) {
	files := keyFiles(f)
	v := newVerifier(f, files, []string{"hmac"}, func(c *auth.Config) { c.TenantClaim = "org.tenant" })
	exp := strconv.FormatInt(now.Add(time.Hour).Unix(), 10)
	for _, seed := range []string{
		`{"exp":` + exp + `,"org":{"tenant":"a"}}`,
		`{"exp":` + exp + `,"org":{"tenant":[1,2,"3",1]}}`,
		`{"exp":` + exp + `,"org.tenant":-0,"role":1}`,
		`{"exp":` + exp + `,"org":{"tenant":1e400}}`,
		`{"exp":1e400,"nbf":"x","org":{"tenant":"a"}}`,
		`{"exp":` + exp + `,"iss":7,"aud":[1],"sub":{},"org":{"tenant":[[]]}}`,
		`null`,
		`[]`,
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, payload string) {
		token := rawToken(t, `{"alg":"HS256","typ":"JWT"}`, payload, testSecret)
		id, err := v.Verify(token)
		if err != nil {
			checkRefusal(t, err, token)
			return
		}
		if len(id.Tenants) == 0 {
			t.Fatal("accepted without tenants")
		}
		for _, tenant := range id.Tenants {
			if tenant == "" || strings.ContainsRune(tenant, 0) {
				t.Fatalf("tenant %q", tenant)
			}
		}
	})
}
