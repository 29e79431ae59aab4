package audit

import (
	"encoding/json"
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
