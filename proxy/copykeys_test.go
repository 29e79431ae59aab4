package proxy

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/tenantproxy/tenantproxy/rewrite"
)

// The relay shows the client only its COPY's part of the string: the
// completion once the check passed, the first error where it happened.
func TestKeysRelayShowsTheClientsCopy(t *testing.T) {
	cc := func(tag string) pgproto3.BackendMessage { return &pgproto3.CommandComplete{CommandTag: []byte(tag)} }
	copyIn := &pgproto3.CopyInResponse{}
	fail := &pgproto3.ErrorResponse{Code: "23503"}
	check := []pgproto3.BackendMessage{&pgproto3.RowDescription{}, &pgproto3.DataRow{}}
	for _, tc := range []struct {
		name string
		msgs []pgproto3.BackendMessage
		want string
	}{
		{"the check passes", append(append([]pgproto3.BackendMessage{cc("CREATE TABLE"), copyIn, cc("COPY 2"), copyIn, cc("COPY 1")}, check...), cc("SELECT 1"), cc("DROP TABLE")),
			"CopyInResponse,COPY 2"},
		{"the check fails", []pgproto3.BackendMessage{cc("CREATE TABLE"), copyIn, cc("COPY 2"), copyIn, cc("COPY 1"), fail},
			"CopyInResponse,23503"},
		{"the client's COPY fails", []pgproto3.BackendMessage{cc("CREATE TABLE"), copyIn, &pgproto3.ErrorResponse{Code: "22P02"}},
			"CopyInResponse,22P02"},
		{"the COPY is refused before its rows", []pgproto3.BackendMessage{cc("CREATE TABLE"), &pgproto3.ErrorResponse{Code: "42501"}},
			"42501"},
		{"a notice of the client's COPY", []pgproto3.BackendMessage{cc("CREATE TABLE"), copyIn, &pgproto3.NoticeResponse{Code: "01000"}, cc("COPY 1"), copyIn, cc("COPY 1"), cc("SELECT 1"), cc("DROP TABLE")},
			"CopyInResponse,01000,COPY 1"},
	} {
		k := &keysRelay{}
		var seen []string
		for _, m := range tc.msgs {
			out, ok := k.pass(m)
			if !ok {
				continue
			}
			switch o := out.(type) {
			case *pgproto3.CommandComplete:
				seen = append(seen, string(o.CommandTag))
			case *pgproto3.ErrorResponse:
				seen = append(seen, o.Code)
			case *pgproto3.NoticeResponse:
				seen = append(seen, o.Code)
			case *pgproto3.CopyInResponse:
				seen = append(seen, "CopyInResponse")
			default:
				seen = append(seen, "?")
			}
		}
		if got := strings.Join(seen, ","); got != tc.want {
			t.Errorf("%s: the client sees %s, want %s", tc.name, got, tc.want)
		}
	}
}

// The keys go to the check once each, with the first row that sets them,
// in the client's format; NULLs are left out.
func TestCopyFilterCollectsKeys(t *testing.T) {
	spec := &rewrite.CopyIn{Delimiter: '\t', Null: `\N`, Quote: '"', Fields: 3, Keys: &rewrite.CopyKeys{Fields: [][]int{{1}, {2}}}}
	f := newCopyFilter(spec)
	if _, err := f.feed([]byte("1\t20\t\\N\n2\t20\t7\n3\t\\N\t7\n4\t2\\\t1\t8\n")); err != nil {
		t.Fatal(err)
	}
	got := string(bytesJoin(f.keyRows()))
	want := "1\t0\t20\t\\N\n2\t1\t\\N\t7\n4\t0\t2\\\t1\t\\N\n4\t1\t\\N\t8\n"
	if got != want {
		t.Errorf("key rows:\n%q\nwant\n%q", got, want)
	}
	// A key of two columns: one row per distinct pair, none with a NULL.
	f = newCopyFilter(&rewrite.CopyIn{Delimiter: ',', Null: ``, CSV: true, Quote: '"', Fields: 3, Keys: &rewrite.CopyKeys{Fields: [][]int{{1, 2}}}})
	if _, err := f.feed([]byte("1,5,6\n2,5,\"6\"\n3,5,6\n4,,6\n5,6,5\n")); err != nil {
		t.Fatal(err)
	}
	if got, want := string(bytesJoin(f.keyRows())), "1,0,5,6\n2,0,5,\"6\"\n5,0,6,5\n"; got != want {
		t.Errorf("key rows of a two-column key:\n%q\nwant\n%q", got, want)
	}
	// A path's via column: its NULL is checked too (a row of nobody's).
	f = newCopyFilter(&rewrite.CopyIn{Delimiter: '\t', Null: `\N`, Fields: 2, Keys: &rewrite.CopyKeys{Path: true, Fields: [][]int{{0}, {1}}}})
	if _, err := f.feed([]byte("7\t\\N\n\\N\t1\n")); err != nil {
		t.Fatal(err)
	}
	if got, want := string(bytesJoin(f.keyRows())), "1\t0\t7\t\\N\n2\t0\t\\N\t\\N\n2\t1\t\\N\t1\n"; got != want {
		t.Errorf("key rows of a path:\n%q\nwant\n%q", got, want)
	}
}

