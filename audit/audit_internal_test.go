package audit

import (
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// The one-marshal line is byte for byte what marshalling the event with
// its hash gives, and the hash is the chain's.
func TestHashedLineIsTheMarshalledEvent(t *testing.T) {
	for _, e := range []Event{
		{Seq: 1, Time: time.Unix(1, 0).UTC(), Kind: "session.accepted"},
		{Seq: 2, Time: time.Unix(2, 5).UTC(), PrevHash: strings.Repeat("ab", 32), Kind: "statement", SQL: `SELECT '"prev_hash":"x",'`, Tenants: []string{"1"}},
	} {
		hash, line, err := hashedLine(e)
		if err != nil {
			t.Fatal(err)
		}
		want, err := hashOf(e)
		if err != nil || hash != want {
			t.Fatalf("hash %s, want %s (%v)", hash, want, err)
		}
		e.Hash = hash
		full, _ := json.Marshal(e)
		if string(line) != string(full) {
			t.Fatalf("line\n%s\nwant\n%s", line, full)
		}
	}
}

// appendEvent writes every field of Event, in the struct's order.
func TestAppendEventKnowsEveryField(t *testing.T) {
	typ := reflect.TypeOf(Event{})
	var names []string
	for i := range typ.NumField() {
		names = append(names, strings.Split(typ.Field(i).Tag.Get("json"), ",")[0])
	}
	if !slices.Equal(names, eventFields) {
		t.Fatalf("Event's JSON fields are %v; appendEvent writes %v", names, eventFields)
	}
}

// FuzzAppendEvent: the hand-written encoding is json.Marshal's, byte for
// byte.
func FuzzAppendEvent(f *testing.F) {
	f.Add(int64(1), int64(1700000000123456789), "SELECT '<a>' & \"b\" \\ \n\t\x01 \u2028 é", "1", 0.125, int64(0))
	f.Add(int64(0), int64(0), "", "", 0.0, int64(-3))
	f.Add(int64(-5), int64(-62135596800000000), "\xff\xfe", "a\u2029", 1e-7, int64(7))
	f.Add(int64(9), int64(9223372036854775807), "x", "y", 1e21, int64(1))
	f.Fuzz(func(t *testing.T, seq, nanos int64, s, tenant string, d float64, n int64) {
		e := Event{Seq: seq, Time: time.Unix(0, nanos).UTC(), PrevHash: s, Kind: s, SQL: s, Reason: tenant,
			Tenants: []string{tenant, s}, DurationMS: d, Rows: n, CatalogVersion: seq, Mode: tenant, Role: s, Access: tenant}
		if tenant == "" {
			e.Tenants = nil
		}
		want, wantErr := json.Marshal(e)
		got, gotErr := marshalEvent(&e)
		if (wantErr == nil) != (gotErr == nil) || string(got) != string(want) {
			t.Fatalf("\ngot  %s (%v)\nwant %s (%v)", got, gotErr, want, wantErr)
		}
	})
}
