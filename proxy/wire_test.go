package proxy

import (
	"bytes"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgproto3"
)

// chunked hands out its bytes a few at a time, failing once with errAt
// after failAfter bytes (a deadline in the middle of a message).
type chunked struct {
	data      []byte
	step      int
	failAfter int
	failed    bool
	read      int
}

var errTimeout = errors.New("i/o timeout")

func (c *chunked) Read(p []byte) (int, error) {
	if len(c.data) == 0 {
		return 0, io.EOF
	}
	if !c.failed && c.failAfter > 0 && c.read >= c.failAfter {
		c.failed = true
		return 0, errTimeout
	}
	n := min(len(p), c.step, len(c.data))
	copy(p, c.data[:n])
	c.data = c.data[n:]
	c.read += n
	return n, nil
}

func encodeAll(t *testing.T, msgs ...pgproto3.FrontendMessage) []byte {
	t.Helper()
	var b []byte
	for _, m := range msgs {
		var err error
		if b, err = m.Encode(b); err != nil {
			t.Fatal(err)
		}
	}
	return b
}

// Every message comes out as sent, however the bytes arrive: one at a time,
// many messages per read, bodies larger than the small array and than a
// pooled buffer, and reads that time out in the middle of a message.
func TestClientWireReceive(t *testing.T) {
	msgs := []pgproto3.FrontendMessage{
		&pgproto3.Query{String: "SELECT 1"},
		&pgproto3.Parse{Name: "s1", Query: "SELECT $1::int", ParameterOIDs: []uint32{23}},
		&pgproto3.Bind{PreparedStatement: "s1", Parameters: [][]byte{[]byte("42")}, ResultFormatCodes: []int16{0}},
		&pgproto3.Describe{ObjectType: 'P'},
		&pgproto3.Execute{},
		&pgproto3.Sync{},
		&pgproto3.Query{String: "SELECT '" + strings.Repeat("x", 2000) + "'"},
		&pgproto3.CopyData{Data: bytes.Repeat([]byte("row\n"), 5000)},
		&pgproto3.CopyDone{},
		&pgproto3.Close{ObjectType: 'S', Name: "s1"},
		&pgproto3.Flush{},
		&pgproto3.Terminate{},
	}
	data := encodeAll(t, msgs...)
	for _, step := range []int{1, 3, 7, 100, 511, 512, 513, 8192, len(data)} {
		for _, failAfter := range []int{0, 3, 600, 9000} {
			src := &chunked{data: bytes.Clone(data), step: step, failAfter: failAfter}
			w := newClientWire(src, io.Discard, 0)
			for i, want := range msgs {
				got, err := w.Receive()
				if errors.Is(err, errTimeout) {
					got, err = w.Receive() // carries on with the same message
				}
				if err != nil {
					t.Fatalf("step %d, fail after %d: message %d: %v", step, failAfter, i, err)
				}
				// Compare through the wire form: Receive reuses structs.
				if g, w := encodeAll(t, got), encodeAll(t, want); !bytes.Equal(g, w) {
					t.Fatalf("step %d: message %d: got %T %q, want %q", step, i, got, g[:min(len(g), 40)], w[:min(len(w), 40)])
				}
			}
			if _, err := w.Receive(); !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Fatalf("after the last message: %v", err)
			}
			if w.big != nil {
				t.Errorf("step %d: a pooled buffer is still held after everything was read", step)
			}
		}
	}
}

