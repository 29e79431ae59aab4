package auth_test

import (
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/tenantproxy/tenantproxy/auth"
)

// Issuers of the test issuers file.
const (
	issA = "https://a.idp.test"    // HMAC secret; tenants acme and 42
	issB = "https://b.idp.test"    // RSA PEM; tenant globex, and "shared"
	issC = "https://c.idp.test"    // JWKS file; every tenant nobody lists
	issS = "https://root.idp.test" // HMAC; may issue unscoped tokens, tenant ops
)

var secretS = []byte("root-issuer-secret-0123456789abcdef!")

// issuersDir writes key files and an issuers file naming them by relative
// path, and returns the file's path.
func issuersDir(t testing.TB, yaml string) string {
	t.Helper()
	k := testKeys(t)
	dir := t.TempDir()
	for name, data := range map[string][]byte{
		"a.key":     append(append([]byte{}, testSecret...), '\n'),
		"s.key":     secretS,
		"b.pem":     pkixPEM(t, &k.rsa.PublicKey),
		"c.json":    jwksJSON(t, jwkOf(t, &k.p256.PublicKey, "c-1")),
		"short.key": []byte("too-short\n"),
		"issuers.y": []byte(yaml),
	} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return filepath.Join(dir, "issuers.y")
}

const testIssuers = `
issuers:
  - issuer: https://a.idp.test
    keys: [a.key]
    tenants: [acme, 42]
  - issuer: https://b.idp.test
    keys: [b.pem]
    tenants: [globex, shared]
  - issuer: https://c.idp.test
    keys: [c.json]
    tenants: ["*"]
  - issuer: https://root.idp.test
    keys: [s.key]
    tenants: [ops, shared]
    unscoped: true
`

