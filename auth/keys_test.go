package auth_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tenantproxy/tenantproxy/auth"
)

// NewVerifier refuses unusable key files with an error naming the file and
// the problem.
func TestKeyFilesAreChecked(t *testing.T) {
	k := testKeys(t)
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	p224, err := ecdsa.GenerateKey(elliptic.P224(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	privDER, err := x509.MarshalPKCS8PrivateKey(k.p256)
	if err != nil {
		t.Fatal(err)
	}
	offCurve := jwkOf(t, &k.p256.PublicKey, "bad")
	offCurve["y"] = offCurve["x"]
	withD := jwkOf(t, &k.p256.PublicKey, "priv")
	withD["d"] = "AAAA"
	badAlg := jwkOf(t, &k.rsa.PublicKey, "r")
	badAlg["alg"] = "ES256"
	encOnly := jwkOf(t, &k.rsa.PublicKey, "e")
	encOnly["use"] = "enc"
	wrapOnly := jwkOf(t, &k.rsa.PublicKey, "w")
	wrapOnly["key_ops"] = []string{"wrapKey"}
	cases := []struct {
		name string
		data string
		says string
	}{
		{"empty file", "", "file is empty"},
		{"newline only", "\n", "file is empty"},
		{"short HMAC secret", "too-short-secret\n", "HMAC secret is 16 bytes, shorter than 32"},
		{"private key PEM", string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: privDER})), "give the proxy only the public key"},
		{"unknown PEM block", string(pem.EncodeToMemory(&pem.Block{Type: "SECRET", Bytes: []byte{1}})), `"SECRET"`},
		{"broken PEM", "-----BEGIN PUBLIC KEY-----\nnot base64\n", "no PEM block could be read"},
		{"garbage public key", string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: []byte{1, 2, 3}})), "PEM block 1 (PUBLIC KEY)"},
		{"text after PEM", string(pkixPEM(t, &k.rsa.PublicKey)) + "junk", "text after the last PEM block"},
		{"small RSA key", string(pkixPEM(t, &small.PublicKey)), "1024 bits; at least 2048"},
		{"unsupported curve", string(pkixPEM(t, &p224.PublicKey)), "unsupported ECDSA curve P-224"},
		{"DER public key", string(derOf(t, &k.rsa.PublicKey)), "DER-encoded public key"},
		{"PEM body without its lines", b64std(derOf(t, &k.p256.PublicKey)) + "\n", "without its PEM BEGIN/END lines"},
		{"SSH public key", "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl user@host\n", "SSH public key"},
		{"JWKS URL", "https://issuer.example.com/.well-known/jwks.json\n", "or a URL"},
		{"JSON that is not JWKS", `{"hello": 1}`, `no "keys" array`},
		{"invalid JSON", `{"keys": [`, "not a valid JWKS JSON document"},
		{"empty JWKS", `{"keys": []}`, "no signature verification keys"},
		{"JWKS with only an enc key", string(jwksJSON(t, encOnly)), "no signature verification keys"},
		{"JWKS with only a wrapKey key", string(jwksJSON(t, wrapOnly)), "no signature verification keys"},
		{"JWKS unsupported kty", `{"keys":[{"kty":"XYZ"}]}`, `unsupported key type "XYZ"`},
		{"JWKS key without kty", `{"keys":[{"kid":"a"}]}`, `has no "kty"`},
		{"JWKS X25519", `{"keys":[{"kty":"OKP","crv":"X25519","x":"AAAA"}]}`, "only Ed25519"},
		{"JWKS alg that does not fit", string(jwksJSON(t, badAlg)), `alg "ES256" cannot be used with a key of type RSA`},
		{"JWKS point off the curve", string(jwksJSON(t, offCurve)), "not on curve P-256"},
		{"JWKS private key", string(jwksJSON(t, withD)), "private key material"},
		{"JWKS short oct key", string(jwksJSON(t, jwkOf(t, []byte("short"), "o"))), "HMAC key is 5 bytes"},
		{"JWKS RSA without n", `{"keys":[{"kty":"RSA","e":"AQAB"}]}`, `member "n" is missing`},
		{"JWKS RSA bad exponent", `{"keys":[{"kty":"RSA","n":"` + b64(k.rsa.N.Bytes()) + `","e":"Ag"}]}`, "not a usable public exponent"},
		{"JWKS bad base64", `{"keys":[{"kty":"OKP","crv":"Ed25519","x":"!!"}]}`, "not base64url"},
		{"JWKS unknown use", `{"keys":[{"kty":"oct","use":"other","k":"` + b64(testSecret) + `"}]}`, `use "other"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := writeFile(t, "key-file", []byte(c.data))
			_, err := auth.NewVerifier(auth.Config{KeyFiles: []string{path}})
			if err == nil {
				t.Fatal("accepted")
			}
			if !strings.Contains(err.Error(), path) {
				t.Errorf("error %q does not name the file", err)
			}
			if !strings.Contains(err.Error(), c.says) {
				t.Errorf("error %q should say %q", err, c.says)
			}
		})
	}
}

func derOf(t *testing.T, pub any) []byte {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func b64std(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

// Configuration mistakes are reported before any token arrives.
func TestConfigIsChecked(t *testing.T) {
	files := keyFiles(t)
	cases := []struct {
		name string
		cfg  auth.Config
		says string
	}{
		{"no key files", auth.Config{}, "no --jwt-key"},
		{"missing file", auth.Config{KeyFiles: []string{filepath.Join(t.TempDir(), "nope.pem")}}, "nope.pem"},
		{"negative leeway", auth.Config{KeyFiles: []string{files["hmac"]}, Leeway: -1}, "negative"},
		{"empty issuer", auth.Config{KeyFiles: []string{files["hmac"]}, Issuers: []string{""}}, "--jwt-issuer is empty"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := auth.NewVerifier(c.cfg)
			if err == nil || !strings.Contains(err.Error(), c.says) {
				t.Errorf("error %v should say %q", err, c.says)
			}
		})
	}
}

// The allowlist follows the key types configured.
func TestAlgorithmsFollowKeys(t *testing.T) {
	files := keyFiles(t)
	cases := []struct {
		files []string
		want  string
	}{
		{[]string{"rsa"}, "RS256 RS384 RS512 PS256 PS384 PS512"},
		{[]string{"p256", "p521"}, "ES256 ES512"},
		{[]string{"ed"}, "EdDSA"},
		{[]string{"hmac"}, "HS256 HS384 HS512"},
		{[]string{"jwks"}, "RS256 ES256 EdDSA HS256 HS384 HS512"},
	}
	for _, c := range cases {
		v := newVerifier(t, files, c.files, nil)
		if got := strings.Join(v.Algorithms(), " "); got != c.want {
			t.Errorf("%v: algorithms %q, want %q", c.files, got, c.want)
		}
	}
}

// ReadSecretFile reads what NewVerifier reads and refuses public keys.
func TestReadSecretFile(t *testing.T) {
	files := keyFiles(t)
	got, err := auth.ReadSecretFile(files["hmac"])
	if err != nil || string(got) != string(testSecret) {
		t.Fatalf("secret %q, err %v", got, err)
	}
	for _, name := range []string{"rsa", "jwks"} {
		if _, err := auth.ReadSecretFile(files[name]); err == nil || !strings.Contains(err.Error(), "not an HMAC secret") {
			t.Errorf("%s: %v", name, err)
		}
	}
}
