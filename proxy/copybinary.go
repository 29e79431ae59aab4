package proxy

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// The binary COPY format: a header (signature, flags, extension), then per
// row a 16-bit field count and each field as a 32-bit length (-1 for NULL)
// and its bytes, then a trailer count of -1. binaryFeed keeps a partial row
// until it is complete, checks its tenant fields and appends the filled
// ones, each in its column type's binary form.

var copySignature = []byte("PGCOPY\n\xff\r\n\x00")

// binaryFeed is feed for the binary format.
func (f *copyFilter) binaryFeed(data []byte) ([]byte, error) {
	f.pending = append(f.pending, data...)
	var out []byte
	for {
		if f.ended {
			out, f.pending = append(out, f.pending...), f.pending[:0]
			return out, nil
		}
		if !f.headerDone {
			n, ok, err := binaryHeader(f.pending)
			if err != nil || !ok {
				return out, err
			}
			out, f.pending, f.headerDone = append(out, f.pending[:n]...), f.pending[n:], true
			continue
		}
		n, row, err := f.binaryRow(f.pending)
		if err != nil || n == 0 {
			return out, err
		}
		out, f.pending = append(out, row...), f.pending[n:]
	}
}

// binaryHeader returns the header's length once it has all arrived.
func binaryHeader(b []byte) (int, bool, error) {
	const fixed = 11 + 4 + 4
	if len(b) < len(copySignature) {
		return 0, false, nil
	}
	if string(b[:len(copySignature)]) != string(copySignature) {
		return 0, false, fmt.Errorf("the data is not in the binary COPY format")
	}
	if len(b) < fixed {
		return 0, false, nil
	}
	n := fixed + int(binary.BigEndian.Uint32(b[15:19]))
	if n < fixed || len(b) < n {
		return 0, false, nil
	}
	return n, true, nil
}

// binaryRow returns the bytes one complete row took and what to send for
// it; 0 when the row has not all arrived.
func (f *copyFilter) binaryRow(b []byte) (int, []byte, error) {
	if len(b) < 2 {
		return 0, nil, nil
	}
	count := int16(binary.BigEndian.Uint16(b))
	if count == -1 {
		f.ended = true
		return 2, b[:2], nil
	}
	pos := 2
	fields := make([][]byte, 0, max(count, 0))
	nulls := make([]bool, 0, max(count, 0))
	for i := 0; i < int(count); i++ {
		if len(b) < pos+4 {
			return 0, nil, nil
		}
		size := int32(binary.BigEndian.Uint32(b[pos:]))
		pos += 4
		if size < 0 {
			fields, nulls = append(fields, nil), append(nulls, true)
			continue
		}
		if len(b) < pos+int(size) {
			return 0, nil, nil
		}
		fields, nulls = append(fields, b[pos:pos+int(size)]), append(nulls, false)
		pos += int(size)
	}
	f.row++
	if int(count) != f.spec.Fields {
		return 0, nil, fmt.Errorf("row %d has %d fields, the COPY names %d columns", f.row, count, f.spec.Fields)
	}
	for _, c := range f.spec.Checks {
		if nulls[c.Field] {
			return 0, nil, fmt.Errorf("row %d sets the tenant column %s to NULL", f.row, c.Column)
		}
		v, err := paramText(fields[c.Field], 1, typeOID(c.Type))
		if err != nil {
			return 0, nil, fmt.Errorf("row %d: tenant column %s: %v", f.row, c.Column, err)
		}
		if !slices.Contains(c.Values, v) {
			return 0, nil, fmt.Errorf("row %d names tenant %q in column %s, which is not the session's tenant", f.row, v, c.Column)
		}
	}
	if f.spec.Keys != nil && !f.watch {
		if err := f.collectKeys(func(i int) ([]byte, bool) { return fields[i], nulls[i] }); err != nil {
			return 0, nil, err
		}
	}
	out := binary.BigEndian.AppendUint16(nil, uint16(int(count)+len(f.spec.Fill)))
	out = append(out, b[2:pos]...)
	for i, v := range f.spec.Fill {
		enc, err := binaryValue(v, f.spec.FillTypes[i])
		if err != nil {
			return 0, nil, err
		}
		out = binary.BigEndian.AppendUint32(out, uint32(len(enc)))
		out = append(out, enc...)
	}
	return pos, out, nil
}

// binaryValue encodes a tenant value in the binary form of its column type.
func binaryValue(v, typ string) ([]byte, error) {
	bits := map[uint32]int{oidInt2: 16, oidInt4: 32, oidInt8: 64}
	switch oid := typeOID(typ); oid {
	case oidInt2, oidInt4, oidInt8:
		n, err := strconv.ParseInt(v, 10, bits[oid])
		if err != nil {
			return nil, fmt.Errorf("tenant %q is not a %s", v, typ)
		}
		b := binary.BigEndian.AppendUint64(nil, uint64(n))
		return b[8-bits[oid]/8:], nil
	case oidText:
		return []byte(v), nil
	case oidUUID:
		b, err := hex.DecodeString(strings.ReplaceAll(v, "-", ""))
		if err != nil || len(b) != 16 {
			return nil, fmt.Errorf("tenant %q is not a uuid", v)
		}
		return b, nil
	}
	return nil, fmt.Errorf("cannot write a tenant of type %q in binary", typ)
}
