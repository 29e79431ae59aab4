package proxy

import (
	"bytes"
	"encoding/binary"
	"strconv"

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

// copyKey is one distinct key: its row (1-based), the key column's place
// in CopyKeys.Fields, and the field as the client wrote it.
type copyKey struct {
	row    int
	column int
	raw    string
}

// collectKeys records the keys of one row the filter passed: field(i)
// returns the row's field i as the client wrote it, and whether it is NULL.
func (f *copyFilter) collectKeys(field func(int) ([]byte, bool)) error {
	keys := f.spec.Keys
	if keys == nil || f.watch {
		return nil
	}
	if f.seen == nil {
		f.seen = make([]map[string]struct{}, len(keys.Fields))
		for i := range f.seen {
			f.seen[i] = map[string]struct{}{}
		}
	}
	for i, fi := range keys.Fields {
		raw, null := field(fi)
		if null {
			continue // a NULL key references nothing
		}
		if _, ok := f.seen[i][string(raw)]; ok {
			continue
		}
		if len(f.keys) >= maxCopyKeys {
			return newClientError(codeProgramLimitReached, "split it into smaller COPYs; nothing of this COPY was written",
				"COPY refused at row %d: it sets more than %d distinct foreign keys, which the proxy must check", f.row, maxCopyKeys)
		}
		f.seen[i][string(raw)] = struct{}{}
		f.keys = append(f.keys, copyKey{row: f.row, column: i, raw: string(raw)})
	}
	return nil
}

// keyRows writes the collected keys as rows of the proxy's COPY (n, c, v0,
// v1, ...) in the client's format, in row order, in CopyData payloads of
// about 64 KiB.
func (f *copyFilter) keyRows() [][]byte {
	var out [][]byte
	var b []byte
	ncols := len(f.spec.Keys.Fields)
	if f.spec.Binary {
		b = append(b, copySignature...)
		b = binary.BigEndian.AppendUint32(b, 0) // flags
		b = binary.BigEndian.AppendUint32(b, 0) // no header extension
	}
	for _, k := range f.keys {
		if f.spec.Binary {
			b = binary.BigEndian.AppendUint16(b, uint16(2+ncols))
			b = binary.BigEndian.AppendUint32(b, 8)
			b = binary.BigEndian.AppendUint64(b, uint64(k.row))
			b = binary.BigEndian.AppendUint32(b, 4)
			b = binary.BigEndian.AppendUint32(b, uint32(k.column))
			for c := 0; c < ncols; c++ {
				if c != k.column {
					b = binary.BigEndian.AppendUint32(b, 0xffffffff) // NULL
					continue
				}
				b = binary.BigEndian.AppendUint32(b, uint32(len(k.raw)))
				b = append(b, k.raw...)
			}
			if len(b) >= 64<<10 {
				out, b = append(out, b), nil
			}
			continue
		}
		b = strconv.AppendInt(b, int64(k.row), 10)
		b = append(b, f.spec.Delimiter)
		b = strconv.AppendInt(b, int64(k.column), 10)
		for c := 0; c < ncols; c++ {
			b = append(b, f.spec.Delimiter)
			if c == k.column {
				b = append(b, k.raw...)
			} else {
				b = append(b, f.spec.Null...)
			}
		}
		b = append(b, '\n')
		if len(b) >= 64<<10 {
			out, b = append(out, b), nil
		}
	}
	if f.spec.Binary {
		b = binary.BigEndian.AppendUint16(b, 0xffff) // the trailer
	}
	if len(b) > 0 {
		out = append(out, b)
	}
	return out
}

// sendKeys ends the proxy's COPY of the keys (after the client's CopyDone).
func (s *session) sendKeys(f *copyFilter) {
	for _, data := range f.keyRows() {
		s.fe.Send(&pgproto3.CopyData{Data: data})
	}
	s.fe.Send(&pgproto3.CopyDone{})
	f.keys, f.seen = nil, nil
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
