package proxy

import (
	"bytes"
	"encoding/binary"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5/pgproto3"
)

// The foreign keys of a COPY's rows are checked after them, in the same
// query string (rewrite/copykeys.go): the filter collects each distinct
// key with the first row that sets it; after the client's CopyDone the
// session sends them to the proxy's own COPY; the relay hides the proxy's
// statements and shows the client what its COPY alone would have given.

// maxCopyKeys bounds the distinct keys one COPY may set (memory: about
// 64 bytes each); a bigger COPY is refused before anything is written.
var maxCopyKeys = 1 << 22

// copyKey is one distinct key: its row (1-based), the key's place in
// CopyKeys.Fields, and its fields as the client wrote them.
type copyKey struct {
	row int
	key int
	raw []string
}

// collectKeys records the keys of one row the filter passed (when the
// COPY has keys to check): field(i) returns the row's field i as the client
// wrote it, and whether it is NULL.
func (f *copyFilter) collectKeys(field func(int) ([]byte, bool)) error {
	keys := f.spec.Keys
	if f.seen == nil {
		f.seen = make([]map[string]struct{}, len(keys.Fields))
		for i := range f.seen {
			f.seen[i] = map[string]struct{}{}
		}
	}
	for i, fields := range keys.Fields {
		raw := make([]string, len(fields))
		null := false
		for k, fi := range fields {
			b, isNull := field(fi)
			null = null || isNull
			raw[k] = string(b)
		}
		if null && !(keys.Path && i == 0) {
			continue // a key with a NULL column references nothing (a path's NULL is a row of nobody's: checked)
		}
		id := strings.Join(raw, "\x00")
		if _, ok := f.seen[i][id]; ok {
			continue
		}
		if len(f.keys) >= maxCopyKeys {
			return newClientError(codeProgramLimitReached, "split it into smaller COPYs; nothing of this COPY was written",
				"COPY refused at row %d: it sets more than %d distinct foreign keys, which the proxy must check", f.row, maxCopyKeys)
		}
		f.seen[i][id] = struct{}{}
		f.keys = append(f.keys, copyKey{row: f.row, key: i, raw: raw})
	}
	return nil
}

// keyRows writes the collected keys as rows of the proxy's COPY (n, c, v0,
// v1, ...) in the client's format, in row order, in CopyData payloads of
// about 64 KiB.
func (f *copyFilter) keyRows() [][]byte {
	var out [][]byte
	var b []byte
	binaryFormat := f.spec.Binary
	if binaryFormat {
		b = append(b, copySignature...)
		b = binary.BigEndian.AppendUint32(b, 0) // flags
		b = binary.BigEndian.AppendUint32(b, 0) // no header extension
	}
	fields := 2
	for _, cols := range f.spec.Keys.Fields {
		fields += len(cols)
	}
	for _, k := range f.keys {
		if binaryFormat {
			b = binary.BigEndian.AppendUint16(b, uint16(fields))
			b = binary.BigEndian.AppendUint32(b, 8)
			b = binary.BigEndian.AppendUint64(b, uint64(k.row))
			b = binary.BigEndian.AppendUint32(b, 4)
			b = binary.BigEndian.AppendUint32(b, uint32(k.key))
		} else {
			b = strconv.AppendInt(b, int64(k.row), 10)
			b = append(b, f.spec.Delimiter)
			b = strconv.AppendInt(b, int64(k.key), 10)
		}
		for i, cols := range f.spec.Keys.Fields {
			for c := range cols {
				switch {
				case binaryFormat && i == k.key:
					b = binary.BigEndian.AppendUint32(b, uint32(len(k.raw[c])))
					b = append(b, k.raw[c]...)
				case binaryFormat:
					b = binary.BigEndian.AppendUint32(b, 0xffffffff) // NULL
				case i == k.key:
					b = append(append(b, f.spec.Delimiter), k.raw[c]...)
				default:
					b = append(append(b, f.spec.Delimiter), f.spec.Null...)
				}
			}
		}
		if !binaryFormat {
			b = append(b, '\n')
		}
		if len(b) >= 64<<10 {
			out, b = append(out, b), nil
		}
	}
	if binaryFormat {
		b = binary.BigEndian.AppendUint16(b, 0xffff) // the trailer
	}
	if len(b) > 0 {
		out = append(out, b)
	}
	return out
}

// sendKeys sends the proxy's COPY of the keys (after the client's
// CopyDone, leaseMu held), flushing every MiB or so: many keys are not
// buffered twice. A failed flush is the relay's to see.
func (s *session) sendKeys(f *copyFilter) {
	rows := f.keyRows()
	f.keys, f.seen = nil, nil
	pending := 0
	for i, data := range rows {
		s.fe.Send(&pgproto3.CopyData{Data: data})
		rows[i] = nil
		if pending += len(data); pending >= 1<<20 {
			_ = s.fe.Flush()
			pending = 0
		}
	}
	s.fe.Send(&pgproto3.CopyDone{})
}

// keysRelay is the relay's view of a query string whose COPY has its keys
// checked: which of the string's statements upstream is answering.
type keysRelay struct {
	step int // 0: CREATE TEMP TABLE, 1: the client's COPY, 2: the keys' COPY, 3: the check, 4: DROP TABLE, 5: over
	held *pgproto3.CommandComplete
}

// pass returns what the client sees of msg, or false when it is the
// proxy's: the client's COPY's completion is held until the check passes;
// an error is shown where it happens (the check's is the 23503 the relay
// makes of it), and upstream skips the rest of the string.
func (k *keysRelay) pass(msg pgproto3.BackendMessage) (pgproto3.BackendMessage, bool) {
	switch m := msg.(type) {
	case *pgproto3.ErrorResponse:
		k.step, k.held = 5, nil
	case *pgproto3.CommandComplete:
		switch k.step {
		case 1:
			k.step, k.held = 2, &pgproto3.CommandComplete{CommandTag: bytes.Clone(m.CommandTag)}
			return nil, false
		case 3:
			k.step = 4
			held := k.held
			k.held = nil
			return held, held != nil
		case 0, 2, 4:
			k.step++
			return nil, false
		}
	case *pgproto3.CopyInResponse:
		return msg, k.step != 2
	case *pgproto3.RowDescription, *pgproto3.DataRow:
		return msg, k.step != 3
	}
	return msg, true
}
