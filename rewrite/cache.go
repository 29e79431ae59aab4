package rewrite

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"

	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/tenantproxy/tenantproxy/catalog"
)

// Cache remembers rewrites so that a statement is parsed, rewritten and
// verified once however many sessions and tenants run it.
//
// A statement is rewritten for a placeholder scope: the same claims, the
// same number of values each, every value a marker that cannot occur in
// SQL a client sends. The output is kept as a template, and a session's
// own values are spliced in where the markers are. The key is the SQL
// text, the catalog version and the scope's shape (its claims and how many
// values each has). When the placeholder rewrite is refused, or the
// session's values need quoting the splice does not reproduce, the cache
// steps aside and the statement is rewritten for the real scope: every
// refusal, and every decision that depends on a tenant's value (an INSERT
// naming its own tenant), comes from the uncached path.
type Cache struct {
	r       *Rewriter
	entries *lru.Cache[string, *template]
	nonce   string
	version atomic.Int64 // the catalog version the entries were made under

	hits, misses, bypasses atomic.Int64
}

// CacheStats counts the cache's lookups.
type CacheStats struct {
	// Hits were served from a template; Misses made one (or found the
	// statement cannot be templated); Bypasses went straight to the
	// uncached path (a scope whose values need quoting, SQL that contains
	// the marker, a statement known not to template).
	Hits, Misses, Bypasses int64
	// Entries is the number of templates held.
	Entries int
}

// template is a cached rewrite: the Result with its SQL (and rules) split at
// the markers. A nil result means the statement does not template and is
// always rewritten for the real scope.
type template struct {
	res   *Result
	parts []string   // SQL between the slots; len(parts) == len(slots)+1
	slots []slot     // which value goes between parts[i] and parts[i+1]
	rules [][]string // Rule texts split the same way, with ruleSlots
	rslot [][]slot
}

type slot struct{ claim, index int }

// NewCache returns a cache of at most size templates in front of r.
func NewCache(r *Rewriter, size int) (*Cache, error) {
	if size <= 0 {
		return nil, fmt.Errorf("rewrite cache size must be positive, got %d", size)
	}
	entries, err := lru.New[string, *template](size)
	if err != nil {
		return nil, err
	}
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		return nil, err
	}
	return &Cache{r: r, entries: entries, nonce: "tpx" + hex.EncodeToString(b)}, nil
}

// Stats returns the cache's counters.
func (c *Cache) Stats() CacheStats {
	return CacheStats{Hits: c.hits.Load(), Misses: c.misses.Load(), Bypasses: c.bypasses.Load(), Entries: c.entries.Len()}
}

// Rewrite is Rewriter.Rewrite through the cache. A Result from the cache
// shares its slices with other callers' Results: treat it as read-only.
func (c *Cache) Rewrite(sql string, scope Scope, snap *catalog.Snapshot) (*Result, error) {
	if snap == nil {
		return c.r.Rewrite(sql, scope, snap)
	}
	claims, ok := c.shape(scope)
	if !ok || strings.Contains(sql, c.nonce) {
		c.bypasses.Add(1)
		return c.r.Rewrite(sql, scope, snap)
	}
	// A catalog reload: templates of the old version can never match again
	// (the version is in the key); drop them now. Load first: the common
	// case writes nothing shared.
	if v := snap.Version(); c.version.Load() != v && c.version.Swap(v) != v {
		c.entries.Purge()
	}
	key := cacheKey(sql, snap.Version(), claims, scope)
	if t, ok := c.entries.Get(key); ok {
		if t.res == nil {
			c.bypasses.Add(1)
			return c.r.Rewrite(sql, scope, snap)
		}
		c.hits.Add(1)
		return t.fill(claims, scope), nil
	}
	c.misses.Add(1)
	t := c.build(sql, claims, scope, snap)
	c.entries.Add(key, t)
	if t.res == nil {
		return c.r.Rewrite(sql, scope, snap)
	}
	return t.fill(claims, scope), nil
}

// shape returns the scope's claim names in a fixed order, and whether every
// value splices back exactly as the rewriter would quote it (printable
// ASCII without quote or backslash, and not empty).
func (c *Cache) shape(scope Scope) ([]string, bool) {
	claims := make([]string, 0, len(scope.Values))
	for name, vals := range scope.Values {
		for _, v := range vals {
			if v == "" {
				return nil, false
			}
			for i := 0; i < len(v); i++ {
				if b := v[i]; b < 0x20 || b > 0x7e || b == '\'' || b == '\\' {
					return nil, false
				}
			}
		}
		claims = append(claims, name)
	}
	slices.Sort(claims)
	return claims, true
}

