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
// naming its own tenant), comes from the uncached path. A LISTEN/NOTIFY
// channel carries the tenant as ChannelPrefix(value) (notify.go): the
// placeholder's prefix is cut out of the template too, and the session's
// own prefix spliced in.
//
// Statements that differ only in their constants share a template too
// (literals.go): a client using the simple protocol writes its values into
// the SQL text, and keying on the text alone would miss every time.
type Cache struct {
	r       *Rewriter
	entries *lru.Cache[string, *template]
	nonce   string
	version atomic.Int64 // the catalog version the entries were made under

	hits, misses, bypasses atomic.Int64
}

// Key prefixes keep the two kinds of key apart: one holds the SQL text, the
// other the text with its constants cut out.
const (
	exactKey   = "e"
	literalKey = "l"
)

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
	// Relation names split the same way (a tenant's own schema holds
	// its value).
	rels     [][]string
	relSlots [][]slot
	// fingerprintOfSQL: the fingerprint depends on a constant's value
	// (localtimestamp(3)), so it is taken from each statement itself.
	fingerprintOfSQL bool
	// negated are the literals the output negates ("-" then the slot):
	// an integer 0 there comes out of the deparser as 0, not -0.
	negated []int
}

// slot names what goes into a gap: value index of claim number claim, the
// channel prefix of the claim's only value (index channelSlot), or (claim
// -1) the client's literal number index.
type slot struct{ claim, index int }

// channelSlot is the index of a slot holding ChannelPrefix of the claim's
// value: LISTEN/NOTIFY channels carry the tenant as a hash (notify.go),
// which is cut out of a template like the value itself.
const channelSlot = -1

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
	key := cacheKey(exactKey, sql, snap.Version(), claims, scope)
	if t, ok := c.entries.Get(key); ok {
		if t.res == nil {
			c.bypasses.Add(1)
			return c.r.Rewrite(sql, scope, snap)
		}
		c.hits.Add(1)
		return t.fill(claims, scope, nil), nil
	}
	if res, err := c.rewriteLiterals(sql, claims, scope, snap); res != nil || err != nil {
		return res, err
	}
	c.misses.Add(1)
	t := c.build(sql, claims, scope, snap, nil)
	c.entries.Add(key, t)
	if t.res == nil {
		return c.r.Rewrite(sql, scope, snap)
	}
	return t.fill(claims, scope, nil), nil
}