func issuersVerifier(t testing.TB, yaml string, edit func(*auth.Config)) *auth.Verifier {
	t.Helper()
	cfg := auth.Config{IssuersFile: issuersDir(t, yaml), UnscopedRole: "support", Now: func() time.Time { return now }}
	if edit != nil {
		edit(&cfg)
	}
	v, err := auth.NewVerifier(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// signer signs claims as one of the test issuers.
func signer(t testing.TB, iss string) func(jwt.MapClaims) string {
	k := testKeys(t)
	return func(c jwt.MapClaims) string {
		switch iss {
		case issB:
			return sign(t, jwt.SigningMethodRS256, k.rsa, c)
		case issC:
			return sign(t, jwt.SigningMethodES256, k.p256, c, "kid", "c-1")
		case issS:
			return sign(t, jwt.SigningMethodHS256, secretS, c)
		}
		return sign(t, jwt.SigningMethodHS256, testSecret, c)
	}
}

// TestIssuersVerifyEachTokenWithItsIssuersKeysOnly: the unverified iss picks
// the keys; another issuer's keys never verify it, and an iss the file does
// not list is refused (28P01) naming the accepted issuers.
func TestIssuersVerifyEachTokenWithItsIssuersKeysOnly(t *testing.T) {
	k := testKeys(t)
	v := issuersVerifier(t, testIssuers, nil)
	hs := func(secret []byte, c jwt.MapClaims) string { return sign(t, jwt.SigningMethodHS256, secret, c) }
	cases := []struct {
		name   string
		token  string
		tenant string // accepted with this tenant; empty: refused
		says   string
	}{
		{"A with its secret", hs(testSecret, claims("iss", issA, "tenant_id", "acme")), "acme", ""},
		{"B with its RSA key", sign(t, jwt.SigningMethodRS256, k.rsa, claims("iss", issB, "tenant_id", "globex")), "globex", ""},
		{"C with its JWKS key", sign(t, jwt.SigningMethodES256, k.p256, claims("iss", issC, "tenant_id", "initech"), "kid", "c-1"), "initech", ""},
		{"A's iss signed with B's RSA key", sign(t, jwt.SigningMethodRS256, k.rsa, claims("iss", issA, "tenant_id", "acme")), "", "algorithm RS256 is not accepted; accepted: HS256, HS384, HS512"},
		{"B's iss signed with A's secret", hs(testSecret, claims("iss", issB, "tenant_id", "globex")), "", "algorithm HS256 is not accepted"},
		{"A's iss signed with the root issuer's secret", hs(secretS, claims("iss", issA, "tenant_id", "acme")), "", "signature is invalid"},
		{"root's iss signed with A's secret", hs(testSecret, claims("iss", issS, "tenant_id", "ops")), "", "signature is invalid"},
		{"C's iss signed with B's key", sign(t, jwt.SigningMethodRS256, k.rsa, claims("iss", issC, "tenant_id", "x"), "kid", "c-1"), "", "not accepted"},
		{"unknown issuer", hs(testSecret, claims("iss", "https://evil.test")), "", `token issuer "https://evil.test" is not allowed; expected one of "https://a.idp.test", "https://b.idp.test", "https://c.idp.test", "https://root.idp.test"`},
		{"issuer differing in case", hs(testSecret, claims("iss", "https://A.idp.test", "tenant_id", "acme")), "", "is not allowed"},
		{"issuer with a trailing slash", hs(testSecret, claims("iss", issA+"/", "tenant_id", "acme")), "", "is not allowed"},
		{"no issuer", hs(testSecret, claims("iss", nil)), "", `token has no issuer (iss); expected one of "https://a.idp.test"`},
		{"issuer not a string", hs(testSecret, claims("iss", 7)), "", "issuer (iss) is not a string"},
		{"not a JWT", "hunter2", "", "not a JWT"},
		{"header not JSON", b64([]byte("nope")) + "." + b64([]byte(`{"iss":"`+issA+`"}`)) + ".x", "", "not a JWT"},
		{"unknown alg", b64([]byte(`{"alg":"XS999"}`)) + "." + b64([]byte(`{"iss":"`+issA+`"}`)) + ".x", "", "algorithm (alg) is missing or unknown; accepted: HS256, HS384, HS512"},
		{"alg none", func() string {
			s, _ := jwt.NewWithClaims(jwt.SigningMethodNone, claims("iss", issA, "tenant_id", "acme")).SignedString(jwt.UnsafeAllowNoneSignatureType)
			return s
		}(), "", "algorithm none is not accepted"},
		{"jku naming other keys is ignored", sign(t, jwt.SigningMethodRS256, k.rsa2, claims("iss", issB, "tenant_id", "globex"), "jku", "https://evil.test/jwks"), "", "signature is invalid"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			id, err := v.Verify(c.token)
			if c.tenant != "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				if !slices.Equal(id.Tenants, []string{c.tenant}) {
					t.Errorf("tenants %q, want %q", id.Tenants, c.tenant)
				}
				return
			}
			if err == nil {
				t.Fatalf("accepted: %+v", id)
			}
			e := authError(t, err)
			if e.Code != auth.CodeInvalidPassword {
				t.Errorf("code %s, want 28P01 (%s)", e.Code, e.Reason)
			}
			if !strings.Contains(e.Reason, c.says) {
				t.Errorf("reason %q should say %q", e.Reason, c.says)
			}
			if echoes(e.Reason, c.token) {
				t.Errorf("reason %q echoes the token", e.Reason)
			}
		})
	}
	if got := v.Issuers(); !slices.Equal(got, []string{issA, issB, issC, issS}) {
		t.Errorf("Issuers() = %q", got)
	}
}

