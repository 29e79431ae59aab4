package rewrite

import (
	"crypto/rand"
	"encoding/binary"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	pg "github.com/pganalyze/pg_query_go/v5"
	"github.com/pganalyze/pg_query_go/v5/parser"
	"github.com/tenantproxy/tenantproxy/catalog"
	"google.golang.org/protobuf/encoding/protowire"
)

// This file lets statements that differ only in their constants share one
// template: "WHERE aid = 17" and "WHERE aid = 42" are the same statement
// with a different literal, and a client on the simple protocol sends a new
// one every time.
//
// The Postgres scanner finds the string, integer and float constants. Each
// is replaced by a marker of the same token kind: a string that cannot occur
// in client SQL ('<nonce>l<n>x'), or a ten-digit integer (or the same with
// ".5", a float) from a range the statement does not contain. The grammar
// sees the same sequence of token kinds as in the client's statement, so
// the parse tree has the same shape; the marked statement is rewritten and
// verified like any other, and the client's constants are spliced back
// where the markers come out, each as the exact token the client wrote. The
// template is kept only when
//   - every statement of the string is a query or transaction control (not
//     SET, COPY, EXPLAIN, PREPARE..., whose options and values the
//     rewriter reads),
//   - no decision of the rewriter read a constant's value (a tenant column
//     set to a constant, current_setting's name): the walker records such
//     reads,
//   - every marker comes out exactly once, whole, as the token it went in.
// Anything else is cached by its exact text, as before.

// literal is one constant token of a statement.
type literal struct {
	start, end int
	kind       byte // 's' string, 'i' integer, 'f' other number
}

// scanLiterals returns the string and numeric constants of sql as the
// Postgres scanner splits them. It reports false when the statement should
// not be cut at its constants: it does not scan, holds a NUL, is not valid
// UTF-8 (the parser refuses both), or uses Unicode escapes (U&'...'
// UESCAPE '!', whose meaning depends on a second constant).
func scanLiterals(sql string) ([]literal, bool) {
	if strings.IndexByte(sql, 0) >= 0 || !utf8.ValidString(sql) {
		return nil, false
	}
	// The scanner's protobuf output is read here directly: decoding it
	// into messages costs as much again as scanning.
	buf, err := parser.ScanToProtobuf(sql)
	if err != nil {
		return nil, false
	}
	var out []literal
	ok := true
	err = eachToken(buf, func(start, end int, token pg.Token) {
		var kind byte
		switch token {
		case pg.Token_SCONST:
			kind = 's'
		case pg.Token_ICONST:
			kind = 'i'
		case pg.Token_FCONST:
			kind = 'f'
		case pg.Token_USCONST, pg.Token_UIDENT, pg.Token_UESCAPE:
			ok = false
			return
		default:
			return
		}
		l := literal{start, end, kind}
		if l.start < 0 || l.end <= l.start || l.end > len(sql) || !looksLike(sql[l.start:l.end], kind) {
			ok = false
			return
		}
		out = append(out, l)
	})
	if err != nil || !ok {
		return nil, false
	}
	return out, true
}

// eachToken calls fn for every token of a serialized pg_query.ScanResult
// (field 2, repeated ScanToken: start 1, end 2, token 4).
func eachToken(buf []byte, fn func(start, end int, token pg.Token)) error {
	for len(buf) > 0 {
		num, typ, n := protowire.ConsumeTag(buf)
		if n < 0 {
			return protowire.ParseError(n)
		}
		buf = buf[n:]
		if num != 2 || typ != protowire.BytesType {
			if n = protowire.ConsumeFieldValue(num, typ, buf); n < 0 {
				return protowire.ParseError(n)
			}
			buf = buf[n:]
			continue
		}
		msg, n := protowire.ConsumeBytes(buf)
		if n < 0 {
			return protowire.ParseError(n)
		}
		buf = buf[n:]
		var start, end, token uint64
		for len(msg) > 0 {
			num, typ, n := protowire.ConsumeTag(msg)
			if n < 0 {
				return protowire.ParseError(n)
			}
			msg = msg[n:]
			if typ != protowire.VarintType {
				if n = protowire.ConsumeFieldValue(num, typ, msg); n < 0 {
					return protowire.ParseError(n)
				}
				msg = msg[n:]
				continue
			}
			v, n := protowire.ConsumeVarint(msg)
			if n < 0 {
				return protowire.ParseError(n)
			}
			msg = msg[n:]
			switch num {
			case 1:
				start = v
			case 2:
				end = v
			case 4:
				token = v
			}
		}
		fn(int(int32(start)), int(int32(end)), pg.Token(token))
	}
	return nil
}

