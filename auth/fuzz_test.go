package auth_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/golang-jwt/jwt/v5"
	"github.com/tenantproxy/tenantproxy/auth"
)

// FuzzVerify: Verify never panics, every error is an *auth.Error with a
// SQLSTATE of class 28, and no error repeats the input.
func FuzzVerify(f *testing.F) {
	k := newKeys(f)
	v := verifier(f, auth.Config{KeyFiles: []string{k.secretF, k.rsaPEM}})
	f.Add(sign(f, jwt.SigningMethodHS256, k.secret, claims(nil), nil))
	f.Add(sign(f, jwt.SigningMethodRS256, k.rsa, claims(map[string]any{"tenant_id": []any{1, 2}}), nil))
	f.Add("a.b.c")
	f.Add("eyJhbGciOiJub25lIn0.eyJ0ZW5hbnRfaWQiOiIxIn0.")
	f.Fuzz(func(t *testing.T, token string) {
		_, err := v.Verify(token)
		if err == nil {
			return
		}
		var ae *auth.Error
		if !errors.As(err, &ae) || (ae.Code != "28P01" && ae.Code != "28000") {
			t.Fatalf("error %T %v", err, err)
		}
		if len(token) >= 12 && strings.Contains(ae.Error(), token) {
			t.Fatalf("error repeats the token")
		}
	})
}
