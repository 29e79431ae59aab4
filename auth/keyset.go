package auth

import (
	"errors"
	"slices"

	"github.com/golang-jwt/jwt/v5"
)

// keySet is the keys one source of tokens is verified with, indexed by kid,
// and the algorithms they accept. It is never changed once built.
type keySet struct {
	keys    []*key
	byKid   map[string][]*key
	noKid   []*key
	methods []string
}

// algOrder lists every algorithm auth can accept, in a stable order.
var algOrder = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA", "HS256", "HS384", "HS512"}

func newKeySet(keys []*key) *keySet {
	s := &keySet{keys: keys, byKid: map[string][]*key{}}
	for _, k := range keys {
		if k.kid == "" {
			s.noKid = append(s.noKid, k)
		} else {
			s.byKid[k.kid] = append(s.byKid[k.kid], k)
		}
	}
	s.methods = methodsOf(keys)
	return s
}

// methodsOf lists the algorithms some key accepts, in algOrder.
func methodsOf(keys []*key) []string {
	var methods []string
	for _, alg := range algOrder {
		if slices.ContainsFunc(keys, func(k *key) bool { return k.accepts(alg) }) {
			methods = append(methods, alg)
		}
	}
	return methods
}

// hasKid reports whether some key of the set carries kid.
func (s *keySet) hasKid(kid string) bool {
	_, ok := s.byKid[kid]
	return ok
}

// join returns a set holding the keys of both (either may be nil).
func (s *keySet) join(o *keySet) *keySet {
	switch {
	case s == nil:
		return o
	case o == nil:
		return s
	}
	return newKeySet(append(slices.Clip(s.keys), o.keys...))
}

// Keyfunc failures, told apart in Verify.
var (
	errCrit       = errors.New("crit header")
	errBadKid     = errors.New("kid is not a string")
	errUnknownKid = errors.New("unknown kid")
	errNoKeyAlg   = errors.New("no key for alg")
)

// keyfunc picks the candidate keys for a token. A kid is only ever a map
// key; jku, x5u, jwk and x5c headers are never looked at.
func (s *keySet) keyfunc(t *jwt.Token) (any, error) {
	if _, ok := t.Header["crit"]; ok {
		return nil, errCrit
	}
	candidates := s.keys
	if raw, ok := t.Header["kid"]; ok {
		kid, ok := raw.(string)
		if !ok {
			return nil, errBadKid
		}
		if ks, ok := s.byKid[kid]; ok {
			candidates = ks
		} else if candidates = s.noKid; len(candidates) == 0 {
			return nil, errUnknownKid
		}
	}
	alg := t.Method.Alg()
	var set jwt.VerificationKeySet
	for _, k := range candidates {
		if k.accepts(alg) {
			set.Keys = append(set.Keys, k.pub)
		}
	}
	if len(set.Keys) == 0 {
		return nil, errNoKeyAlg
	}
	return set, nil
}