// looksLike checks that a token is spelt as its kind is: a quoted or
// dollar-quoted string (E'...' too), or digits with a point or exponent.
func looksLike(text string, kind byte) bool {
	if kind == 's' {
		switch {
		case text[0] == '$':
			return len(text) >= 4 && text[len(text)-1] == '$'
		case text[0] == 'E' || text[0] == 'e':
			return len(text) >= 3 && text[1] == '\'' && text[len(text)-1] == '\''
		}
		return len(text) >= 2 && text[0] == '\'' && text[len(text)-1] == '\''
	}
	if text[0] < '0' || text[0] > '9' && text[0] != '.' {
		return false
	}
	for i := 0; i < len(text); i++ {
		b := text[i]
		if !(b >= '0' && b <= '9' || b == '.' || b == 'e' || b == 'E' || b == '+' || b == '-' || b == '_') {
			return false
		}
	}
	return kind == 'f' || !strings.ContainsAny(text, ".eE")
}

// literalMarkers are the markers put in place of one statement's constants.
type literalMarkers struct {
	nonce string
	kinds []byte // of each literal, in order
	base  int    // number markers are base+i
}

const (
	markerDigits = 10
	markerLow    = 1_000_000_000
	markerHigh   = 2_000_000_000 // below 2^31: an integer marker stays an integer constant
)

// markLiterals returns sql with its constants replaced by markers.
func (c *Cache) markLiterals(sql string, lits []literal) (*literalMarkers, string, bool) {
	if len(lits) > 1_000_000 {
		return nil, "", false
	}
	m := &literalMarkers{nonce: c.nonce, kinds: make([]byte, len(lits))}
	for i, l := range lits {
		m.kinds[i] = l.kind
	}
	// A number marker must not occur in the statement already.
	for range 4 {
		var b [8]byte
		if _, err := rand.Read(b[:]); err != nil {
			return nil, "", false
		}
		m.base = markerLow + int(binary.LittleEndian.Uint64(b[:])%uint64(markerHigh-markerLow-len(lits)))
		if !m.numberIn(sql) {
			break
		}
		m.base = 0
	}
	if m.base == 0 {
		return nil, "", false
	}
	var b strings.Builder
	b.Grow(len(sql) + 32*len(lits))
	prev := 0
	want := make([]literal, len(lits))
	for i, l := range lits {
		b.WriteString(sql[prev:l.start])
		want[i].start, want[i].kind = b.Len(), l.kind
		b.WriteString(m.marker(i))
		want[i].end = b.Len()
		prev = l.end
	}
	b.WriteString(sql[prev:])
	marked := b.String()
	// The scanner must split the marked statement as it split the
	// client's: markers can glue to what follows where the client's
	// constants did not ($$a$$$$b$$ is two constants; two string markers
	// in a row, '..''..', are one).
	if got, ok := scanLiterals(marked); !ok || !slices.Equal(got, want) {
		return nil, "", false
	}
	return m, marked, true
}

// marker is what stands for literal i.
func (m *literalMarkers) marker(i int) string {
	switch m.kinds[i] {
	case 'i':
		return strconv.Itoa(m.base + i)
	case 'f':
		return strconv.Itoa(m.base+i) + ".5"
	}
	return "'" + m.nonce + "l" + strconv.Itoa(i) + "x'"
}

// numberIn reports whether any ten digits in a row in s read as a number
// marker.
func (m *literalMarkers) numberIn(s string) bool {
	for i := 0; i < len(s); {
		if !isDigit(s[i]) {
			i++
			continue
		}
		j := i
		for j < len(s) && isDigit(s[j]) {
			j++
		}
		for k := i; k+markerDigits <= j; k++ {
			if m.isMarker(s[k : k+markerDigits]) {
				return true
			}
		}
		i = j
	}
	return false
}

func (m *literalMarkers) isMarker(digits string) bool {
	v, err := strconv.Atoi(digits)
	return err == nil && v >= m.base && v < m.base+len(m.kinds)
}

// stringAt reads the string marker whose nonce starts at s[i]: it must be
// a whole token, '<nonce>l<n>x', not glued to a prefix (E”, U&”).
func (m *literalMarkers) stringAt(s string, i int) (index, end int, ok bool) {
	if i < 1 || s[i-1] != '\'' || i >= 2 && identByte(s[i-2]) {
		return 0, 0, false
	}
	j := i + len(m.nonce) + 1 // past the 'l'
	k := j
	for k < len(s) && isDigit(s[k]) {
		k++
	}
	n, err := strconv.Atoi(s[j:k])
	if err != nil || k+2 > len(s) || s[k] != 'x' || s[k+1] != '\'' ||
		n >= len(m.kinds) || m.kinds[n] != 's' || strconv.Itoa(n) != s[j:k] {
		return 0, 0, false
	}
	return n, k + 2, true
}

