package main

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tenantproxy/tenantproxy/auth"
)

// TestTokenCommand: tenantproxy token mints what the verifier reads back:
// an issuer, a role (without a tenant for the unscoped role) and scopes.
func TestTokenCommand(t *testing.T) {
	dir := t.TempDir()
	key := filepath.Join(dir, "hmac.key")
	if err := os.WriteFile(key, []byte("cli-test-secret-0123456789abcdefghij\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	v, err := auth.NewVerifier(auth.Config{KeyFiles: []string{key}, UnscopedRole: "support"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		args    []string
		check   func(*auth.Identity) bool
		refusal string
	}{
		{"issuer and read scope", []string{"--tenant", "42", "--issuer", "https://idp.test", "--scope", "read"},
			func(id *auth.Identity) bool {
				return id.Issuer == "https://idp.test" && id.ReadOnly && id.Tenants[0] == "42"
			}, ""},
		{"several scopes", []string{"--tenant", "42", "--scope", "read write", "--scope", "admin"},
			func(id *auth.Identity) bool { return !id.ReadOnly }, ""},
		{"no scopes", []string{"--tenant", "42", "--scope", ""}, func(id *auth.Identity) bool { return id.ReadOnly }, ""},
		{"unscoped role", []string{"--role", "support"}, func(id *auth.Identity) bool { return id.Unscoped && len(id.Tenants) == 0 }, ""},
		{"neither tenant nor role", []string{"--issuer", "x"}, nil, "--tenant is required"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := runCLI(t, append([]string{"token", "--secret-file", key}, tc.args...)...)
			if tc.refusal != "" {
				if err == nil || !strings.Contains(err.Error(), tc.refusal) {
					t.Fatalf("error %v, want %q", err, tc.refusal)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			id, err := v.Verify(strings.TrimSpace(out))
			if err != nil {
				t.Fatal(err)
			}
			if !tc.check(id) {
				t.Errorf("identity %+v", id)
			}
		})
	}
}

// TestTokenCommandPrivateKey: --key-file signs with a PEM private key
// (EdDSA for Ed25519) that the proxy verifies with the public key; exactly
// one of --secret-file and --key-file is required.
func TestTokenCommandPrivateKey(t *testing.T) {
	dir := t.TempDir()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	privDER, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	pubDER, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	keyFile, pubFile := filepath.Join(dir, "idp.key"), filepath.Join(dir, "idp.pub")
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: privDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(pubFile, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	v, err := auth.NewVerifier(auth.Config{KeyFiles: []string{pubFile}})
	if err != nil {
		t.Fatal(err)
	}
	out, err := runCLI(t, "token", "--key-file", keyFile, "--kid", "k1", "--tenant", "7")
	if err != nil {
		t.Fatal(err)
	}
	id, err := v.Verify(strings.TrimSpace(out))
	if err != nil || id.Tenants[0] != "7" {
		t.Fatalf("identity %+v, %v", id, err)
	}
	for _, args := range [][]string{
		{"token", "--tenant", "7"},
		{"token", "--tenant", "7", "--key-file", keyFile, "--secret-file", keyFile},
	} {
		if _, err := runCLI(t, args...); err == nil || !strings.Contains(err.Error(), "give one of --secret-file") {
			t.Errorf("%v: error %v", args, err)
		}
	}
	if _, err := runCLI(t, "token", "--tenant", "7", "--key-file", pubFile); err == nil || !strings.Contains(err.Error(), "not a private key") {
		t.Errorf("public key as --key-file: error %v", err)
	}
}

// TestServeTokenFlagsAreChecked: --issuers excludes --jwt-key and
// --jwt-issuer, and a bad issuers file stops serve before it connects.
func TestServeTokenFlagsAreChecked(t *testing.T) {
	dir := t.TempDir()
	key := filepath.Join(dir, "hmac.key")
	issuers := filepath.Join(dir, "issuers.yaml")
	if err := os.WriteFile(key, []byte("cli-test-secret-0123456789abcdefghij\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(issuers, []byte("issuers:\n  - issuer: https://idp.test\n    keys: [hmac.key]\n    tenants: [acme]\n    unscoped: true\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	up := "postgres://tp@127.0.0.1:1/db"
	for _, tc := range []struct {
		args []string
		says string
	}{
		{[]string{"--issuers", issuers, "--jwt-key", key}, "give --issuers or --jwt-key/--jwt-issuer, not both"},
		{[]string{"--issuers", issuers, "--jwt-issuer", "https://idp.test"}, "not both"},
		{[]string{}, "--jwt-key"},
		{[]string{"--issuers", issuers}, "unscoped: true but no unscoped role"},
		{[]string{"--jwt-key", key, "--write-scope", " "}, "--write-scope is empty"},
		{[]string{"--jwt-key", key, "--write-scope", "a b"}, "holds whitespace"},
		{[]string{"--jwt-key", key, "--max-unauthenticated-conn", "0"}, "--max-unauthenticated-conn must be at least 1"},
		{[]string{"--jwt-key", key, "--pool-tenant-share", "-1"}, "--pool-tenant-share must be 0"},
	} {
		_, err := runCLI(t, append([]string{"serve", "--upstream", up}, tc.args...)...)
		if err == nil || !strings.Contains(err.Error(), tc.says) {
			t.Errorf("serve %s: error %v, want %q", strings.Join(tc.args, " "), err, tc.says)
		}
	}
}
