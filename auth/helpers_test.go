package auth_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/tenantproxy/tenantproxy/auth"
)

// now is the fixed clock every test verifier uses.
var now = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// testSecret is the HMAC secret of the secret key file.
var testSecret = []byte("0123456789abcdef0123456789abcdef-test")

// signers holds one private key per supported kind, generated once.
type signers struct {
	rsa     *rsa.PrivateKey
	rsa2    *rsa.PrivateKey // signs JWKS key "rsa-2"
	p256    *ecdsa.PrivateKey
	p384    *ecdsa.PrivateKey
	p521    *ecdsa.PrivateKey
	ed      ed25519.PrivateKey
	jwksEnc *rsa.PrivateKey // published with use "enc"
}

var (
	keysOnce sync.Once
	theKeys  signers
)

func testKeys(t testing.TB) *signers {
	t.Helper()
	keysOnce.Do(func() {
		must := func(err error) {
			if err != nil {
				panic(err)
			}
		}
		var err error
		theKeys.rsa, err = rsa.GenerateKey(rand.Reader, 2048)
		must(err)
		theKeys.rsa2, err = rsa.GenerateKey(rand.Reader, 2048)
		must(err)
		theKeys.jwksEnc, err = rsa.GenerateKey(rand.Reader, 2048)
		must(err)
		theKeys.p256, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		must(err)
		theKeys.p384, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
		must(err)
		theKeys.p521, err = ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
		must(err)
		_, theKeys.ed, err = ed25519.GenerateKey(rand.Reader)
		must(err)
	})
	return &theKeys
}

// writeFile writes data into the test's temp dir and returns the path.
func writeFile(t testing.TB, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func pkixPEM(t testing.TB, pub crypto.PublicKey) []byte {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

func certPEM(t testing.TB, priv crypto.Signer) []byte {
	t.Helper()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "issuer.test"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, priv.Public(), priv)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// jwkOf describes a public key as a JWK map.
func jwkOf(t testing.TB, pub crypto.PublicKey, kid string) map[string]any {
	t.Helper()
	switch p := pub.(type) {
	case *rsa.PublicKey:
		return map[string]any{"kty": "RSA", "kid": kid, "n": b64(p.N.Bytes()), "e": b64(big.NewInt(int64(p.E)).Bytes())}
	case *ecdsa.PublicKey:
		raw, err := p.Bytes()
		if err != nil {
			t.Fatal(err)
		}
		size := (len(raw) - 1) / 2
		return map[string]any{"kty": "EC", "kid": kid, "crv": p.Curve.Params().Name, "x": b64(raw[1 : 1+size]), "y": b64(raw[1+size:])}
	case ed25519.PublicKey:
		return map[string]any{"kty": "OKP", "kid": kid, "crv": "Ed25519", "x": b64(p)}
	case []byte:
		return map[string]any{"kty": "oct", "kid": kid, "k": b64(p)}
	}
	t.Fatalf("no JWK for %T", pub)
	return nil
}

func jwksJSON(t testing.TB, keys ...map[string]any) []byte {
	t.Helper()
	b, err := json.Marshal(map[string]any{"keys": keys})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// keyFiles writes one file per key kind and returns their paths by name.
func keyFiles(t testing.TB) map[string]string {
	t.Helper()
	k := testKeys(t)
	pinned := jwkOf(t, &k.rsa2.PublicKey, "rsa-2")
	pinned["alg"] = "RS256"
	pinned["use"] = "sig"
	enc := jwkOf(t, &k.jwksEnc.PublicKey, "rsa-enc")
	enc["use"] = "enc"
	return map[string]string{
		"rsa":      writeFile(t, "rsa.pem", pkixPEM(t, &k.rsa.PublicKey)),
		"rsa2":     writeFile(t, "rsa2.pem", pkixPEM(t, &k.rsa2.PublicKey)),
		"rsa-pkcs": writeFile(t, "rsa-pkcs1.pem", pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: x509.MarshalPKCS1PublicKey(&k.rsa.PublicKey)})),
		"rsa-cert": writeFile(t, "rsa-cert.pem", certPEM(t, k.rsa)),
		"p256":     writeFile(t, "p256.pem", pkixPEM(t, &k.p256.PublicKey)),
		"p384":     writeFile(t, "p384.pem", pkixPEM(t, &k.p384.PublicKey)),
		"p521":     writeFile(t, "p521.pem", pkixPEM(t, &k.p521.PublicKey)),
		"ed":       writeFile(t, "ed.pem", pkixPEM(t, k.ed.Public())),
		"ed-cert":  writeFile(t, "ed-cert.pem", certPEM(t, k.ed)),
		"hmac":     writeFile(t, "hmac.key", append(append([]byte{}, testSecret...), '\n')),
		"jwks": writeFile(t, "jwks.json", jwksJSON(t,
			jwkOf(t, &k.p256.PublicKey, "ec-1"),
			pinned,
			jwkOf(t, k.ed.Public(), "ed-1"),
			jwkOf(t, []byte("jwks-oct-secret-0123456789abcdef!"), "oct-1"),
			enc,
		)),
	}
}

// newVerifier builds a verifier over the named key files with the fixed
// clock; edit adjusts the config first.
func newVerifier(t testing.TB, files map[string]string, names []string, edit func(*auth.Config)) *auth.Verifier {
	t.Helper()
	cfg := auth.Config{Now: func() time.Time { return now }}
	for _, n := range names {
		cfg.KeyFiles = append(cfg.KeyFiles, files[n])
	}
	if edit != nil {
		edit(&cfg)
	}
	v, err := auth.NewVerifier(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// claims returns valid claims for tenant "42", changed by the pairs given
// (a nil value deletes the claim).
func claims(pairs ...any) jwt.MapClaims {
	c := jwt.MapClaims{
		"sub":       "user-1",
		"iss":       "https://issuer.test",
		"tenant_id": "42",
		"iat":       now.Add(-time.Minute).Unix(),
		"exp":       now.Add(time.Hour).Unix(),
	}
	for i := 0; i < len(pairs); i += 2 {
		name := pairs[i].(string)
		if pairs[i+1] == nil {
			delete(c, name)
		} else {
			c[name] = pairs[i+1]
		}
	}
	return c
}

// sign signs claims with method and key, adding the header fields given.
func sign(t testing.TB, method jwt.SigningMethod, key any, c jwt.MapClaims, header ...any) string {
	t.Helper()
	tok := jwt.NewWithClaims(method, c)
	for i := 0; i < len(header); i += 2 {
		tok.Header[header[i].(string)] = header[i+1]
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// rawToken builds a token from literal header and payload JSON, signed with
// HS256 and secret.
func rawToken(t testing.TB, header, payload string, secret []byte) string {
	t.Helper()
	text := b64([]byte(header)) + "." + b64([]byte(payload))
	sig, err := jwt.SigningMethodHS256.Sign(text, secret)
	if err != nil {
		t.Fatal(err)
	}
	return text + "." + b64(sig)
}

// authError asserts err is an *auth.Error and returns it.
func authError(t testing.TB, err error) *auth.Error {
	t.Helper()
	var e *auth.Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v (%T) is not an *auth.Error", err, err)
	}
	return e
}

// echoes reports whether msg contains the token or a recognisable piece.
func echoes(msg, token string) bool {
	if token == "" {
		return false
	}
	if strings.Contains(msg, token) {
		return true
	}
	for _, part := range strings.Split(token, ".") {
		if len(part) >= 12 && strings.Contains(msg, part) {
			return true
		}
	}
	return len(token) > 20 && strings.Contains(msg, token[:20])
}