// numberCut is a number marker found in rewritten output.
type numberCut struct{ start, end, index int }

// numbers finds the number markers in s. It reports false when one is not
// a whole token of its kind.
func (m *literalMarkers) numbers(s string) ([]numberCut, bool) {
	var out []numberCut
	for i := 0; i < len(s); {
		if !isDigit(s[i]) {
			i++
			continue
		}
		j := i
		for j < len(s) && isDigit(s[j]) {
			j++
		}
		if j-i < markerDigits {
			i = j
			continue
		}
		if j-i > markerDigits || !m.isMarker(s[i:j]) {
			if m.numberIn(s[i:j]) {
				return nil, false // a marker inside a longer number
			}
			i = j
			continue
		}
		n, _ := strconv.Atoi(s[i:j])
		n -= m.base
		end := j
		if m.kinds[n] == 'f' {
			if !strings.HasPrefix(s[j:], ".5") {
				return nil, false
			}
			end = j + 2
		}
		if m.kinds[n] == 's' || i > 0 && glues(s[i-1]) || end < len(s) && glues(s[end]) {
			return nil, false
		}
		out = append(out, numberCut{i, end, n})
		i = end
	}
	return out, true
}

func isDigit(b byte) bool { return b >= '0' && b <= '9' }

// identByte reports whether b can be part of an identifier or a constant's
// prefix.
func identByte(b byte) bool {
	return b >= 0x80 || b == '_' || b == '$' || b == '&' || isDigit(b) || b|0x20 >= 'a' && b|0x20 <= 'z'
}

// glues reports whether b next to a number would make it part of another
// token.
func glues(b byte) bool { return identByte(b) || b == '.' || b == '"' || b == '\'' }

// shapeText is sql with each constant reduced to its kind: statements with
// the same shape text share a template.
func shapeText(sql string, lits []literal) string {
	var b strings.Builder
	b.Grow(len(sql))
	prev := 0
	for _, l := range lits {
		b.WriteString(sql[prev:l.start])
		b.WriteByte(0)
		b.WriteByte(l.kind)
		prev = l.end
	}
	b.WriteString(sql[prev:])
	return b.String()
}

// rewriteLiterals serves sql from a template shared by every statement of
// the same shape, making it on a miss. It returns nil and no error when
// the statement has no constants or its shape does not template: the
// caller caches it by its exact text.
func (c *Cache) rewriteLiterals(sql string, claims []string, scope Scope, snap *catalog.Snapshot) (*Result, error) {
	lits, ok := scanLiterals(sql)
	if !ok || len(lits) == 0 {
		return nil, nil
	}
	key := cacheKey(literalKey, shapeText(sql, lits), snap.Version(), claims, scope)
	t, ok := c.entries.Get(key)
	made := false
	switch {
	case ok && t.res == nil:
		return nil, nil
	case ok:
		c.hits.Add(1)
	default:
		m, marked, ok := c.markLiterals(sql, lits)
		if !ok {
			return nil, nil
		}
		c.misses.Add(1)
		t = c.build(marked, claims, scope, snap, m)
		if t.res != nil {
			t.fingerprintOfSQL = t.res.Fingerprint != Fingerprint(sql)
		}
		c.entries.Add(key, t)
		if t.res == nil {
			return nil, nil
		}
		made = true
	}
	// A statement that passes unchanged is the client's own text; a
	// rewritten one is the deparser's, which spells constants its way.
	texts := make([]string, len(lits))
	for i, l := range lits {
		texts[i] = sql[l.start:l.end]
		if t.res.Decision == Rewritten {
			if texts[i], ok = canonicalLiteral(texts[i], l.kind); !ok {
				c.bypasses.Add(1)
				return c.r.Rewrite(sql, scope, snap)
			}
		}
	}
	for _, i := range t.negated {
		if texts[i] == "0" {
			// -0 is the integer 0, which the deparser prints without
			// the sign the template holds.
			c.bypasses.Add(1)
			return c.r.Rewrite(sql, scope, snap)
		}
	}
	if made {
		// The statement that made the template is also kept under its
		// own text, so repeating it exactly (a constant LIMIT in a
		// prepared statement) skips the scanner.
		c.entries.Add(cacheKey(exactKey, sql, snap.Version(), claims, scope), t.bind(texts, sql))
	}
	res := t.fill(claims, scope, texts)
	if t.fingerprintOfSQL {
		res.Fingerprint = Fingerprint(sql)
	}
	return res, nil
}

