package auth

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

// How key sets at a jwks_url are fetched and cached.
const (
	// JWKSDefaultMaxAge is how long a fetched key set is used when the
	// response has no Cache-Control max-age.
	JWKSDefaultMaxAge = time.Hour
	// JWKSMinMaxAge and JWKSMaxMaxAge bound the max-age a response may ask
	// for (no-store and no-cache count as the minimum).
	JWKSMinMaxAge = time.Minute
	JWKSMaxMaxAge = 24 * time.Hour
	// JWKSRetryInterval is the least time between two fetches that a token
	// can cause: one naming a kid the set does not hold, or any token after
	// a failed fetch. Invented kids cannot make the proxy hammer the
	// identity provider.
	JWKSRetryInterval = 30 * time.Second
	// JWKSMaxBytes is the largest key set document accepted.
	JWKSMaxBytes = 1 << 20
	// JWKSTimeout bounds one fetch, redirects included.
	JWKSTimeout = 10 * time.Second
)

// JWKSCache keeps the key sets fetched from jwks_url addresses. Give the
// Verifier that replaces another (after SIGHUP) the same cache: an address
// that cannot be fetched at reload then keeps its last good keys. Safe for
// concurrent use.
type JWKSCache struct {
	mu   sync.Mutex
	sets map[string]*remoteKeys
}

// NewJWKSCache returns an empty cache.
func NewJWKSCache() *JWKSCache { return &JWKSCache{sets: map[string]*remoteKeys{}} }

// get returns the entry for addr, creating it.
func (c *JWKSCache) get(addr string) *remoteKeys {
	c.mu.Lock()
	defer c.mu.Unlock()
	r, ok := c.sets[addr]
	if !ok {
		r = &remoteKeys{url: addr, client: jwksClient}
		c.sets[addr] = r
	}
	return r
}

// retain forgets every address not in keep.
func (c *JWKSCache) retain(keep map[string]bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for addr := range c.sets {
		if !keep[addr] {
			delete(c.sets, addr)
		}
	}
}

// jwksClient fetches key sets: a bounded time, at most three redirects and
// never from https to http. Proxies come from the environment.
var jwksClient = &http.Client{
	Timeout: JWKSTimeout,
	CheckRedirect: func(req *http.Request, via []*http.Request) error {
		if len(via) >= 3 {
			return errors.New("more than 3 redirects")
		}
		if via[0].URL.Scheme == "https" && req.URL.Scheme != "https" {
			return fmt.Errorf("redirected from https to %s", req.URL.Scheme)
		}
		return nil
	},
}

// remoteKeys is the cached key set of one jwks_url. The token being verified
// never says where keys come from: only the configured address is fetched.
type remoteKeys struct {
	url    string
	client *http.Client

	// mu is held during a fetch, so tokens arriving meanwhile wait for it
	// instead of fetching again.
	mu       sync.Mutex
	set      *keySet   // the last good key set; nil before the first
	fetched  time.Time // when set was fetched
	expires  time.Time // when set is due to be fetched again
	retryAt  time.Time // no fetch a token causes before this
	kidFetch time.Time // the last fetch caused by an unknown kid
	lastErr  error     // why the last fetch failed; nil after a good one
}

// keys returns the key set to verify a token with kid (empty when the
// token has none). It fetches first when the set is due (max-age passed)
// or when the kid is unknown, each no more often than JWKSRetryInterval
// allows; a failed fetch keeps the last good set. It returns nil when no
// set was ever fetched.
func (r *remoteKeys) keys(kid string, now time.Time, log *slog.Logger) *keySet {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch {
	case now.Before(r.retryAt):
	case r.set == nil || !now.Before(r.expires):
		r.fetch(now, log, "the cached key set expired")
	case kid != "" && !r.set.hasKid(kid) && (r.kidFetch.IsZero() || now.Sub(r.kidFetch) >= JWKSRetryInterval):
		r.kidFetch = now
		r.fetch(now, log, "a token names a key id the cached set does not hold")
	}
	return r.set
}

// refresh fetches now, whatever the cache says (start and SIGHUP). A
// failure keeps the last good set.
func (r *remoteKeys) refresh(now time.Time, log *slog.Logger) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.fetch(now, log, "loading the configuration")
}

