package auth

import (
	"encoding/json"
	"fmt"
	"math/big"
	"strings"
)

// MaxTenants is the largest number of tenants one token may name.
const MaxTenants = 1000

// lookupClaim finds a claim by name: first as a top-level key (names such as
// "https://example.com/tenant" contain dots), then as a dotted path through
// nested objects ("org.id").
func lookupClaim(claims map[string]any, name string) (any, bool) {
	if v, ok := claims[name]; ok {
		return v, true
	}
	if !strings.Contains(name, ".") {
		return nil, false
	}
	var cur any = claims
	for _, part := range strings.Split(name, ".") {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		if cur, ok = m[part]; !ok {
			return nil, false
		}
	}
	return cur, true
}

// tenantsFromClaims reads the tenant claim: a non-empty string or an integer
// gives one tenant, an array of them gives several (duplicates removed, order
// kept). Anything else is an *Error with CodeInvalidAuthorization.
func tenantsFromClaims(claims map[string]any, name string) ([]string, error) {
	v, ok := lookupClaim(claims, name)
	if !ok {
		return nil, badTenant("token has no %q claim; the token must name its tenant", name)
	}
	list, isList := v.([]any)
	if !isList {
		t, kind := tenantValue(v)
		if kind != "" {
			return nil, badTenant("claim %q must be a string, an integer or an array of them, not %s", name, kind)
		}
		return []string{t}, nil
	}
	switch {
	case len(list) == 0:
		return nil, badTenant("claim %q is an empty array; the token must name at least one tenant", name)
	case len(list) > MaxTenants:
		return nil, badTenant("claim %q has %d entries; at most %d are allowed", name, len(list), MaxTenants)
	}
	tenants := make([]string, 0, len(list))
	seen := make(map[string]bool, len(list))
	for i, e := range list {
		t, kind := tenantValue(e)
		if kind != "" {
			return nil, badTenant("claim %q entry %d must be a string or an integer, not %s", name, i, kind)
		}
		if !seen[t] {
			seen[t] = true
			tenants = append(tenants, t)
		}
	}
	return tenants, nil
}

// tenantValue returns one tenant value in canonical form, or a description
// of what v is when it cannot be one.
func tenantValue(v any) (tenant, bad string) {
	switch x := v.(type) {
	case string:
		switch {
		case x == "":
			return "", "an empty string"
		case strings.ContainsRune(x, 0):
			return "", "a string with a NUL character"
		}
		return x, ""
	case json.Number:
		s := x.String()
		if strings.ContainsAny(s, ".eE") {
			return "", "a float"
		}
		n, ok := new(big.Int).SetString(s, 10)
		if !ok {
			return "", "a malformed number"
		}
		return n.String(), ""
	case float64:
		return "", "a float"
	case nil:
		return "", "null"
	case bool:
		return "", "a boolean"
	case map[string]any:
		return "", "an object"
	case []any:
		return "", "an array"
	}
	return "", fmt.Sprintf("a %T", v)
}

// kindOf names what a claim value that is not a string is, for messages.
func kindOf(v any) string {
	if _, kind := tenantValue(v); kind != "" {
		return kind
	}
	return "a number" // tenantValue accepts integers
}

// roleFromClaims reads the optional role claim, which must be a string.
func roleFromClaims(claims map[string]any, name string) (string, error) {
	v, ok := lookupClaim(claims, name)
	if !ok || v == nil {
		return "", nil
	}
	role, ok := v.(string)
	if !ok {
		return "", badTenant("claim %q must be a string, not %s", name, kindOf(v))
	}
	return role, nil
}

// claimValues collects every claim usable as a dimension, by name and, in
// nested objects (to a depth of three), by dotted path. A claim whose value
// is not a string, an integer or an array of them is left out.
func claimValues(claims map[string]any) map[string][]string {
	out := map[string][]string{}
	var walk func(prefix string, m map[string]any, depth int)
	walk = func(prefix string, m map[string]any, depth int) {
		// Keys at this level first, so a key spelled "a.b" wins over a
		// nested a.b whatever the map's order, as lookupClaim reads it.
		for k, v := range m {
			if _, nested := v.(map[string]any); nested {
				continue
			}
			if vals, err := tenantsFromClaims(map[string]any{k: v}, k); err == nil {
				if _, dup := out[prefix+k]; !dup {
					out[prefix+k] = vals
				}
			}
		}
		for k, v := range m {
			if sub, ok := v.(map[string]any); ok && depth < 3 {
				walk(prefix+k+".", sub, depth+1)
			}
		}
	}
	walk("", claims, 0)
	return out
}

// MaxScopes is the largest number of scopes a scope claim may hold.
const MaxScopes = 1000

// scopesFromClaims reads the scope claim: a space-separated string, as
// OAuth writes it, or an array of strings. present is false when the token
// has no such claim. Any other shape is an *Error with
// CodeInvalidAuthorization: a token whose scopes cannot be read must not
// fall back to read-write.
func scopesFromClaims(claims map[string]any, name string) (scopes []string, present bool, err error) {
	v, ok := lookupClaim(claims, name)
	if !ok {
		return nil, false, nil
	}
	switch x := v.(type) {
	case string:
		scopes = strings.Fields(x)
	case []any:
		scopes = make([]string, 0, len(x))
		for i, e := range x {
			s, ok := e.(string)
			if !ok {
				return nil, true, badTenant("claim %q entry %d must be a string, not %s", name, i, kindOf(e))
			}
			scopes = append(scopes, s)
		}
	default:
		return nil, true, badTenant("claim %q must be a space-separated string or an array of strings, not %s", name, kindOf(v))
	}
	if len(scopes) > MaxScopes {
		return nil, true, badTenant("claim %q has %d scopes; at most %d are allowed", name, len(scopes), MaxScopes)
	}
	return scopes, true, nil
}
