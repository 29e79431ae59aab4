package proxy

import (
	"bytes"
	"errors"
	"fmt"
	"github.com/jackc/pgx/v5/pgproto3"
	"slices"
	"strconv"
	"strings"

	"github.com/tenantproxy/tenantproxy/rewrite"
)

// copyFilter checks the rows of COPY ... FROM STDIN into a tenant-bound
// table as they stream through: every tenant field must hold one of the
// session's values, and the tenant columns the client left out are
// appended. Rows are cut at line ends (outside CSV quotes); a row split
// across CopyData messages waits for its end. Memory is one partial row.
type copyFilter struct {
	spec    *rewrite.CopyIn
	pending []byte // the start of a row whose end has not arrived
	scanned int    // bytes of pending already scanned
	quoted  bool   // CSV: the scan is inside quotes
	row     int    // rows seen, for messages
	header  bool   // the header line is still to come
	ended   bool   // the text end marker \. (binary: the trailer) was seen
	// headerDone: the binary format's header has gone through.
	headerDone bool
	// stmt is the COPY statement, for the audit event of a refusal.
	stmt stmtRef
	// watch: shadow mode checks the rows but sends them as the client
	// wrote them; the first row enforce mode would refuse is recorded.
	watch bool
	// keys are the distinct foreign keys the rows set, in row order, for
	// the check after them (copykeys.go); seen has each column's.
	keys []copyKey
	seen []map[string]struct{}
}

func newCopyFilter(spec *rewrite.CopyIn) *copyFilter {
	return &copyFilter{spec: spec, header: spec.Header}
}

// feed takes one CopyData payload and returns the bytes to send upstream,
// or an error naming the first row that may not be copied.
func (f *copyFilter) feed(data []byte) ([]byte, error) {
	if f.spec.Binary {
		return f.binaryFeed(data)
	}
	f.pending = append(f.pending, data...)
	var out []byte
	start := 0
	for i := f.scanned; i < len(f.pending); i++ {
		c := f.pending[i]
		if f.spec.CSV {
			switch {
			case f.quoted && c == f.spec.Escape && f.spec.Escape != f.spec.Quote && i+1 < len(f.pending):
				i++ // an escaped character inside quotes
				continue
			case c == f.spec.Quote:
				f.quoted = !f.quoted
				continue
			}
		}
		if c != '\n' || f.quoted {
			continue
		}
		line := f.pending[start:i]
		end := "\n"
		if n := len(line); n > 0 && line[n-1] == '\r' {
			line, end = line[:n-1], "\r\n"
		}
		checked, err := f.line(line)
		if err != nil {
			return nil, err
		}
		out = append(append(out, checked...), end...)
		start = i + 1
	}
	f.pending = append(f.pending[:0], f.pending[start:]...)
	f.scanned = len(f.pending)
	return out, nil
}

// finish handles a last row without a line end, at CopyDone.
func (f *copyFilter) finish() ([]byte, error) {
	if len(f.pending) == 0 {
		return nil, nil
	}
	if f.spec.Binary {
		return nil, fmt.Errorf("the binary data ends in the middle of row %d", f.row+1)
	}
	if f.quoted {
		return nil, fmt.Errorf("row %d ends inside a quoted field", f.row+1)
	}
	line := f.pending
	f.pending = nil
	return f.line(line)
}

// line checks one row and returns it with the filled fields appended.
func (f *copyFilter) line(line []byte) ([]byte, error) {
	switch {
	case f.ended:
		return line, nil
	case string(line) == `\.`:
		// The end-of-data marker (CSV too, when unquoted): Postgres
		// ignores whatever follows it.
		f.ended = true
		return line, nil
	case f.header:
		f.header = false
		return line, nil
	}
	f.row++
	fields := f.split(line)
	if len(fields) != f.spec.Fields {
		return nil, fmt.Errorf("row %d has %d fields, the COPY names %d columns", f.row, len(fields), f.spec.Fields)
	}
	for _, c := range f.spec.Checks {
		value, null := f.value(fields[c.Field])
		switch {
		case null:
			return nil, fmt.Errorf("row %d sets the tenant column %s to NULL", f.row, c.Column)
		case !slices.Contains(c.Values, value):
			return nil, fmt.Errorf("row %d names tenant %q in column %s, which is not the session's tenant", f.row, value, c.Column)
		}
	}
	if f.spec.Keys != nil && !f.watch {
		if err := f.collectKeys(func(i int) ([]byte, bool) { _, null := f.value(fields[i]); return fields[i], null }); err != nil {
			return nil, err
		}
	}
	out := slices.Clone(line)
	for _, v := range f.spec.Fill {
		out = append(append(out, f.spec.Delimiter), f.encode(v)...)
	}
	return out, nil
}

// split cuts a row into its raw fields.
func (f *copyFilter) split(line []byte) [][]byte {
	var fields [][]byte
	start, quoted := 0, false
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case !f.spec.CSV && c == '\\':
			i++ // the next byte is escaped, a delimiter included
		case f.spec.CSV && quoted && c == f.spec.Escape && f.spec.Escape != f.spec.Quote && i+1 < len(line):
			i++
		case f.spec.CSV && c == f.spec.Quote:
			quoted = !quoted
		case c == f.spec.Delimiter && !quoted:
			fields = append(fields, line[start:i])
			start = i + 1
		}
	}
	return append(fields, line[start:])
}

// value decodes a raw field as Postgres would, reporting a NULL.
func (f *copyFilter) value(raw []byte) (string, bool) {
	if f.spec.CSV {
		if len(raw) == 0 || raw[0] != f.spec.Quote {
			return string(raw), string(raw) == f.spec.Null
		}
		return unquoteCSV(raw, f.spec.Quote, f.spec.Escape), false
	}
	if string(raw) == f.spec.Null {
		return "", true
	}
	return unescapeText(raw), false
}