// A COPY that sets more distinct keys than the proxy holds is refused
// with 54000, before its data goes on.
func TestCopyFilterBoundsKeys(t *testing.T) {
	defer func(n int) { maxCopyKeys = n }(maxCopyKeys)
	maxCopyKeys = 2
	f := newCopyFilter(&rewrite.CopyIn{Delimiter: '\t', Null: `\N`, Fields: 2, Keys: &rewrite.CopyKeys{Fields: [][]int{{1}}}})
	_, err := f.feed([]byte("1\t1\n2\t1\n3\t2\n4\t3\n"))
	var ce *clientError
	if !errors.As(err, &ce) || ce.code != codeProgramLimitReached || !strings.Contains(ce.msg, "row 4") {
		t.Errorf("a third distinct key: %v, want 54000 at row 4", err)
	}
}

func bytesJoin(bs [][]byte) []byte {
	var out []byte
	for _, b := range bs {
		out = append(out, b...)
	}
	return out
}

// Pipelined strings: the relay hides the proxy's statements of each COPY
// with checked keys, and only those, in the order the strings were sent.
func TestResultsPassKeysOfEachString(t *testing.T) {
	r := newResults()
	r.expect("plain", false, 0)
	r.expectCopyKeys("copy1", 1)
	r.expectCopyKeys("copy2", 2)
	cc := func(tag string) pgproto3.BackendMessage { return &pgproto3.CommandComplete{CommandTag: []byte(tag)} }
	ready := &pgproto3.ReadyForQuery{TxStatus: 'I'}
	keyed := []pgproto3.BackendMessage{cc("CREATE TABLE"), &pgproto3.CopyInResponse{}, cc("COPY 1"), &pgproto3.CopyInResponse{}, cc("COPY 1"),
		&pgproto3.RowDescription{}, &pgproto3.DataRow{}, cc("SELECT 1"), cc("DROP TABLE"), ready}
	stream := append(append([]pgproto3.BackendMessage{cc("SELECT 1"), ready}, keyed...), keyed...)
	var seen []string
	readies := 0
	for _, m := range stream {
		out, ok := r.passKeys(m)
		if !ok {
			continue
		}
		switch o := out.(type) {
		case *pgproto3.CommandComplete:
			seen = append(seen, string(o.CommandTag))
		case *pgproto3.ReadyForQuery:
			readies++
			seen = append(seen, "ready")
			r.observe(o, readies)
			continue
		default:
			seen = append(seen, strings.TrimPrefix(fmt.Sprintf("%T", o), "*pgproto3."))
		}
		r.observe(out, readies)
	}
	want := "SELECT 1,ready,CopyInResponse,COPY 1,ready,CopyInResponse,COPY 1,ready"
	if got := strings.Join(seen, ","); got != want {
		t.Errorf("the client sees\n%s\nwant\n%s", got, want)
	}
	if n := r.keyed.Load(); n != 0 || len(r.queue) != 0 {
		t.Errorf("after the strings: %d keyed, %d queued", n, len(r.queue))
	}
}
