package proxy

import (
	"encoding/binary"
	"errors"
	"testing"

	"github.com/jackc/pgx/v5/pgproto3"
)

func TestStartupParams(t *testing.T) {
	cases := []struct {
		name   string
		params map[string]string
		want   map[string]string
		refuse bool
	}{
		{"harmless ones pass", map[string]string{"user": "app", "database": "db", "application_name": "psql", "client_encoding": "UTF8", "DateStyle": "ISO, MDY", "extra_float_digits": "3"},
			map[string]string{"application_name": "psql", "client_encoding": "UTF8", "DateStyle": "ISO, MDY", "extra_float_digits": "3"}, false},
		{"options with -c settings", map[string]string{"options": "-c statement_timeout=5s --lock_timeout=1s -ctimezone=UTC"},
			map[string]string{"statement_timeout": "5s", "lock_timeout": "1s", "timezone": "UTC"}, false},
		{"search_path as a parameter", map[string]string{"search_path": "evil"}, nil, true},
		{"search_path in options", map[string]string{"options": "-c search_path=evil"}, nil, true},
		{"role in options", map[string]string{"options": "-c role=postgres"}, nil, true},
		{"escaped space trick in options", map[string]string{"options": `-c application_name=a\ -c\ role=postgres`}, nil, true},
		{"other switches in options", map[string]string{"options": "-e"}, nil, true},
		{"replication", map[string]string{"replication": "database"}, nil, true},
		{"session_authorization", map[string]string{"session_authorization": "postgres"}, nil, true},
		{"SJIS", map[string]string{"client_encoding": "SJIS"}, nil, true},
		{"shift-jis spelled otherwise", map[string]string{"client_encoding": "Shift_JIS"}, nil, true},
		{"LATIN1 is fine", map[string]string{"client_encoding": "LATIN1"}, map[string]string{"client_encoding": "LATIN1"}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := startupParams(c.params)
			if c.refuse {
				var ce *clientError
				if !errors.As(err, &ce) || ce.code != codeInsufficientPriv {
					t.Fatalf("want a 42501 refusal, got %v (%v)", err, got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(c.want) {
				t.Fatalf("got %v, want %v", got, c.want)
			}
			for k, v := range c.want {
				if got[k] != v {
					t.Fatalf("got %v, want %v", got, c.want)
				}
			}
		})
	}
}

func TestParamText(t *testing.T) {
	be := func(n int, v uint64) []byte {
		b := make([]byte, 8)
		binary.BigEndian.PutUint64(b, v)
		return b[8-n:]
	}
	uuid := []byte{0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0xde, 0xf0, 0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef}
	cases := []struct {
		v      []byte
		format int16
		oid    uint32
		want   string
		err    bool
	}{
		{[]byte("42"), 0, 0, "42", false},
		{be(2, 42), 1, oidInt2, "42", false},
		{be(4, 42), 1, oidInt4, "42", false},
		{be(8, 42), 1, oidInt8, "42", false},
		{be(4, 0xffffffff), 1, oidInt4, "-1", false},
		{[]byte("acme"), 1, oidText, "acme", false},
		{uuid, 1, oidUUID, "12345678-9abc-def0-0123-456789abcdef", false},
		{be(4, 42), 1, 0, "", true},            // binary of unknown type: cannot be read safely
		{be(8, 42), 1, oidInt4, "", true},      // wrong length for the type
		{[]byte("abcd"), 1, oidInt8, "", true}, // wrong length
	}
	for _, c := range cases {
		got, err := paramText(c.v, c.format, c.oid)
		if (err != nil) != c.err || got != c.want {
			t.Errorf("paramText(%x, %d, %d) = %q, %v; want %q, err=%v", c.v, c.format, c.oid, got, err, c.want, c.err)
		}
	}
}

func TestTakeRefusalMatchesOnlyItsOwnSentinel(t *testing.T) {
	s := &session{refusals: map[string]refusal{}}
	nonce := "0123456789abcdef01234567"
	want := &pgproto3.ErrorResponse{Code: "42501", Message: "tenantproxy: refused"}
	s.refusals[nonce] = refusal{resp: want, round: 0}
	for _, msg := range []string{
		`syntax error at or near "tenantproxy_refused_ffffffffffffffffffffffff"`,
		`syntax error at or near "tenantproxy_refused_0123"`,
		`syntax error at or near "x"`,
	} {
		if _, ok := s.takeRefusal(&pgproto3.ErrorResponse{Code: "42601", Message: msg}); ok {
			t.Fatalf("matched %q", msg)
		}
	}
	if _, ok := s.takeRefusal(&pgproto3.ErrorResponse{Code: "42P01", Message: `"tenantproxy_refused_` + nonce + `"`}); ok {
		t.Fatal("matched an error that is not a syntax error")
	}
	got, ok := s.takeRefusal(&pgproto3.ErrorResponse{Code: "42601", Message: `Syntaxfehler bei »tenantproxy_refused_` + nonce + `«`})
	if !ok || got != want {
		t.Fatal("did not match its own sentinel")
	}
	if _, ok := s.takeRefusal(&pgproto3.ErrorResponse{Code: "42601", Message: `syntax error at or near "tenantproxy_refused_` + nonce + `"`}); ok {
		t.Fatal("a refusal was used twice")
	}
}

func TestExpireRefusals(t *testing.T) {
	s := &session{refusals: map[string]refusal{"a": {round: 0}, "b": {round: 1}, "c": {round: 2}}}
	s.expireRefusals(2) // the second ReadyForQuery ends rounds 0 and 1
	if _, ok := s.refusals["c"]; !ok || len(s.refusals) != 1 {
		t.Fatalf("left %v", s.refusals)
	}
}