// Bad input gets an error, never a panic: a body over the limit, a length
// below four, an unknown type, a connection that ends mid-message.
func TestClientWireRefusesBadInput(t *testing.T) {
	for name, tc := range map[string]struct {
		data []byte
		max  int
		want string
	}{
		"too large":     {encodeAll(t, &pgproto3.Query{String: strings.Repeat("x", 100)}), 50, "invalid body length"},
		"short length":  {[]byte{'Q', 0, 0, 0, 3}, 0, "invalid message length"},
		"unknown type":  {[]byte{'z', 0, 0, 0, 4}, 0, "unknown message type"},
		"cut off":       {encodeAll(t, &pgproto3.Query{String: "SELECT 1"})[:7], 0, "unexpected eof"},
		"bad body":      {[]byte{'Q', 0, 0, 0, 6, 'a', 'b'}, 0, "invalid"},
		"huge declared": {[]byte{'Q', 0x7f, 0xff, 0xff, 0xff}, 1 << 20, "invalid body length"},
	} {
		w := newClientWire(bytes.NewReader(tc.data), io.Discard, tc.max)
		_, err := w.Receive()
		if err == nil || !strings.Contains(strings.ToLower(err.Error()), tc.want) {
			t.Errorf("%s: %v, want %q", name, err, tc.want)
		}
	}
}

// What Send buffers reaches the client, in order, at Flush; nothing is
// written for an empty flush, and no buffer is held afterwards.
func TestClientWireSend(t *testing.T) {
	var out countingWriter
	w := newClientWire(strings.NewReader(""), &out, 0)
	if err := w.Flush(); err != nil || out.writes != 0 {
		t.Fatalf("empty flush: %v, %d writes", err, out.writes)
	}
	sent := []pgproto3.BackendMessage{
		&pgproto3.RowDescription{Fields: []pgproto3.FieldDescription{{Name: []byte("abalance"), DataTypeOID: 23, DataTypeSize: 4, TypeModifier: -1}}},
		&pgproto3.DataRow{Values: [][]byte{[]byte("0")}},
		&pgproto3.DataRow{Values: [][]byte{bytes.Repeat([]byte("y"), 20000)}},
		&pgproto3.CommandComplete{CommandTag: []byte("SELECT 2")},
		&pgproto3.ReadyForQuery{TxStatus: 'I'},
	}
	for _, m := range sent {
		w.Send(m)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if out.writes != 1 || w.out != nil {
		t.Fatalf("%d writes for one flush; buffer held: %v", out.writes, w.out != nil)
	}
	fe := pgproto3.NewFrontend(bytes.NewReader(out.buf.Bytes()), io.Discard)
	for i, want := range sent {
		got, err := fe.Receive()
		if err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		if !reflect.DeepEqual(encodeBackend(t, got), encodeBackend(t, want)) {
			t.Fatalf("message %d differs: %T", i, got)
		}
	}
}

type countingWriter struct {
	buf    bytes.Buffer
	writes int
}

func (c *countingWriter) Write(p []byte) (int, error) {
	c.writes++
	return c.buf.Write(p)
}

func encodeBackend(t *testing.T, m pgproto3.BackendMessage) []byte {
	t.Helper()
	b, err := m.Encode(nil)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// FuzzClientWire: any bytes give messages or an error, never a panic, and
// the messages are those pgproto3.Backend reads from the same bytes.
func FuzzClientWire(f *testing.F) {
	f.Add(encodeAll(&testing.T{}, &pgproto3.Query{String: "SELECT 1"}, &pgproto3.Sync{}))
	f.Add([]byte{'B', 0, 0, 0, 4})
	f.Fuzz(func(t *testing.T, data []byte) {
		w := newClientWire(&chunked{data: bytes.Clone(data), step: 5}, io.Discard, 1<<16)
		be := pgproto3.NewBackend(bytes.NewReader(data), io.Discard)
		be.SetMaxBodyLen(1 << 16)
		for range 64 {
			got, err := w.Receive()
			want, werr := be.Receive()
			if (err == nil) != (werr == nil) {
				t.Fatalf("clientWire %v, pgproto3 %v", err, werr)
			}
			if err != nil {
				return
			}
			if _, isPassword := want.(*pgproto3.PasswordMessage); isPassword {
				continue // both read 'p' as a password before authentication is known
			}
			g, gerr := got.Encode(nil)
			wb, wberr := want.Encode(nil)
			if (gerr == nil) != (wberr == nil) || !bytes.Equal(g, wb) {
				t.Fatalf("clientWire %T %q, pgproto3 %T %q", got, g, want, wb)
			}
		}
	})
}