// TestIssuersMaySpeakOnlyForTheirTenants: a genuine token naming a tenant
// its issuer is not bound to is refused with 28000 and says so; "*" covers
// every tenant no other issuer lists, and a tenant listed under two
// issuers belongs to both.
func TestIssuersMaySpeakOnlyForTheirTenants(t *testing.T) {
	v := issuersVerifier(t, testIssuers, nil)
	cases := []struct {
		name    string
		iss     string
		tenant  any
		want    []string // accepted tenants; nil: refused
		refusal string
	}{
		{"A for acme", issA, "acme", []string{"acme"}, ""},
		{"A for 42 as a number", issA, 42, []string{"42"}, ""},
		{"A for 42 as a string", issA, "42", []string{"42"}, ""},
		{"A for both of its tenants", issA, []any{"acme", 42}, []string{"acme", "42"}, ""},
		{"B for globex", issB, "globex", []string{"globex"}, ""},
		{"B for the shared tenant", issB, "shared", []string{"shared"}, ""},
		{"root for the shared tenant", issS, "shared", []string{"shared"}, ""},
		{"C for a tenant nobody lists", issC, "initech", []string{"initech"}, ""},
		{"C for a number nobody lists", issC, 7, []string{"7"}, ""},
		{"A for B's tenant", issA, "globex", nil, `issuer "https://a.idp.test" may not speak for tenant "globex"; it is not among the issuer's tenants`},
		{"B for A's tenant", issB, "acme", nil, `issuer "https://b.idp.test" may not speak for tenant "acme"`},
		{"A for a tenant nobody lists", issA, "initech", nil, `may not speak for tenant "initech"`},
		{"A for its own and B's tenant", issA, []any{"acme", "globex"}, nil, `may not speak for tenant "globex"`},
		{"A for 42 spelled differently", issA, "042", nil, `may not speak for tenant "042"`},
		{"wildcard C for A's tenant", issC, "acme", nil, `issuer "https://c.idp.test" may not speak for tenant "acme"; the issuers file binds that tenant to other issuers`},
		{"wildcard C for the shared tenant", issC, "shared", nil, "binds that tenant to other issuers"},
		{"wildcard C for a literal *", issC, "*", []string{"*"}, ""},
		{"A for a literal *", issA, "*", nil, `may not speak for tenant "*"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			id, err := v.Verify(signer(t, c.iss)(claims("iss", c.iss, "tenant_id", c.tenant)))
			if c.want != nil {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				if !slices.Equal(id.Tenants, c.want) || id.Issuer != c.iss {
					t.Errorf("identity %+v, want tenants %q", id, c.want)
				}
				return
			}
			if err == nil {
				t.Fatalf("accepted: %+v", id)
			}
			if e := authError(t, err); e.Code != auth.CodeInvalidAuthorization || !strings.Contains(e.Reason, c.refusal) {
				t.Errorf("got %s %q, want 28000 saying %q", e.Code, e.Reason, c.refusal)
			}
		})
	}
}

// TestUnscopedRole: a token whose role claim is the unscoped role is
// unscoped, and needs no tenant, only when an unscoped role is configured
// and its issuer may issue it; otherwise it is refused with 28000 or the
// role is just a value.
func TestUnscopedRole(t *testing.T) {
	files := keyFiles(t)
	single := func(role string) *auth.Verifier {
		return newVerifier(t, files, []string{"hmac"}, func(c *auth.Config) { c.UnscopedRole = role })
	}
	custom := newVerifier(t, files, []string{"hmac"}, func(c *auth.Config) { c.UnscopedRole = "support"; c.RoleClaim = "app.role" })
	bound := issuersVerifier(t, testIssuers, nil)
	hs := func(c jwt.MapClaims) string { return sign(t, jwt.SigningMethodHS256, testSecret, c) }
	cases := []struct {
		name     string
		v        *auth.Verifier
		token    string
		unscoped bool
		tenants  []string
		refusal  string // 28000 reason; empty: accepted
	}{
		{"not configured: the role is a value", single(""), hs(claims("role", "support")), false, []string{"42"}, ""},
		{"not configured: a tenant is still required", single(""), hs(claims("role", "support", "tenant_id", nil)), false, nil, `no "tenant_id" claim`},
		{"not configured: an empty role does not match", single(""), hs(claims("role", "")), false, []string{"42"}, ""},
		{"configured without issuers file: no tenant", single("support"), hs(claims("role", "support", "tenant_id", nil)), true, nil, ""},
		{"configured without issuers file: with a tenant", single("support"), hs(claims("role", "support")), true, []string{"42"}, ""},
		{"configured: another role needs a tenant", single("support"), hs(claims("role", "reader", "tenant_id", nil)), false, nil, `no "tenant_id" claim`},
		{"configured: the role differs in case", single("support"), hs(claims("role", "Support", "tenant_id", nil)), false, nil, "tenant"},
		{"configured: no role", single("support"), hs(claims()), false, []string{"42"}, ""},
		{"configured: a present tenant claim is still checked", single("support"), hs(claims("role", "support", "tenant_id", 1.5)), false, nil, "not a float"},
		{"configured: a role of the wrong type", single("support"), hs(claims("role", []any{"support"}, "tenant_id", nil)), false, nil, "must be a string"},
		{"custom role claim", custom, hs(claims("app", map[string]any{"role": "support"}, "tenant_id", nil)), true, nil, ""},
		{"custom role claim ignores role", custom, hs(claims("role", "support", "tenant_id", nil)), false, nil, "tenant"},
		{"issuer allowed to issue it", bound, signer(t, issS)(claims("iss", issS, "role", "support", "tenant_id", nil)), true, nil, ""},
		{"issuer allowed, naming its tenant", bound, signer(t, issS)(claims("iss", issS, "role", "support", "tenant_id", "ops")), true, []string{"ops"}, ""},
		{"issuer allowed, naming another's tenant", bound, signer(t, issS)(claims("iss", issS, "role", "support", "tenant_id", "acme")), false, nil, `issuer "https://root.idp.test" may not speak for tenant "acme"`},
		{"issuer not allowed", bound, signer(t, issA)(claims("iss", issA, "role", "support", "tenant_id", nil)), false, nil, `issuer "https://a.idp.test" may not issue tokens for the unscoped role "support"`},
		{"issuer not allowed, even naming its tenant", bound, signer(t, issA)(claims("iss", issA, "role", "support", "tenant_id", "acme")), false, nil, "may not issue tokens for the unscoped role"},
		{"wildcard issuer not allowed", bound, signer(t, issC)(claims("iss", issC, "role", "support")), false, nil, "may not issue tokens for the unscoped role"},
		{"issuer not allowed, another role", bound, signer(t, issA)(claims("iss", issA, "role", "reader", "tenant_id", "acme")), false, []string{"acme"}, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			id, err := c.v.Verify(c.token)
			if c.refusal != "" {
				if err == nil {
					t.Fatalf("accepted: %+v", id)
				}
				if e := authError(t, err); e.Code != auth.CodeInvalidAuthorization || !strings.Contains(e.Reason, c.refusal) {
					t.Errorf("got %s %q, want 28000 saying %q", e.Code, e.Reason, c.refusal)
				}
				return
			}
			if err != nil {
				t.Fatalf("refused: %v", err)
			}
			if id.Unscoped != c.unscoped || !slices.Equal(id.Tenants, c.tenants) {
				t.Errorf("unscoped %v tenants %q, want %v %q", id.Unscoped, id.Tenants, c.unscoped, c.tenants)
			}
		})
	}
}

// TestScopeClaim: a token carrying the scope claim without the write scope
// is read-only; one without the claim is read-write; a scope claim of any
// other shape is refused with 28000.
func TestScopeClaim(t *testing.T) {
	files := keyFiles(t)
	def := newVerifier(t, files, []string{"hmac"}, nil)
	custom := newVerifier(t, files, []string{"hmac"}, func(c *auth.Config) { c.ScopeClaim = "scp"; c.WriteScope = "db:write" })
	nested := newVerifier(t, files, []string{"hmac"}, func(c *auth.Config) { c.ScopeClaim = "ext.scopes" })
	cases := []struct {
		name     string
		v        *auth.Verifier
		scope    any // nil: no claim
		claim    string
		readOnly bool
		refusal  string
	}{
		{"no scope claim", def, nil, "scope", false, ""},
		{"string with write", def, "openid write profile", "scope", false, ""},
		{"string with only write", def, "write", "scope", false, ""},
		{"string without write", def, "openid read", "scope", true, ""},
		{"string with extra spaces", def, "  read \t write  ", "scope", false, ""},
		{"empty string", def, "", "scope", true, ""},
		{"write as a prefix is not write", def, "writer write:all", "scope", true, ""},
		{"write differs in case", def, "WRITE", "scope", true, ""},
		{"array with write", def, []any{"read", "write"}, "scope", false, ""},
		{"array without write", def, []any{"read"}, "scope", true, ""},
		{"empty array", def, []any{}, "scope", true, ""},
		{"array entry holding two scopes is one scope", def, []any{"read write"}, "scope", true, ""},
		{"custom claim and write scope", custom, "db:read db:write", "scp", false, ""},
		{"custom write scope missing", custom, []any{"write"}, "scp", true, ""},
		{"custom claim: scope is just a claim", custom, "read", "scope", false, ""},
		{"nested claim", nested, []any{"read"}, "ext", true, ""},
		{"number", def, 7, "scope", false, `claim "scope" must be a space-separated string or an array of strings, not a number`},
		{"float", def, 1.5, "scope", false, "not a float"},
		{"boolean", def, true, "scope", false, "not a boolean"},
		{"null", def, "null", "scope", false, "not null"},
		{"object", def, map[string]any{"write": true}, "scope", false, "not an object"},
		{"array with a number", def, []any{"write", 1}, "scope", false, `claim "scope" entry 1 must be a string, not a number`},
		{"array with null", def, []any{"write", nil}, "scope", false, "entry 1 must be a string, not null"},
		{"nested array", def, []any{[]any{"write"}}, "scope", false, "not an array"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cl := claims()
			switch {
			case c.scope == "null":
				cl[c.claim] = nil
			case c.claim == "ext":
				cl["ext"] = map[string]any{"scopes": c.scope}
			case c.scope != nil:
				cl[c.claim] = c.scope
			}
			id, err := c.v.Verify(sign(t, jwt.SigningMethodHS256, testSecret, cl))
			if c.refusal != "" {
				if err == nil {
					t.Fatalf("accepted: %+v", id)
				}
				if e := authError(t, err); e.Code != auth.CodeInvalidAuthorization || !strings.Contains(e.Reason, c.refusal) {
					t.Errorf("got %s %q, want 28000 saying %q", e.Code, e.Reason, c.refusal)
				}
				return
			}
			if err != nil {
				t.Fatalf("refused: %v", err)
			}
			if id.ReadOnly != c.readOnly {
				t.Errorf("read-only %v, want %v", id.ReadOnly, c.readOnly)
			}
		})
	}
	t.Run("too many scopes", func(t *testing.T) {
		many := strings.TrimSpace(strings.Repeat("s ", auth.MaxScopes+1))
		_, err := def.Verify(sign(t, jwt.SigningMethodHS256, testSecret, claims("scope", many)))
		if e := authError(t, err); e.Code != auth.CodeInvalidAuthorization || !strings.Contains(e.Reason, "at most 1000") {
			t.Errorf("got %s %q", e.Code, e.Reason)
		}
	})
}

// TestIssuersFileIsChecked: mistakes in the issuers file are reported at
// load, naming the file, the issuer (or its entry) and what to fix.
func TestIssuersFileIsChecked(t *testing.T) {
	cases := []struct {
		name string
		yaml string
		says []string
	}{
		{"unknown field", "issuers:\n  - issuer: https://a.idp.test\n    keys: [a.key]\n    jwks_uri: https://a.idp.test/jwks\n    tenants: [acme]\n",
			[]string{`issuer "https://a.idp.test" (line 4)`, `unknown field "jwks_uri"`, "jwks_url"}},
		{"unknown top-level field", "issuer:\n  - issuer: x\n", []string{`unknown field "issuer"`, `"issuers:"`}},
		{"no issuers", "issuers: []\n", []string{"lists no issuers"}},
		{"empty file", "", []string{"lists no issuers"}},
		{"not YAML", "issuers: [\n", []string{"did not find"}},
		{"no issuer", "issuers:\n  - keys: [a.key]\n    tenants: [acme]\n", []string{"entry 1 (line 2) has no issuer", "iss value"}},
		{"duplicate issuer", "issuers:\n  - issuer: https://a.idp.test\n    keys: [a.key]\n    tenants: [acme]\n  - issuer: https://a.idp.test\n    keys: [s.key]\n    tenants: [ops]\n",
			[]string{`issuer "https://a.idp.test" (line 5): listed twice (first at line 2)`, "merge"}},
		{"no keys", "issuers:\n  - issuer: https://a.idp.test\n    tenants: [acme]\n", []string{`issuer "https://a.idp.test" (line 2): has no keys`, "jwks_url"}},
		{"missing key file", "issuers:\n  - issuer: https://a.idp.test\n    keys: [nope.pem]\n    tenants: [acme]\n", []string{`issuer "https://a.idp.test"`, "nope.pem", "no such file"}},
		{"bad key file", "issuers:\n  - issuer: https://a.idp.test\n    keys: [short.key]\n    tenants: [acme]\n", []string{`issuer "https://a.idp.test" (line 2): keys: `, "short.key: HMAC secret is 9 bytes"}},
		{"empty key path", "issuers:\n  - issuer: https://a.idp.test\n    keys: ['']\n    tenants: [acme]\n", []string{"keys entry 1 is empty"}},
		{"ftp URL", "issuers:\n  - issuer: https://a.idp.test\n    jwks_url: ftp://a.idp.test/jwks\n    tenants: [acme]\n", []string{`jwks_url "ftp://a.idp.test/jwks" must be an https:// URL`}},
		{"relative URL", "issuers:\n  - issuer: https://a.idp.test\n    jwks_url: /jwks.json\n    tenants: [acme]\n", []string{"jwks_url", "must be an https:// URL"}},
		{"URL without host", "issuers:\n  - issuer: https://a.idp.test\n    jwks_url: 'https:///jwks'\n    tenants: [acme]\n", []string{"has no host"}},
		{"plain http off loopback", "issuers:\n  - issuer: https://a.idp.test\n    jwks_url: http://a.idp.test/jwks\n    tenants: [acme]\n", []string{"plain http", "use https"}},
		{"URL with credentials", "issuers:\n  - issuer: https://a.idp.test\n    jwks_url: https://u:p@a.idp.test/jwks\n    tenants: [acme]\n", []string{"credentials"}},
		{"no tenants", "issuers:\n  - issuer: https://a.idp.test\n    keys: [a.key]\n", []string{`issuer "https://a.idp.test" (line 2): may speak for no tenant`, `"*"`}},
		{"wildcard beside tenants", "issuers:\n  - issuer: https://a.idp.test\n    keys: [a.key]\n    tenants: [acme, \"*\"]\n", []string{`"*" beside other tenants`, "give it alone"}},
		{"unquoted wildcard", "issuers:\n  - issuer: https://a.idp.test\n    keys: [a.key]\n    tenants: [*]\n", []string{`quote it, tenants: ["*"]`}},
		{"float tenant", "issuers:\n  - issuer: https://a.idp.test\n    keys: [a.key]\n    tenants: [1.5]\n", []string{"tenants entry 1 (line 4)", `"1.5" is a float`}},
		{"boolean tenant", "issuers:\n  - issuer: https://a.idp.test\n    keys: [a.key]\n    tenants: [yes, true]\n", []string{"tenants entry 2", "is a bool"}},
		{"hex tenant", "issuers:\n  - issuer: https://a.idp.test\n    keys: [a.key]\n    tenants: [0x1F]\n", []string{"0x1F is not a plain decimal integer"}},
		{"leading zeros", "issuers:\n  - issuer: https://a.idp.test\n    keys: [a.key]\n    tenants: [0042]\n", []string{"0042 is not a plain decimal integer", "quote it"}},
		{"empty tenant", "issuers:\n  - issuer: https://a.idp.test\n    keys: [a.key]\n    tenants: ['']\n", []string{"empty string"}},
		{"nested tenant list", "issuers:\n  - issuer: https://a.idp.test\n    keys: [a.key]\n    tenants: [[acme]]\n", []string{"not a list or a map"}},
		{"tenants not a list", "issuers:\n  - issuer: https://a.idp.test\n    keys: [a.key]\n    tenants: acme\n", []string{`issuer "https://a.idp.test" (line 4)`, "cannot unmarshal"}},
		{"unscoped not a boolean", "issuers:\n  - issuer: https://a.idp.test\n    keys: [a.key]\n    tenants: [acme]\n    unscoped: maybe\n", []string{`issuer "https://a.idp.test" (line 5)`, "bool"}},
		{"unscoped without an unscoped role", "issuers:\n  - issuer: https://a.idp.test\n    keys: [a.key]\n    unscoped: true\n", []string{"unscoped: true but no unscoped role", "--unscoped-role"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := issuersDir(t, c.yaml)
			_, err := auth.NewVerifier(auth.Config{IssuersFile: path})
			if err == nil {
				t.Fatal("accepted")
			}
			if !strings.Contains(err.Error(), "--issuers "+path+": ") {
				t.Errorf("error %q does not name the file", err)
			}
			for _, s := range c.says {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q should say %q", err, s)
				}
			}
		})
	}
	t.Run("with --jwt-key", func(t *testing.T) {
		_, err := auth.NewVerifier(auth.Config{IssuersFile: issuersDir(t, testIssuers), KeyFiles: []string{keyFiles(t)["hmac"]}})
		if err == nil || !strings.Contains(err.Error(), "without --jwt-key or --jwt-issuer") {
			t.Errorf("error %v", err)
		}
	})
	t.Run("with --jwt-issuer", func(t *testing.T) {
		_, err := auth.NewVerifier(auth.Config{IssuersFile: issuersDir(t, testIssuers), Issuers: []string{issA}})
		if err == nil || !strings.Contains(err.Error(), "without --jwt-key or --jwt-issuer") {
			t.Errorf("error %v", err)
		}
	})
	t.Run("missing file", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "nope.yaml")
		_, err := auth.NewVerifier(auth.Config{IssuersFile: path})
		if err == nil || !strings.Contains(err.Error(), "--issuers "+path) {
			t.Errorf("error %v", err)
		}
	})
	t.Run("unscoped with a role and no tenants is fine", func(t *testing.T) {
		path := issuersDir(t, "issuers:\n  - issuer: https://a.idp.test\n    keys: [a.key]\n    unscoped: true\n")
		v, err := auth.NewVerifier(auth.Config{IssuersFile: path, UnscopedRole: "support", Now: func() time.Time { return now }})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := v.Verify(signer(t, issA)(claims("iss", issA, "tenant_id", "acme"))); err == nil {
			t.Error("an issuer without tenants spoke for one")
		}
		id, err := v.Verify(signer(t, issA)(claims("iss", issA, "role", "support", "tenant_id", nil)))
		if err != nil || !id.Unscoped {
			t.Errorf("unscoped token: %+v, %v", id, err)
		}
	})
	t.Run("absolute key paths and integer tenants", func(t *testing.T) {
		key := keyFiles(t)["hmac"]
		path := issuersDir(t, "issuers:\n  - issuer: https://a.idp.test\n    keys: ["+strconv.Quote(key)+"]\n    tenants: [-0, 42]\n")
		v, err := auth.NewVerifier(auth.Config{IssuersFile: path, Now: func() time.Time { return now }})
		if err != nil {
			t.Fatal(err)
		}
		for _, tenant := range []any{0, "0", 42} {
			if _, err := v.Verify(signer(t, issA)(claims("iss", issA, "tenant_id", tenant))); err != nil {
				t.Errorf("tenant %v: %v", tenant, err)
			}
		}
	})
}
