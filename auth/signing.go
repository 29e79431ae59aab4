package auth

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/golang-jwt/jwt/v5"
)

// SigningKey signs development tokens (Mint): an HMAC secret (HS256) or a
// private key (RSA: RS256; ECDSA P-256, P-384, P-521: ES256, ES384, ES512;
// Ed25519: EdDSA). The zero value signs nothing.
type SigningKey struct {
	method jwt.SigningMethod
	key    any
}

// Algorithm is the JWT alg the key signs with.
func (k SigningKey) Algorithm() string {
	if k.method == nil {
		return ""
	}
	return k.method.Alg()
}

// HMACSigningKey signs HS256 with secret, which must be at least
// MinSecretBytes long, as NewVerifier requires.
func HMACSigningKey(secret []byte) (SigningKey, error) {
	if len(secret) < MinSecretBytes {
		return SigningKey{}, fmt.Errorf("HMAC secret is %d bytes, shorter than %d; use a longer random secret (e.g. openssl rand -hex 32)", len(secret), MinSecretBytes)
	}
	return SigningKey{method: jwt.SigningMethodHS256, key: secret}, nil
}

// ReadSigningKeyFile reads a PEM private key (PKCS #8, PKCS #1 RSA or SEC 1
// EC, unencrypted) from path; the proxy verifies its tokens with the
// matching public key (openssl pkey -in KEY -pubout) or a JWKS holding it.
// The key must be one the proxy accepts (RSA of at least 2048 bits).
func ReadSigningKeyFile(path string) (SigningKey, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return SigningKey{}, err
	}
	var block *pem.Block
	for rest := data; ; {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			if len(bytes.TrimSpace(rest)) > 0 && block != nil {
				return SigningKey{}, errors.New("text after the last PEM block could not be read as PEM")
			}
			break
		}
		if b.Type == "EC PARAMETERS" { // openssl ecparam -genkey writes them first
			continue
		}
		if block != nil {
			return SigningKey{}, errors.New("more than one key in the file; give one private key")
		}
		block = b
	}
	if block == nil {
		return SigningKey{}, errors.New("no PEM block; give a private key such as openssl genpkey -algorithm ed25519 writes")
	}
	var priv any
	switch block.Type {
	case "PRIVATE KEY":
		priv, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case "RSA PRIVATE KEY":
		priv, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		priv, err = x509.ParseECPrivateKey(block.Bytes)
	case "ENCRYPTED PRIVATE KEY":
		return SigningKey{}, errors.New("the private key is encrypted; decrypt it first (openssl pkey -in KEY -out PLAIN)")
	default:
		if !strings.Contains(block.Type, "PRIVATE KEY") {
			return SigningKey{}, fmt.Errorf("PEM block is a %q, not a private key; tokens are signed with the private key, the proxy gets the public one", block.Type)
		}
		return SigningKey{}, fmt.Errorf("PEM block %q is not supported; use PKCS #8 (openssl pkey -in KEY)", block.Type)
	}
	if err != nil {
		return SigningKey{}, fmt.Errorf("%s: %w", block.Type, err)
	}
	return privateSigningKey(priv)
}

// privateSigningKey picks the algorithm for a parsed private key, checked
// as the verifier checks its public half.
func privateSigningKey(priv any) (SigningKey, error) {
	switch p := priv.(type) {
	case *rsa.PrivateKey:
		if _, err := publicKey(&p.PublicKey, ""); err != nil {
			return SigningKey{}, err
		}
		return SigningKey{method: jwt.SigningMethodRS256, key: p}, nil
	case *ecdsa.PrivateKey:
		alg, err := ecdsaAlg(p.Curve)
		if err != nil {
			return SigningKey{}, err
		}
		return SigningKey{method: jwt.GetSigningMethod(alg), key: p}, nil
	case ed25519.PrivateKey:
		return SigningKey{method: jwt.SigningMethodEdDSA, key: p}, nil
	}
	return SigningKey{}, fmt.Errorf("unsupported private key type %T; use RSA, ECDSA (P-256, P-384, P-521) or Ed25519", priv)
}
