package auth_test

import (
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"strings"
	"testing"

	"github.com/golang-jwt/jwt/v5"
	"github.com/tenantproxy/tenantproxy/auth"
)

// privatePEM encodes a private key in the given PEM form.
func privatePEM(t testing.TB, priv any, form string) []byte {
	t.Helper()
	var der []byte
	var err error
	switch form {
	case "PRIVATE KEY":
		der, err = x509.MarshalPKCS8PrivateKey(priv)
	case "RSA PRIVATE KEY":
		der = x509.MarshalPKCS1PrivateKey(priv.(*rsa.PrivateKey))
	case "EC PRIVATE KEY":
		der, err = x509.MarshalECPrivateKey(priv.(*ecdsa.PrivateKey))
	}
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: form, Bytes: der})
}

// Tokens signed with a private key verify with its public key (PEM, or a
// JWKS picked by kid) and with the algorithm the key implies.
func TestMintWithPrivateKeys(t *testing.T) {
	k := testKeys(t)
	files := keyFiles(t)
	cases := []struct {
		name, form, verifyWith, kid, alg string
		priv                             any
	}{
		{"rsa pkcs8", "PRIVATE KEY", "rsa", "", "RS256", k.rsa},
		{"rsa pkcs1", "RSA PRIVATE KEY", "rsa", "", "RS256", k.rsa},
		{"p256 sec1", "EC PRIVATE KEY", "p256", "", "ES256", k.p256},
		{"p384 pkcs8", "PRIVATE KEY", "p384", "", "ES384", k.p384},
		{"p521 pkcs8", "PRIVATE KEY", "p521", "", "ES512", k.p521},
		{"ed25519", "PRIVATE KEY", "ed", "", "EdDSA", k.ed},
		{"jwks by kid", "PRIVATE KEY", "jwks", "ec-1", "ES256", k.p256},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			sk, err := auth.ReadSigningKeyFile(writeFile(t, "key.pem", privatePEM(t, c.priv, c.form)))
			if err != nil {
				t.Fatal(err)
			}
			if sk.Algorithm() != c.alg {
				t.Errorf("algorithm %s, want %s", sk.Algorithm(), c.alg)
			}
			tok, err := sk.Mint(auth.MintOptions{Tenants: []string{"9"}, KeyID: c.kid, Now: now})
			if err != nil {
				t.Fatal(err)
			}
			parsed, _, err := jwt.NewParser().ParseUnverified(tok, jwt.MapClaims{})
			if err != nil || parsed.Header["alg"] != c.alg || (c.kid != "" && parsed.Header["kid"] != c.kid) {
				t.Fatalf("header %v (%v)", parsed.Header, err)
			}
			id, err := newVerifier(t, files, []string{c.verifyWith}, nil).Verify(tok)
			if err != nil {
				t.Fatal(err)
			}
			if strings.Join(id.Tenants, ",") != "9" {
				t.Errorf("tenants %v", id.Tenants)
			}
			// Another key of the same kind does not verify it.
			if c.verifyWith == "rsa" {
				if _, err := newVerifier(t, files, []string{"rsa2"}, nil).Verify(tok); err == nil {
					t.Error("verified with another RSA key")
				}
			}
		})
	}
}

func TestReadSigningKeyFileRefuses(t *testing.T) {
	k := testKeys(t)
	weak, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	x25519, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		data []byte
		says string
	}{
		{"public key", pkixPEM(t, &k.rsa.PublicKey), "not a private key"},
		{"not PEM", []byte("0123456789abcdef0123456789abcdef"), "no PEM block"},
		{"encrypted", pem.EncodeToMemory(&pem.Block{Type: "ENCRYPTED PRIVATE KEY", Bytes: []byte{1}}), "encrypted"},
		{"two keys", append(privatePEM(t, k.p256, "PRIVATE KEY"), privatePEM(t, k.ed, "PRIVATE KEY")...), "more than one key"},
		{"trailing text", append(privatePEM(t, k.p256, "PRIVATE KEY"), "junk"...), "after the last PEM block"},
		{"weak rsa", privatePEM(t, weak, "PRIVATE KEY"), "at least 2048"},
		{"openssh key", pem.EncodeToMemory(&pem.Block{Type: "OPENSSH PRIVATE KEY", Bytes: []byte{1}}), "not supported; use PKCS #8"},
		{"x25519 key", privatePEM(t, x25519, "PRIVATE KEY"), "unsupported private key type"},
		{"garbage DER", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte("junk")}), "PRIVATE KEY"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := auth.ReadSigningKeyFile(writeFile(t, "key.pem", c.data))
			if err == nil || !strings.Contains(err.Error(), c.says) {
				t.Errorf("error %v should say %q", err, c.says)
			}
		})
	}
	if _, err := (auth.SigningKey{}).Mint(auth.MintOptions{Tenants: []string{"1"}}); err == nil {
		t.Error("the zero SigningKey signed a token")
	}
}

// The EC PARAMETERS block openssl ecparam -genkey writes first is skipped.
func TestReadSigningKeyFileSkipsECParameters(t *testing.T) {
	k := testKeys(t)
	params := pem.EncodeToMemory(&pem.Block{Type: "EC PARAMETERS", Bytes: []byte{6, 8, 42, 134, 72, 206, 61, 3, 1, 7}})
	sk, err := auth.ReadSigningKeyFile(writeFile(t, "ec.key", append(params, privatePEM(t, k.p256, "EC PRIVATE KEY")...)))
	if err != nil || sk.Algorithm() != "ES256" {
		t.Fatalf("%s, %v", sk.Algorithm(), err)
	}
}