// unescapeText decodes the backslash escapes of the text format.
func unescapeText(raw []byte) string {
	if !bytes.ContainsRune(raw, '\\') {
		return string(raw)
	}
	var b strings.Builder
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		if c != '\\' || i+1 == len(raw) {
			b.WriteByte(c)
			continue
		}
		i++
		switch e := raw[i]; {
		case e == 'b':
			b.WriteByte('\b')
		case e == 'f':
			b.WriteByte('\f')
		case e == 'n':
			b.WriteByte('\n')
		case e == 'r':
			b.WriteByte('\r')
		case e == 't':
			b.WriteByte('\t')
		case e == 'v':
			b.WriteByte('\v')
		case e >= '0' && e <= '7':
			j := i
			for j < len(raw) && j < i+3 && raw[j] >= '0' && raw[j] <= '7' {
				j++
			}
			n, _ := strconv.ParseUint(string(raw[i:j]), 8, 8)
			b.WriteByte(byte(n))
			i = j - 1
		case e == 'x' && i+1 < len(raw) && isHex(raw[i+1]):
			j := i + 1
			for j < len(raw) && j < i+3 && isHex(raw[j]) {
				j++
			}
			n, _ := strconv.ParseUint(string(raw[i+1:j]), 16, 8)
			b.WriteByte(byte(n))
			i = j - 1
		default:
			b.WriteByte(e)
		}
	}
	return b.String()
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// encode writes a filled value as a field of the row's format.
func (f *copyFilter) encode(v string) []byte {
	if f.spec.CSV {
		esc := string(f.spec.Escape)
		v = strings.ReplaceAll(v, esc, esc+esc)
		if f.spec.Escape != f.spec.Quote {
			v = strings.ReplaceAll(v, string(f.spec.Quote), esc+string(f.spec.Quote))
		}
		return []byte(string(f.spec.Quote) + v + string(f.spec.Quote))
	}
	r := strings.NewReplacer(`\`, `\\`, "\n", `\n`, "\r", `\r`, string(f.spec.Delimiter), `\`+string(f.spec.Delimiter))
	return []byte(r.Replace(v))
}

// unquoteCSV decodes a CSV field that starts with a quote: inside quotes the
// escape character takes the next quote or escape literally (a doubled
// quote when they are the same character); quotes may close and reopen.
func unquoteCSV(raw []byte, quote, escape byte) string {
	var b strings.Builder
	in := false
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		switch {
		case in && c == escape && i+1 < len(raw) && (raw[i+1] == quote || raw[i+1] == escape) && (escape != quote || raw[i+1] == quote):
			b.WriteByte(raw[i+1])
			i++
		case c == quote:
			in = !in
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// copyData checks a CopyData payload of a COPY into a tenant-bound table
// before it goes upstream.
func (s *session) copyData(m *pgproto3.CopyData) {
	switch {
	case s.copyFailed:
		return // upstream has left copy mode; the client will hear why
	case s.copyIn == nil:
		s.fe.Send(m)
		return
	}
	out, err := s.copyIn.feed(m.Data)
	if err != nil && !s.copyRefused(err) {
		return
	}
	switch {
	case s.copyIn == nil || s.copyIn.watch:
		s.fe.Send(m) // shadow mode: as the client wrote it
	case len(out) > 0:
		s.fe.Send(&pgproto3.CopyData{Data: out})
	}
}

// copyDone checks the last row and ends the COPY, then sends its foreign
// keys to the check that follows it.
func (s *session) copyDone(m *pgproto3.CopyDone) {
	f := s.copyIn
	switch {
	case s.copyFailed:
		return
	case s.copyIn != nil:
		out, err := s.copyIn.finish()
		if err != nil && !s.copyRefused(err) {
			return
		}
		if len(out) > 0 && s.copyIn != nil && !s.copyIn.watch {
			s.fe.Send(&pgproto3.CopyData{Data: out})
		}
	}
	sendKeys := f != nil && s.copyIn == f && f.spec.Keys != nil && !f.watch
	s.copyIn = nil
	s.fe.Send(m)
	if sendKeys {
		s.sendKeys(f)
	}
}

// copyRefused handles a row enforce mode refuses: the refusal is
// recorded; in enforce mode the COPY is aborted, in shadow mode it goes on
// as the client sends it, no longer checked (one finding per COPY). It
// reports whether the client's data still goes upstream.
func (s *session) copyRefused(err error) bool {
	refusal := newClientError(codeInsufficientPriv, "copy only rows of your tenant; nothing of this COPY was written",
		"COPY refused: %v", err)
	var own *clientError
	if errors.As(err, &own) {
		refusal = own
	}
	if err := s.lateRefusal("statement.copy", s.copyIn.stmt, refusal); err != nil {
		s.failCopy(err)
		return false
	}
	s.copyIn = nil
	return true
}

// failCopy aborts the COPY upstream with CopyFail, so nothing of it is
// written, and has the relay show the client err in place of the error
// Postgres answers with.
func (s *session) failCopy(err error) {
	nonce := randomHex(nonceLen / 2)
	resp := errorResponse(err, "ERROR")
	s.refusalMu.Lock()
	s.refusals[nonce] = refusal{resp: resp, round: s.rounds - 1}
	s.refusalMu.Unlock()
	s.log.Info("copy refused", "reason", resp.Message)
	s.fe.Send(&pgproto3.CopyFail{Message: sentinelPrefix + nonce})
	s.copyIn, s.copyFailed = nil, true
}
