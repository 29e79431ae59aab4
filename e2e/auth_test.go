package e2e_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/jackc/pgx/v5"
)

// Tokens that are expired, forged, unsigned, from another issuer or without a
// tenant are refused at startup with the right SQLSTATE, and the message never
// echoes the token.
func TestBadTokensAreRefused(t *testing.T) {
	e := newEnv(t, envOptions{extraArgs: []string{"--jwt-issuer", "https://issuer.test"}})
	now := time.Now()
	sign := func(method jwt.SigningMethod, key any, claims jwt.MapClaims) string {
		tok, err := jwt.NewWithClaims(method, claims).SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	good := jwt.MapClaims{"sub": "u", "iss": "https://issuer.test", "tenant_id": "1", "exp": now.Add(time.Hour).Unix()}
	with := func(k string, v any) jwt.MapClaims {
		c := jwt.MapClaims{}
		for key, val := range good {
			c[key] = val
		}
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
		return c
	}
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	unsigned, err := jwt.NewWithClaims(jwt.SigningMethodNone, good).SignedString(jwt.UnsafeAllowNoneSignatureType)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, token, code, says string
	}{
		{"expired", sign(jwt.SigningMethodHS256, e.secret, with("exp", now.Add(-time.Hour).Unix())), "28P01", "expired"},
		{"forged signature", sign(jwt.SigningMethodHS256, []byte("another-secret-of-at-least-32-bytes!!"), good), "28P01", "signature"},
		{"signed with an unknown RSA key", sign(jwt.SigningMethodRS256, rsaKey, good), "28P01", ""},
		{"alg none", unsigned, "28P01", ""},
		{"wrong issuer", sign(jwt.SigningMethodHS256, e.secret, with("iss", "https://evil.test")), "28P01", "issuer"},
		{"no tenant claim", sign(jwt.SigningMethodHS256, e.secret, with("tenant_id", nil)), "28000", "tenant_id"},
		{"no expiry", sign(jwt.SigningMethodHS256, e.secret, with("exp", nil)), "28P01", ""},
		{"not a token", "hunter2", "28P01", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			conn, err := pgx.Connect(ctx, e.connString(c.token))
			if err == nil {
				conn.Close(ctx)
				t.Fatal("connection succeeded")
			}
			pgErr := wantState(t, err, c.code)
			if !strings.Contains(pgErr.Message, c.says) {
				t.Errorf("message %q should say %q", pgErr.Message, c.says)
			}
			if strings.Contains(pgErr.Message, c.token) || (len(c.token) > 20 && strings.Contains(pgErr.Message, c.token[:20])) {
				t.Errorf("message echoes the token: %q", pgErr.Message)
			}
		})
	}
	// The right token still works.
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, e.connString(sign(jwt.SigningMethodHS256, e.secret, good)))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	wantRows(t, column(t, conn, "SELECT count(*) FROM customers"), "2")
}

// A token covering several tenants sees all of them and nothing else.
func TestTokenWithSeveralTenants(t *testing.T) {
	e := newEnv(t)
	both := e.connect(t, "1", "2")
	wantRows(t, column(t, both, "SELECT id FROM customers ORDER BY id"), "1", "2", "3", "4")
	_, err := both.Exec(context.Background(), "INSERT INTO orders (customer_id, total) VALUES (1, 1)")
	wantState(t, err, "42501") // which tenant? the client must say
	if _, err := both.Exec(context.Background(), "INSERT INTO orders (tenant_id, customer_id, total) VALUES (2, 3, 1)"); err != nil {
		t.Fatal(err)
	}
}