// shape returns the scope's claim names in a fixed order, and whether every
// value splices back exactly as the rewriter would quote it (printable
// ASCII without quote or backslash, and not empty).
func (c *Cache) shape(scope Scope) ([]string, bool) {
	if scope.Unscoped {
		return nil, false // rare, and never templated
	}
	if c.r.cfg.TenantSchema != "" {
		if own, err := TenantSchemaName(c.r.cfg.TenantSchema, scope.Values[""]); err != nil || !plainIdentifier(own) {
			// The rewriter quotes a schema name that is not plain; a
			// marker is always plain, so the spliced name would differ.
			return nil, false
		}
	}
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

// cacheKey is the kind of key, the catalog version, the scope's shape and
// the SQL text.
func cacheKey(kind, sql string, version int64, claims []string, scope Scope) string {
	var b strings.Builder
	b.Grow(len(sql) + 32)
	b.WriteString(kind)
	if scope.ReadOnly {
		b.WriteByte('r')
	}
	if scope.Fence {
		b.WriteByte('f')
	}
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
// markers: the tenant markers, and the literal markers lits put in the SQL
// (nil when the SQL is a client's own text).
func (c *Cache) build(sql string, claims []string, scope Scope, snap *catalog.Snapshot, lits *literalMarkers) *template {
	if len(claims) > 999 {
		return &template{}
	}
	placeholder := Scope{Values: make(map[string][]string, len(claims)), ReadOnly: scope.ReadOnly, Fence: scope.Fence}

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
	if err != nil || res.CopyIn != nil || lits != nil && res.literalSensitive {
		// Refusals may depend on the real values; a COPY's row checks
		// carry them. Both always take the uncached path. A decision
		// that read a constant cannot be made for a literal marker.
		return &template{}
	}
	t := &template{res: res}
	var ok bool
	if t.parts, t.slots, ok = c.split(res.SQL, scope, claims, lits, true); !ok {
		return &template{}
	}
	for _, r := range res.Rules {
		parts, slots, ok := c.split(r.Rule, scope, claims, lits, false)
		if !ok {
			return &template{}
		}
		t.rules = append(t.rules, parts)
		t.rslot = append(t.rslot, slots)
		if parts, slots, ok = c.split(r.Relation, scope, claims, lits, false); !ok {
			return &template{}
		}
		t.rels = append(t.rels, parts)
		t.relSlots = append(t.relSlots, slots)
	}
	if lits != nil && res.Decision == Rewritten {
		t.negated = negatedLiterals(t.parts, t.slots, nil)
		for i := range t.rules {
			t.negated = negatedLiterals(t.rules[i], t.rslot[i], t.negated)
			t.negated = negatedLiterals(t.rels[i], t.relSlots[i], t.negated)
		}
	}
	return t
}

// negatedLiterals appends to out the literal slots that follow a "-".
func negatedLiterals(parts []string, slots []slot, out []int) []int {
	for i, s := range slots {
		if s.claim < 0 && strings.HasSuffix(parts[i], "-") {
			out = append(out, s.index)
		}
	}
	return out
}

// split cuts s at every marker. It reports false when the nonce appears in
// any other form (a marker changed on its way through the rewriter): such
// output cannot be spliced and the statement never templates. With
// literal markers, each must appear as the whole constant token it was
// (exactly once in the SQL when once is set).
func (c *Cache) split(s string, scope Scope, claims []string, lits *literalMarkers, once bool) ([]string, []slot, bool) {
	type cut struct {
		start, end int
		slot       slot
	}
	var cuts []cut
	const tail = len("c000v000x")
	for off := 0; ; {
		i := strings.Index(s[off:], c.nonce)
		if i < 0 {
			break
		}
		i += off
		rest := s[i+len(c.nonce):]
		if lits != nil && strings.HasPrefix(rest, "l") {
			n, end, ok := lits.stringAt(s, i)
			if !ok {
				return nil, nil, false
			}
			cuts = append(cuts, cut{i - 1, end, slot{claim: -1, index: n}})
			off = end
			continue
		}
		if len(rest) < tail {
			return nil, nil, false
		}
		m := rest[:tail]
		ci, err1 := strconv.Atoi(m[1:4])
		vi, err2 := strconv.Atoi(m[5:8])
		if m[0] != 'c' || m[4] != 'v' || m[8] != 'x' || err1 != nil || err2 != nil ||
			ci >= len(claims) || vi >= len(scope.Values[claims[ci]]) {
			return nil, nil, false
		}
		cuts = append(cuts, cut{i, i + len(c.nonce) + tail, slot{ci, vi}})
		off = i + len(c.nonce) + tail
	}
	for ci, name := range claims {
		if name != "" || len(scope.Values[name]) != 1 {
			continue // a channel needs one primary tenant (notify.go)
		}
		prefix := ChannelPrefix(c.marker(ci, 0))
		for off := 0; ; {
			i := strings.Index(s[off:], prefix)
			if i < 0 {
				break
			}
			i += off
			cuts = append(cuts, cut{i, i + len(prefix), slot{ci, channelSlot}})
			off = i + len(prefix)
		}
	}
	slices.SortStableFunc(cuts, func(a, b cut) int { return a.start - b.start })
	if lits != nil {
		numbers, ok := lits.numbers(s)
		if !ok {
			return nil, nil, false
		}
		for _, n := range numbers {
			cuts = append(cuts, cut{n.start, n.end, slot{claim: -1, index: n.index}})
		}
		slices.SortStableFunc(cuts, func(a, b cut) int { return a.start - b.start })
		seen := make([]int, len(lits.kinds))
		for _, ct := range cuts {
			if ct.slot.claim < 0 {
				seen[ct.slot.index]++
			}
		}
		for _, k := range seen {
			if once && k != 1 {
				return nil, nil, false
			}
		}
	}
	parts := make([]string, 0, len(cuts)+1)
	slots := make([]slot, 0, len(cuts))
	prev := 0
	for _, ct := range cuts {
		if ct.start < prev {
			return nil, nil, false
		}
		parts = append(parts, s[prev:ct.start])
		slots = append(slots, ct.slot)
		prev = ct.end
	}
	return append(parts, s[prev:]), slots, true
}

// fill splices the scope's values, and the client's constants (the text of
// each literal the template was cut at), into the template.
func (t *template) fill(claims []string, scope Scope, lits []string) *Result {
	res := *t.res
	res.SQL = splice(t.parts, t.slots, claims, scope, lits)
	if len(t.rules) > 0 {
		res.Rules = make([]Rule, len(t.res.Rules))
		for i := range t.res.Rules {
			res.Rules[i] = Rule{Relation: splice(t.rels[i], t.relSlots[i], claims, scope, lits), Rule: splice(t.rules[i], t.rslot[i], claims, scope, lits)}
		}
	}
	return &res
}

func splice(parts []string, slots []slot, claims []string, scope Scope, lits []string) string {
	if len(slots) == 0 {
		return parts[0]
	}
	value := func(s slot) string {
		switch {
		case s.claim < 0:
			return lits[s.index]
		case s.index == channelSlot:
			return ChannelPrefix(scope.Values[claims[s.claim]][0])
		}
		return scope.Values[claims[s.claim]][s.index]
	}
	n := 0
	for _, p := range parts {
		n += len(p)
	}
	for _, s := range slots {
		if s.claim >= 0 && s.index == channelSlot {
			n += channelPrefixLen // not hashed twice
			continue
		}
		n += len(value(s))
	}
	var b strings.Builder
	b.Grow(n)
	for i, s := range slots {
		b.WriteString(parts[i])
		b.WriteString(value(s))
	}
	b.WriteString(parts[len(parts)-1])
	return b.String()
}