// bind returns the template with the literal slots filled with lits,
// leaving the tenant slots.
func (t *template) bind(lits []string, sql string) *template {
	out := &template{res: t.res}
	if t.fingerprintOfSQL {
		res := *t.res
		res.Fingerprint = Fingerprint(sql)
		out.res = &res
	}
	out.parts, out.slots = bindSlots(t.parts, t.slots, lits)
	for i := range t.rules {
		parts, slots := bindSlots(t.rules[i], t.rslot[i], lits)
		out.rules = append(out.rules, parts)
		out.rslot = append(out.rslot, slots)
		parts, slots = bindSlots(t.rels[i], t.relSlots[i], lits)
		out.rels = append(out.rels, parts)
		out.relSlots = append(out.relSlots, slots)
	}
	return out
}

func bindSlots(parts []string, slots []slot, lits []string) ([]string, []slot) {
	outParts := []string{parts[0]}
	var outSlots []slot
	for i, s := range slots {
		if s.claim < 0 {
			outParts[len(outParts)-1] += lits[s.index] + parts[i+1]
			continue
		}
		outSlots = append(outSlots, s)
		outParts = append(outParts, parts[i+1])
	}
	return outParts, outSlots
}

// canonicalLiteral spells a constant as the deparser prints its value, so
// that a template filled with the client's constants is byte for byte the
// rewriter's own output: strings as '...' (E'...' when they hold a
// backslash) with quotes and backslashes doubled, integers without leading
// zeros, other numbers as written. It reports false for spellings it does
// not decode (escape strings with numeric or Unicode escapes, strings
// continued over lines): those statements are rewritten uncached.
func canonicalLiteral(text string, kind byte) (string, bool) {
	switch kind {
	case 'i':
		t := strings.TrimLeft(text, "0")
		if t == "" {
			t = "0"
		}
		return t, true
	case 'f':
		return text, true
	}
	var value string
	switch {
	case text[0] == '$':
		tag := text[:strings.IndexByte(text[1:], '$')+2]
		value = text[len(tag) : len(text)-len(tag)]
	case text[0] == '\'':
		body := text[1 : len(text)-1]
		if strings.Contains(strings.ReplaceAll(body, "''", ""), "'") {
			return "", false // 'a' 'b' over lines: one constant of two parts
		}
		value = strings.ReplaceAll(body, "''", "'")
	default: // E'...'
		var ok bool
		if value, ok = unescapeE(text[2 : len(text)-1]); !ok {
			return "", false
		}
	}
	if value == text[1:len(text)-1] && text[0] == '\'' && !strings.ContainsAny(value, `'\`) {
		return text, true
	}
	var b strings.Builder
	b.Grow(len(value) + 3)
	if strings.IndexByte(value, '\\') >= 0 {
		b.WriteByte('E')
	}
	b.WriteByte('\'')
	for i := 0; i < len(value); i++ {
		if value[i] == '\'' || value[i] == '\\' {
			b.WriteByte(value[i])
		}
		b.WriteByte(value[i])
	}
	b.WriteByte('\'')
	return b.String(), true
}

// unescapeE decodes the body of an E'...' string for the escapes whose
// value is one byte it can name: \b \f \n \r \t, a backslash or quote, and
// any other character standing for itself. Octal, \x and Unicode escapes,
// and a body continued over lines, report false.
func unescapeE(body string) (string, bool) {
	var b strings.Builder
	for i := 0; i < len(body); i++ {
		c := body[i]
		switch {
		case c == '\'':
			if i+1 >= len(body) || body[i+1] != '\'' {
				return "", false
			}
			i++
			b.WriteByte('\'')
		case c != '\\':
			b.WriteByte(c)
		case i+1 >= len(body):
			return "", false
		default:
			i++
			switch e := body[i]; e {
			case 'b':
				b.WriteByte('\b')
			case 'f':
				b.WriteByte('\f')
			case 'n':
				b.WriteByte('\n')
			case 'r':
				b.WriteByte('\r')
			case 't':
				b.WriteByte('\t')
			case 'x', 'u', 'U', '0', '1', '2', '3', '4', '5', '6', '7':
				return "", false
			default:
				b.WriteByte(e)
			}
		}
	}
	return b.String(), true
}
