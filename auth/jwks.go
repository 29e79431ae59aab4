package auth

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"strings"
)

// jwk is the subset of RFC 7517/7518 members auth reads.
type jwk struct {
	Kty    string   `json:"kty"`
	Kid    string   `json:"kid"`
	Use    string   `json:"use"`
	Alg    string   `json:"alg"`
	KeyOps []string `json:"key_ops"`
	N      string   `json:"n"`
	E      string   `json:"e"`
	Crv    string   `json:"crv"`
	X      string   `json:"x"`
	Y      string   `json:"y"`
	K      string   `json:"k"`
	D      string   `json:"d"`
}

// parseJWKS reads a JWKS document ({"keys": [...]}) or a single JWK.
// Encryption keys (use "enc", or key_ops without "verify") are skipped; a
// key's alg, when present, is the only algorithm it verifies.
func parseJWKS(data []byte, path string) ([]*key, error) {
	var doc struct {
		Keys *[]json.RawMessage `json:"keys"`
		Kty  string             `json:"kty"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("not a valid JWKS JSON document: %w", err)
	}
	var raws []json.RawMessage
	switch {
	case doc.Keys != nil:
		raws = *doc.Keys
	case doc.Kty != "":
		raws = []json.RawMessage{data}
	default:
		return nil, errors.New(`JSON has no "keys" array; expected a JWKS document like {"keys": [...]}`)
	}
	var keys []*key
	for i, raw := range raws {
		var j jwk
		if err := json.Unmarshal(raw, &j); err != nil {
			return nil, fmt.Errorf("JWKS key %d: %w", i, err)
		}
		name := fmt.Sprintf("JWKS key %d", i)
		if j.Kid != "" {
			name += fmt.Sprintf(" (kid %q)", j.Kid)
		}
		if j.Use == "enc" || (j.KeyOps != nil && !slices.Contains(j.KeyOps, "verify")) {
			continue
		}
		if j.Use != "" && j.Use != "sig" {
			return nil, fmt.Errorf("%s: use %q is neither \"sig\" nor \"enc\"", name, j.Use)
		}
		k, err := j.key()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		if j.Alg != "" {
			if !k.accepts(j.Alg) {
				return nil, fmt.Errorf("%s: alg %q cannot be used with a key of type %s; expected one of %s", name, j.Alg, j.Kty, strings.Join(k.algs, ", "))
			}
			k.algs = []string{j.Alg}
		}
		k.kid, k.label = j.Kid, path+" "+name
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		return nil, errors.New("JWKS has no signature verification keys")
	}
	return keys, nil
}

// key builds the verification key a JWK describes.
func (j *jwk) key() (*key, error) {
	if j.D != "" && j.Kty != "oct" {
		return nil, errors.New(`holds private key material ("d"); give the proxy only public keys`)
	}
	switch j.Kty {
	case "RSA":
		n, err := b64Int(j.N, "n")
		if err != nil {
			return nil, err
		}
		e, err := b64Int(j.E, "e")
		if err != nil {
			return nil, err
		}
		if !e.IsInt64() || e.Int64() < 3 || e.Int64() > 1<<31-1 || e.Bit(0) == 0 {
			return nil, errors.New(`RSA exponent "e" is not a usable public exponent`)
		}
		return publicKey(&rsa.PublicKey{N: n, E: int(e.Int64())}, "")
	case "EC":
		var curve elliptic.Curve
		switch j.Crv {
		case "P-256":
			curve = elliptic.P256()
		case "P-384":
			curve = elliptic.P384()
		case "P-521":
			curve = elliptic.P521()
		default:
			return nil, fmt.Errorf("unsupported EC curve %q; use P-256, P-384 or P-521", j.Crv)
		}
		size := (curve.Params().BitSize + 7) / 8
		x, err := b64Field(j.X, "x", size)
		if err != nil {
			return nil, err
		}
		y, err := b64Field(j.Y, "y", size)
		if err != nil {
			return nil, err
		}
		pub, err := ecdsa.ParseUncompressedPublicKey(curve, append(append([]byte{4}, x...), y...))
		if err != nil {
			return nil, fmt.Errorf("EC point is not on curve %s", j.Crv)
		}
		return publicKey(pub, "")
	case "OKP":
		if j.Crv != "Ed25519" {
			return nil, fmt.Errorf("unsupported OKP curve %q; only Ed25519 signs", j.Crv)
		}
		x, err := b64Bytes(j.X, "x")
		if err != nil {
			return nil, err
		}
		if len(x) != ed25519.PublicKeySize {
			return nil, fmt.Errorf(`Ed25519 "x" is %d bytes, not %d`, len(x), ed25519.PublicKeySize)
		}
		return publicKey(ed25519.PublicKey(x), "")
	case "oct":
		k, err := b64Bytes(j.K, "k")
		if err != nil {
			return nil, err
		}
		if len(k) < MinSecretBytes {
			return nil, fmt.Errorf("HMAC key is %d bytes, shorter than %d", len(k), MinSecretBytes)
		}
		return &key{algs: hmacAlgs, pub: k}, nil
	case "":
		return nil, errors.New(`has no "kty"`)
	default:
		return nil, fmt.Errorf("unsupported key type %q; use RSA, EC, OKP (Ed25519) or oct", j.Kty)
	}
}

// b64Bytes decodes a base64url member, with or without padding.
func b64Bytes(s, member string) ([]byte, error) {
	if s == "" {
		return nil, fmt.Errorf("member %q is missing", member)
	}
	b, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
	if err != nil {
		return nil, fmt.Errorf("member %q is not base64url", member)
	}
	return b, nil
}

func b64Int(s, member string) (*big.Int, error) {
	b, err := b64Bytes(s, member)
	if err != nil {
		return nil, err
	}
	return new(big.Int).SetBytes(b), nil
}

// b64Field decodes a fixed-size field element, left-padding short encodings.
func b64Field(s, member string, size int) ([]byte, error) {
	b, err := b64Bytes(s, member)
	if err != nil {
		return nil, err
	}
	if len(b) > size {
		return nil, fmt.Errorf("member %q is %d bytes, longer than the curve's %d", member, len(b), size)
	}
	return append(make([]byte, size-len(b)), b...), nil
}