// fetch gets the key set; r.mu is held.
func (r *remoteKeys) fetch(now time.Time, log *slog.Logger, why string) {
	set, maxAge, err := r.get()
	if err != nil {
		r.lastErr = err
		r.retryAt = now.Add(JWKSRetryInterval)
		if r.set != nil {
			log.Warn("fetching a JWKS failed; the last good keys stay", "url", r.url, "why", why, "err", err,
				"keys", len(r.set.keys), "fetched", r.fetched.UTC().Format(time.RFC3339), "retry_after", JWKSRetryInterval)
		} else {
			log.Error("fetching a JWKS failed; its issuer's tokens are refused until a fetch succeeds", "url", r.url, "why", why,
				"err", err, "retry_after", JWKSRetryInterval)
		}
		return
	}
	r.set, r.fetched, r.expires, r.retryAt, r.lastErr = set, now, now.Add(maxAge), time.Time{}, nil
	log.Info("fetched a JWKS", "url", r.url, "why", why, "keys", len(set.keys), "max_age", maxAge)
}

// get does one HTTP request and reads the key set and its max-age.
func (r *remoteKeys) get() (*keySet, time.Duration, error) {
	req, err := http.NewRequest(http.MethodGet, r.url, nil)
	if err != nil {
		return nil, 0, err
	}
	req.Header.Set("Accept", "application/jwk-set+json, application/json")
	resp, err := r.client.Do(req)
	if err != nil {
		return nil, 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
		return nil, 0, fmt.Errorf("HTTP status %s", resp.Status)
	}
	if resp.ContentLength > JWKSMaxBytes {
		return nil, 0, fmt.Errorf("response is %d bytes, larger than the %d allowed", resp.ContentLength, JWKSMaxBytes)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, JWKSMaxBytes+1))
	if err != nil {
		return nil, 0, fmt.Errorf("reading the response: %w", err)
	}
	if len(body) > JWKSMaxBytes {
		return nil, 0, fmt.Errorf("response is larger than the %d bytes allowed", JWKSMaxBytes)
	}
	keys, err := parseJWKS(bytes.TrimSpace(body), r.url)
	if err != nil {
		return nil, 0, err
	}
	return newKeySet(keys), cacheMaxAge(resp.Header), nil
}

// cacheMaxAge reads Cache-Control's max-age, clamped to [JWKSMinMaxAge,
// JWKSMaxMaxAge]; no-store and no-cache give the minimum, and no usable
// max-age gives JWKSDefaultMaxAge.
func cacheMaxAge(h http.Header) time.Duration {
	age := JWKSDefaultMaxAge
	for _, line := range h.Values("Cache-Control") {
		for _, d := range strings.Split(line, ",") {
			name, value, _ := strings.Cut(strings.TrimSpace(d), "=")
			switch strings.ToLower(name) {
			case "no-store", "no-cache":
				return JWKSMinMaxAge
			case "max-age":
				secs, err := strconv.ParseInt(strings.Trim(value, `"`), 10, 64)
				if err != nil || secs < 0 {
					continue
				}
				if secs > int64(JWKSMaxMaxAge/time.Second) {
					secs = int64(JWKSMaxMaxAge / time.Second)
				}
				age = time.Duration(secs) * time.Second
			}
		}
	}
	return max(JWKSMinMaxAge, min(age, JWKSMaxMaxAge))
}

// checkJWKSURL accepts an absolute https URL, or http to a loopback address
// (a key set fetched over plain http across a network could be replaced by
// anyone on the path, who could then sign any token).
func checkJWKSURL(raw string) error {
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		return fmt.Errorf("is not a URL (%v)", err)
	case u.Scheme != "https" && u.Scheme != "http":
		return errors.New("must be an https:// URL")
	case u.Host == "" || u.Hostname() == "":
		return errors.New("has no host; give an absolute URL such as https://idp.example.com/.well-known/jwks.json")
	case u.User != nil:
		return errors.New("holds credentials; key sets are public, give the URL without user:password@")
	case u.Fragment != "":
		return errors.New("has a #fragment; remove it")
	case u.Scheme == "http" && !isLoopbackHost(u.Hostname()):
		return errors.New("uses plain http to a host that is not loopback; use https (anyone on the path could replace the keys)")
	}
	return nil
}

func isLoopbackHost(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