// cacheKey is the SQL text, the catalog version and the scope's shape.
func cacheKey(sql string, version int64, claims []string, scope Scope) string {
	var b strings.Builder
	b.Grow(len(sql) + 32)
	b.WriteString(strconv.FormatInt(version, 10))
	for _, name := range claims {
		b.WriteByte(0)
		b.WriteString(name)
		b.WriteByte('=')
		b.WriteString(strconv.Itoa(len(scope.Values[name])))
	}
	b.WriteByte(0)
	b.WriteString(sql)
	return b.String()
}

// marker is the placeholder for value index of claim number claim.
func (c *Cache) marker(claim, index int) string {
	return fmt.Sprintf("%sc%03dv%03dx", c.nonce, claim, index)
}

// build rewrites sql for the placeholder scope and splits the output at the
// markers.
func (c *Cache) build(sql string, claims []string, scope Scope, snap *catalog.Snapshot) *template {
	if len(claims) > 999 {
		return &template{}
	}
	placeholder := Scope{Values: make(map[string][]string, len(claims))}
	for ci, name := range claims {
		n := len(scope.Values[name])
		if n > 999 {
			return &template{}
		}
		vals := make([]string, n)
		for vi := range vals {
			vals[vi] = c.marker(ci, vi)
		}
		placeholder.Values[name] = vals
	}
	res, err := c.r.Rewrite(sql, placeholder, snap)
	if err != nil || res.CopyIn != nil {
		// Refusals may depend on the real values; a COPY's row checks
		// carry them. Both always take the uncached path.
		return &template{}
	}
	t := &template{res: res}
	var ok bool
	if t.parts, t.slots, ok = c.split(res.SQL, scope, claims); !ok {
		return &template{}
	}
	for _, r := range res.Rules {
		parts, slots, ok := c.split(r.Rule, scope, claims)
		if !ok {
			return &template{}
		}
		t.rules = append(t.rules, parts)
		t.rslot = append(t.rslot, slots)
	}
	return t
}

// split cuts s at every marker. It reports false when the nonce appears in
// any other form (a marker changed on its way through the rewriter): such
// output cannot be spliced and the statement never templates.
func (c *Cache) split(s string, scope Scope, claims []string) ([]string, []slot, bool) {
	var parts []string
	var slots []slot
	const tail = len("c000v000x")
	for {
		i := strings.Index(s, c.nonce)
		if i < 0 {
			return append(parts, s), slots, true
		}
		if len(s) < i+len(c.nonce)+tail {
			return nil, nil, false
		}
		m := s[i+len(c.nonce) : i+len(c.nonce)+tail]
		ci, err1 := strconv.Atoi(m[1:4])
		vi, err2 := strconv.Atoi(m[5:8])
		if m[0] != 'c' || m[4] != 'v' || m[8] != 'x' || err1 != nil || err2 != nil ||
			ci >= len(claims) || vi >= len(scope.Values[claims[ci]]) {
			return nil, nil, false
		}
		parts = append(parts, s[:i])
		slots = append(slots, slot{ci, vi})
		s = s[i+len(c.nonce)+tail:]
	}
}

// fill splices the scope's values into the template.
func (t *template) fill(claims []string, scope Scope) *Result {
	res := *t.res
	res.SQL = splice(t.parts, t.slots, claims, scope)
	if len(t.rules) > 0 {
		res.Rules = make([]Rule, len(t.res.Rules))
		for i, r := range t.res.Rules {
			res.Rules[i] = Rule{Relation: r.Relation, Rule: splice(t.rules[i], t.rslot[i], claims, scope)}
		}
	}
	return &res
}

func splice(parts []string, slots []slot, claims []string, scope Scope) string {
	if len(slots) == 0 {
		return parts[0]
	}
	n := 0
	for _, p := range parts {
		n += len(p)
	}
	for _, s := range slots {
		n += len(scope.Values[claims[s.claim]][s.index])
	}
	var b strings.Builder
	b.Grow(n)
	for i, s := range slots {
		b.WriteString(parts[i])
		b.WriteString(scope.Values[claims[s.claim]][s.index])
	}
	b.WriteString(parts[len(parts)-1])
	return b.String()
}
