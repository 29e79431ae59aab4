package auth_test

import (
	"bytes"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/tenantproxy/tenantproxy/auth"
)

const remoteIss = "https://idp.remote.test"

// fakeClock is a clock tests move by hand.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// jwksServer serves a JWKS the test changes, and counts requests.
type jwksServer struct {
	*httptest.Server
	hits atomic.Int64

	mu           sync.Mutex
	body         []byte
	cacheControl string
	status       int
}

func newJWKSServer(t testing.TB, body []byte, cacheControl string) *jwksServer {
	t.Helper()
	s := &jwksServer{body: body, cacheControl: cacheControl, status: http.StatusOK}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.hits.Add(1)
		s.mu.Lock()
		body, cc, status := s.body, s.cacheControl, s.status
		s.mu.Unlock()
		if cc != "" {
			w.Header().Set("Cache-Control", cc)
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = w.Write(body)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *jwksServer) serve(body []byte, status int) {
	s.mu.Lock()
	s.body, s.status = body, status
	s.mu.Unlock()
}

// syncBuffer collects log output written from several goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// remote is a verifier whose only issuer's keys are at a jwks_url.
type remote struct {
	srv   *jwksServer
	clock *fakeClock
	logs  *syncBuffer
	cfg   auth.Config
	v     *auth.Verifier
}

func newRemote(t testing.TB, body []byte, cacheControl string) *remote {
	t.Helper()
	r := &remote{srv: newJWKSServer(t, body, cacheControl), clock: &fakeClock{t: now}, logs: &syncBuffer{}}
	yaml := "issuers:\n  - issuer: " + remoteIss + "\n    jwks_url: " + r.srv.URL + "/jwks.json\n    tenants: [\"*\"]\n"
	r.cfg = auth.Config{IssuersFile: issuersDir(t, yaml), Now: r.clock.Now, JWKSCache: auth.NewJWKSCache(),
		Logger: slog.New(slog.NewTextHandler(r.logs, nil))}
	v, err := auth.NewVerifier(r.cfg)
	if err != nil {
		t.Fatal(err)
	}
	r.v = v
	return r
}

// token signs a token valid at the fake clock's time with the RSA key of
// the test keys named by kid ("r1": rsa, "r2": rsa2).
func (r *remote) token(t testing.TB, kid string, header ...any) string {
	t.Helper()
	k := testKeys(t)
	key := k.rsa
	if kid == "r2" {
		key = k.rsa2
	}
	at := r.clock.Now()
	c := claims("iss", remoteIss, "iat", at.Add(-time.Minute).Unix(), "exp", at.Add(time.Hour).Unix())
	return sign(t, jwt.SigningMethodRS256, key, c, append([]any{"kid", kid}, header...)...)
}

// verify reports whether a token is accepted, failing on a refusal that
// is not 28P01.
func (r *remote) verify(t testing.TB, token string) (bool, string) {
	t.Helper()
	_, err := r.v.Verify(token)
	if err == nil {
		return true, ""
	}
	e := authError(t, err)
	if e.Code != auth.CodeInvalidPassword {
		t.Fatalf("code %s: %s", e.Code, e.Reason)
	}
	return false, e.Reason
}

func (r *remote) wantHits(t testing.TB, want int64, when string) {
	t.Helper()
	if got := r.srv.hits.Load(); got != want {
		t.Fatalf("%s: the JWKS was fetched %d times, want %d", when, got, want)
	}
}

func jwksOf(t testing.TB, kids ...string) []byte {
	k := testKeys(t)
	var keys []map[string]any
	for _, kid := range kids {
		pub := &k.rsa.PublicKey
		if kid == "r2" {
			pub = &k.rsa2.PublicKey
		}
		keys = append(keys, jwkOf(t, pub, kid))
	}
	return jwksJSON(t, keys...)
}

// TestJWKSURLFollowsKeyRotation: a key published after the last fetch is
// fetched when the first token naming it arrives; a retired key stops
// verifying once the set is fetched again after its max-age.
func TestJWKSURLFollowsKeyRotation(t *testing.T) {
	r := newRemote(t, jwksOf(t, "r1"), "max-age=300")
	r.wantHits(t, 1, "at start")
	if ok, why := r.verify(t, r.token(t, "r1")); !ok {
		t.Fatalf("r1: %s", why)
	}
	r.wantHits(t, 1, "a known kid")

	r.srv.serve(jwksOf(t, "r1", "r2"), http.StatusOK)
	r.clock.Add(time.Second)
	if ok, why := r.verify(t, r.token(t, "r2")); !ok {
		t.Fatalf("the new key r2: %s", why)
	}
	r.wantHits(t, 2, "a new kid")
	if ok, why := r.verify(t, r.token(t, "r2")); !ok {
		t.Fatalf("r2 again: %s", why)
	}
	r.wantHits(t, 2, "the new kid again")

	r.srv.serve(jwksOf(t, "r2"), http.StatusOK)
	r.clock.Add(4 * time.Minute)
	if ok, why := r.verify(t, r.token(t, "r1")); !ok {
		t.Fatalf("r1 before the max-age passed: %s", why)
	}
	r.wantHits(t, 2, "within max-age")
	r.clock.Add(time.Minute)
	if ok, _ := r.verify(t, r.token(t, "r1")); ok {
		t.Fatal("the retired key r1 still verifies after the set expired")
	}
	r.wantHits(t, 3, "after max-age")
	if !strings.Contains(r.logs.String(), "fetched a JWKS") {
		t.Errorf("fetches are not logged:\n%s", r.logs)
	}
}

// TestJWKSURLUnknownKidsFetchAtMostEvery30Seconds: tokens with invented
// kids cannot make the proxy hammer the identity provider.
func TestJWKSURLUnknownKidsFetchAtMostEvery30Seconds(t *testing.T) {
	r := newRemote(t, jwksOf(t, "r1"), "")
	for i, kid := range []string{"x1", "x2", "x3"} {
		ok, why := r.verify(t, r.token(t, kid))
		if ok || !strings.Contains(why, "kid) matches no configured key") {
			t.Fatalf("unknown kid %s: %v %q", kid, ok, why)
		}
		r.wantHits(t, 2, "unknown kids within 30s")
		if i == 0 {
			r.clock.Add(10 * time.Second)
		}
	}
	// A real rotation inside the window waits for it to pass.
	r.srv.serve(jwksOf(t, "r1", "r2"), http.StatusOK)
	if ok, _ := r.verify(t, r.token(t, "r2")); ok {
		t.Fatal("fetched again within 30s")
	}
	r.wantHits(t, 2, "still within 30s")
	r.clock.Add(20 * time.Second)
	if ok, why := r.verify(t, r.token(t, "r2")); !ok {
		t.Fatalf("r2 after 30s: %s", why)
	}
	r.wantHits(t, 3, "after 30s")
	// A token without a kid never causes a fetch.
	k := testKeys(t)
	at := r.clock.Now()
	noKid := sign(t, jwt.SigningMethodRS256, k.rsa, claims("iss", remoteIss, "iat", at.Unix(), "exp", at.Add(time.Hour).Unix()))
	r.clock.Add(time.Minute)
	for range 3 {
		if ok, why := r.verify(t, noKid); !ok {
			t.Fatalf("no kid: %s", why)
		}
	}
	r.wantHits(t, 3, "tokens without kid")
}

// TestJWKSURLHonoursMaxAge: the set is fetched again once the response's
// Cache-Control max-age has passed, clamped to 1 min .. 24 h, 1 h without.
func TestJWKSURLHonoursMaxAge(t *testing.T) {
	cases := []struct {
		cacheControl string
		age          time.Duration
	}{
		{"max-age=300", 5 * time.Minute},
		{"public, max-age=7200, must-revalidate", 2 * time.Hour},
		{`max-age="600"`, 10 * time.Minute},
		{"", time.Hour},
		{"public", time.Hour},
		{"max-age=abc", time.Hour},
		{"max-age=5", time.Minute},
		{"max-age=0", time.Minute},
		{"no-store", time.Minute},
		{"no-cache, max-age=7200", time.Minute},
		{"max-age=999999999999", 24 * time.Hour},
	}
	for _, c := range cases {
		t.Run(c.cacheControl, func(t *testing.T) {
			r := newRemote(t, jwksOf(t, "r1"), c.cacheControl)
			r.clock.Add(c.age - time.Second)
			if ok, why := r.verify(t, r.token(t, "r1")); !ok {
				t.Fatal(why)
			}
			r.wantHits(t, 1, "just before max-age")
			r.clock.Add(time.Second)
			if ok, why := r.verify(t, r.token(t, "r1")); !ok {
				t.Fatal(why)
			}
			r.wantHits(t, 2, "at max-age")
		})
	}
}

// TestJWKSURLKeepsTheLastGoodKeys: when the address fails (down, an error
// status, a document that is not a usable JWKS), tokens keep verifying
// with the last good set, and the address is tried at most every 30 s.
func TestJWKSURLKeepsTheLastGoodKeys(t *testing.T) {
	cases := []struct {
		name string
		fail func(*remote)
	}{
		{"server down", func(r *remote) { r.srv.CloseClientConnections(); r.srv.Close() }},
		{"error status", func(r *remote) { r.srv.serve([]byte("oops"), http.StatusServiceUnavailable) }},
		{"not JSON", func(r *remote) { r.srv.serve([]byte("<html>"), http.StatusOK) }},
		{"no keys", func(r *remote) { r.srv.serve([]byte(`{"keys":[]}`), http.StatusOK) }},
		{"a private key", func(r *remote) {
			j := jwkOf(t, &testKeys(t).rsa.PublicKey, "r1")
			j["d"] = "AAAA"
			r.srv.serve(jwksJSON(t, j), http.StatusOK)
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := newRemote(t, jwksOf(t, "r1"), "max-age=60")
			c.fail(r)
			r.clock.Add(2 * time.Minute)
			before := r.srv.hits.Load()
			for range 3 {
				if ok, why := r.verify(t, r.token(t, "r1")); !ok {
					t.Fatalf("the last good key: %s", why)
				}
			}
			if ok, _ := r.verify(t, r.token(t, "r2")); ok {
				t.Fatal("an unknown key verified")
			}
			if got := r.srv.hits.Load() - before; c.name != "server down" && got != 1 {
				t.Fatalf("%d fetches after the set expired, want 1 until 30s pass", got)
			}
			r.clock.Add(31 * time.Second)
			if ok, why := r.verify(t, r.token(t, "r1")); !ok {
				t.Fatalf("after the retry: %s", why)
			}
			if got := r.srv.hits.Load() - before; c.name != "server down" && got != 2 {
				t.Fatalf("%d fetches after 30s more, want 2", got)
			}
			if !strings.Contains(r.logs.String(), "the last good keys stay") {
				t.Errorf("the failure is not logged:\n%s", r.logs)
			}
		})
	}
}

// TestJWKSURLRefusesOversizedResponses: a document over 1 MiB is refused,
// whether or not it says its length; a verifier that never got keys
// refuses its issuer's tokens with 28P01 and tries again later.
func TestJWKSURLRefusesOversizedResponses(t *testing.T) {
	huge := append([]byte(`{"keys":[`), bytes.Repeat([]byte(" "), auth.JWKSMaxBytes)...)
	huge = append(huge, []byte(`]}`)...)
	for _, chunked := range []bool{false, true} {
		name := "with Content-Length"
		if chunked {
			name = "chunked"
		}
		t.Run(name, func(t *testing.T) {
			srv := newJWKSServer(t, nil, "")
			srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				srv.hits.Add(1)
				if chunked {
					_, _ = w.Write(huge[:10])
					w.(http.Flusher).Flush()
					_, _ = w.Write(huge[10:])
					return
				}
				w.Header().Set("Content-Length", strconv.Itoa(len(huge)))
				_, _ = w.Write(huge)
			})
			logs := &syncBuffer{}
			clock := &fakeClock{t: now}
			yaml := "issuers:\n  - issuer: " + remoteIss + "\n    jwks_url: " + srv.URL + "\n    tenants: [\"*\"]\n"
			v, err := auth.NewVerifier(auth.Config{IssuersFile: issuersDir(t, yaml), Now: clock.Now, Logger: slog.New(slog.NewTextHandler(logs, nil))})
			if err != nil {
				t.Fatalf("a key set that cannot be fetched stops the verifier: %v", err)
			}
			if !strings.Contains(logs.String(), "larger than") {
				t.Errorf("log does not say why:\n%s", logs)
			}
			r := &remote{clock: clock, v: v}
			ok, why := r.verify(t, r.token(t, "r1"))
			if ok || !strings.Contains(why, `the keys of issuer "https://idp.remote.test" could not be fetched`) {
				t.Fatalf("%v %q", ok, why)
			}
			if n := srv.hits.Load(); n != 1 {
				t.Fatalf("fetched %d times, want 1 until 30s pass", n)
			}
		})
	}
}

