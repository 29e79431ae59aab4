package auth

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
)

// MinSecretBytes is the shortest HMAC secret auth accepts, for verifying and
// for minting.
const MinSecretBytes = 32

// minRSABits is the smallest RSA modulus accepted.
const minRSABits = 2048

// key is one verification key with the algorithms it may verify.
type key struct {
	kid   string   // from a JWKS; empty for PEM files and secrets
	algs  []string // the only algorithms this key verifies
	pub   any      // *rsa.PublicKey, *ecdsa.PublicKey, ed25519.PublicKey or []byte (HMAC)
	label string   // where the key came from, for messages
}

func (k *key) accepts(alg string) bool { return slices.Contains(k.algs, alg) }

var (
	rsaAlgs  = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"}
	hmacAlgs = []string{"HS256", "HS384", "HS512"}
	edAlgs   = []string{"EdDSA"}
)

// loadKeyFile reads one key file (--jwt-key, or an issuer's keys: in the
// issuers file): PEM (public keys or certificates), a JWKS document (or a
// single JWK), or else an HMAC secret. Its errors start with the path.
func loadKeyFile(path string) ([]*key, error) {
	data, err := os.ReadFile(path)
	if pe, ok := err.(*os.PathError); ok {
		return nil, fmt.Errorf("%s: %w", path, pe.Err)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	var keys []*key
	trimmed := bytes.TrimSpace(data)
	switch {
	case bytes.Contains(data, []byte("-----BEGIN")):
		keys, err = parsePEM(data, path)
	case bytes.HasPrefix(trimmed, []byte("{")):
		keys, err = parseJWKS(trimmed, path)
	default:
		var secret []byte
		secret, err = parseSecret(data)
		if err == nil {
			keys = []*key{{algs: hmacAlgs, pub: secret, label: path + " (HMAC secret)"}}
		}
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return keys, nil
}

// ReadSecretFile reads an HMAC secret the way NewVerifier does: the file's
// bytes without trailing CR/LF, at least MinSecretBytes long. Files that hold
// PEM or JSON are refused, so a public key can never become an HMAC secret.
func ReadSecretFile(path string) ([]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if bytes.Contains(data, []byte("-----BEGIN")) || bytes.HasPrefix(bytes.TrimSpace(data), []byte("{")) {
		return nil, fmt.Errorf("%s holds a PEM key or JSON, not an HMAC secret", path)
	}
	secret, err := parseSecret(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return secret, nil
}

func parseSecret(data []byte) ([]byte, error) {
	secret := bytes.TrimRight(data, "\r\n")
	if len(secret) == 0 {
		return nil, errors.New("file is empty; put a PEM public key, a JWKS document or an HMAC secret of at least 32 bytes in it")
	}
	if what := notASecret(data); what != "" {
		return nil, fmt.Errorf("holds %s, which anyone may know and so cannot be an HMAC secret; give a public key as PEM (PUBLIC KEY or CERTIFICATE) and a secret as random bytes", what)
	}
	if len(secret) < MinSecretBytes {
		return nil, fmt.Errorf("HMAC secret is %d bytes, shorter than %d; use a longer random secret (e.g. openssl rand -hex 32)", len(secret), MinSecretBytes)
	}
	return bytes.Clone(secret), nil
}

// notASecret says what data is when it is public material that must never
// become an HMAC key: with it as the secret, anyone could sign tokens.
func notASecret(data []byte) string {
	trimmed := bytes.TrimSpace(data)
	for _, prefix := range []string{"ssh-", "ecdsa-sha2-", "sk-ssh-", "sk-ecdsa-", "http://", "https://"} {
		if bytes.HasPrefix(trimmed, []byte(prefix)) {
			return fmt.Sprintf("text starting %q (an SSH public key or a URL)", prefix)
		}
	}
	if isDERPublic(data) || isDERPublic(trimmed) {
		return "a DER-encoded public key or certificate"
	}
	compact := bytes.Join(bytes.Fields(trimmed), nil)
	if der, err := base64.StdEncoding.DecodeString(string(compact)); err == nil && isDERPublic(der) {
		return "a base64 public key or certificate without its PEM BEGIN/END lines"
	}
	return ""
}

func isDERPublic(der []byte) bool {
	if _, err := x509.ParsePKIXPublicKey(der); err == nil {
		return true
	}
	if _, err := x509.ParsePKCS1PublicKey(der); err == nil {
		return true
	}
	_, err := x509.ParseCertificate(der)
	return err == nil
}

// parsePEM reads every PEM block of a file; each must be a public key or a
// certificate.
func parsePEM(data []byte, path string) ([]*key, error) {
	var keys []*key
	rest := data
	for n := 1; ; n++ {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		label := fmt.Sprintf("%s (PEM block %d, %s)", path, n, block.Type)
		var pub any
		var err error
		switch block.Type {
		case "PUBLIC KEY":
			pub, err = x509.ParsePKIXPublicKey(block.Bytes)
		case "RSA PUBLIC KEY":
			pub, err = x509.ParsePKCS1PublicKey(block.Bytes)
		case "CERTIFICATE":
			var cert *x509.Certificate
			if cert, err = x509.ParseCertificate(block.Bytes); err == nil {
				pub = cert.PublicKey
			}
		default:
			if strings.Contains(block.Type, "PRIVATE KEY") {
				return nil, fmt.Errorf("PEM block %d is a %s; give the proxy only the public key (openssl pkey -in KEY -pubout)", n, block.Type)
			}
			return nil, fmt.Errorf("PEM block %d is a %q; expected PUBLIC KEY, RSA PUBLIC KEY or CERTIFICATE", n, block.Type)
		}
		if err != nil {
			return nil, fmt.Errorf("PEM block %d (%s): %w", n, block.Type, err)
		}
		k, err := publicKey(pub, label)
		if err != nil {
			return nil, fmt.Errorf("PEM block %d (%s): %w", n, block.Type, err)
		}
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		return nil, errors.New("no PEM block could be read; check the BEGIN/END lines")
	}
	if len(bytes.TrimSpace(rest)) > 0 {
		return nil, errors.New("text after the last PEM block could not be read as PEM")
	}
	return keys, nil
}

// publicKey checks a parsed public key and gives it its algorithms.
func publicKey(pub any, label string) (*key, error) {
	switch p := pub.(type) {
	case *rsa.PublicKey:
		if p.N.BitLen() < minRSABits {
			return nil, fmt.Errorf("RSA key has %d bits; at least %d are required", p.N.BitLen(), minRSABits)
		}
		return &key{algs: rsaAlgs, pub: p, label: label}, nil
	case *ecdsa.PublicKey:
		alg, err := ecdsaAlg(p.Curve)
		if err != nil {
			return nil, err
		}
		return &key{algs: []string{alg}, pub: p, label: label}, nil
	case ed25519.PublicKey:
		return &key{algs: edAlgs, pub: p, label: label}, nil
	default:
		return nil, fmt.Errorf("unsupported key type %T; use RSA, ECDSA (P-256, P-384, P-521) or Ed25519", pub)
	}
}

func ecdsaAlg(c elliptic.Curve) (string, error) {
	switch c {
	case elliptic.P256():
		return "ES256", nil
	case elliptic.P384():
		return "ES384", nil
	case elliptic.P521():
		return "ES512", nil
	}
	return "", fmt.Errorf("unsupported ECDSA curve %s; use P-256, P-384 or P-521", c.Params().Name)
}