// TestJWKSURLFetchedLaterWhenDownAtStart: an address that cannot be fetched
// when the verifier is built does not stop it; its tokens are refused until
// a later fetch (no sooner than 30 s on) succeeds.
func TestJWKSURLFetchedLaterWhenDownAtStart(t *testing.T) {
	srv := newJWKSServer(t, []byte("down"), "")
	srv.serve([]byte("down"), http.StatusBadGateway)
	clock := &fakeClock{t: now}
	logs := &syncBuffer{}
	yaml := "issuers:\n  - issuer: " + remoteIss + "\n    jwks_url: " + srv.URL + "\n    tenants: [\"*\"]\n"
	v, err := auth.NewVerifier(auth.Config{IssuersFile: issuersDir(t, yaml), Now: clock.Now, Logger: slog.New(slog.NewTextHandler(logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), "refused until a fetch succeeds") || !strings.Contains(logs.String(), "502") {
		t.Errorf("log:\n%s", logs)
	}
	r := &remote{srv: srv, clock: clock, v: v}
	if ok, why := r.verify(t, r.token(t, "r1")); ok || !strings.Contains(why, "could not be fetched") {
		t.Fatalf("%v %q", ok, why)
	}
	srv.serve(jwksOf(t, "r1"), http.StatusOK)
	clock.Add(10 * time.Second)
	if ok, _ := r.verify(t, r.token(t, "r1")); ok {
		t.Fatal("fetched again within 30s of a failure")
	}
	r.wantHits(t, 1, "within 30s")
	clock.Add(20 * time.Second)
	if ok, why := r.verify(t, r.token(t, "r1")); !ok {
		t.Fatal(why)
	}
	r.wantHits(t, 2, "after 30s")
}

// TestJWKSCacheKeepsKeysAcrossReload: a verifier built again (SIGHUP) with
// the same cache fetches every address again, and one that fails keeps its
// last good keys instead of failing the reload.
func TestJWKSCacheKeepsKeysAcrossReload(t *testing.T) {
	r := newRemote(t, jwksOf(t, "r1"), "")
	r.srv.serve(jwksOf(t, "r1", "r2"), http.StatusOK)
	v2, err := auth.NewVerifier(r.cfg)
	if err != nil {
		t.Fatal(err)
	}
	r.wantHits(t, 2, "a reload fetches again")
	r.v = v2
	if ok, why := r.verify(t, r.token(t, "r2")); !ok {
		t.Fatal(why)
	}
	r.wantHits(t, 2, "the reload fetched r2")

	r.srv.serve(nil, http.StatusInternalServerError)
	v3, err := auth.NewVerifier(r.cfg)
	if err != nil {
		t.Fatalf("a reload while the address fails: %v", err)
	}
	r.v = v3
	for _, kid := range []string{"r1", "r2"} {
		if ok, why := r.verify(t, r.token(t, kid)); !ok {
			t.Fatalf("%s after a failed reload fetch: %s", kid, why)
		}
	}
	fresh := r.cfg
	fresh.JWKSCache = auth.NewJWKSCache()
	v4, err := auth.NewVerifier(fresh)
	if err != nil {
		t.Fatal(err)
	}
	r.v = v4
	if ok, _ := r.verify(t, r.token(t, "r1")); ok {
		t.Fatal("a new cache had keys it never fetched")
	}
}

// TestJWKSURLIsTheOnlyAddressFetched: jku and x5u in a token are never
// fetched, even when its kid is unknown and the configured set is fetched.
func TestJWKSURLIsTheOnlyAddressFetched(t *testing.T) {
	var trapped atomic.Int64
	trap := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { trapped.Add(1) }))
	defer trap.Close()
	r := newRemote(t, jwksOf(t, "r1"), "")
	if ok, _ := r.verify(t, r.token(t, "r2", "jku", trap.URL+"/jwks", "x5u", trap.URL+"/cert")); ok {
		t.Fatal("accepted a key only the token's headers name")
	}
	r.wantHits(t, 2, "the unknown kid")
	if n := trapped.Load(); n != 0 {
		t.Fatalf("fetched the token's jku/x5u %d times", n)
	}
}

// TestIssuerWithKeysAndJWKSURL: an issuer may have key files and a
// jwks_url; either verifies, and the files keep working while the address
// is down.
func TestIssuerWithKeysAndJWKSURL(t *testing.T) {
	srv := newJWKSServer(t, jwksOf(t, "r2"), "")
	clock := &fakeClock{t: now}
	yaml := "issuers:\n  - issuer: " + remoteIss + "\n    keys: [b.pem]\n    jwks_url: " + srv.URL + "\n    tenants: [\"*\"]\n"
	v, err := auth.NewVerifier(auth.Config{IssuersFile: issuersDir(t, yaml), Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	r := &remote{srv: srv, clock: clock, v: v}
	for _, kid := range []string{"r1", "r2"} { // r1 is b.pem (no kid: any kid may use it)
		if ok, why := r.verify(t, r.token(t, kid)); !ok {
			t.Fatalf("%s: %s", kid, why)
		}
	}
	srv.Close()
	clock.Add(2 * time.Hour)
	if ok, why := r.verify(t, r.token(t, "r1")); !ok {
		t.Fatalf("the key file while the address is down: %s", why)
	}
}
