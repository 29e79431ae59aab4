package audit

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// VerifyChain reads a stream of events and reports the first line (1-based)
// that does not follow from the one before: a line that is not exactly the
// event its fields describe, a hash that does not match, a sequence gap or
// a prev_hash that is not the previous line's hash.
func VerifyChain(r io.Reader) error {
	br := bufio.NewReader(r)
	var prev *Event
	for line := 1; ; line++ {
		b, err := br.ReadBytes('\n')
		if len(b) == 0 && errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return fmt.Errorf("line %d: %w", line, err)
		}
		e, err := verifyLine(bytes.TrimSuffix(b, []byte("\n")), prev, line)
		if err != nil {
			return err
		}
		prev = e
	}
}

// verifyLine checks one line against the event before it and returns the
// line's event.
func verifyLine(b []byte, prev *Event, line int) (*Event, error) {
	var e Event
	if err := json.Unmarshal(b, &e); err != nil {
		return nil, fmt.Errorf("line %d: not an audit event: %v", line, err)
	}
	want, err := hashOf(e)
	if err != nil {
		return nil, fmt.Errorf("line %d (seq %d): %v", line, e.Seq, err)
	}
	if e.Hash != want {
		return nil, fmt.Errorf("line %d (seq %d): event was modified: its hash does not match its content", line, e.Seq)
	}
	// The hash covers the fields; the line must also be exactly what the
	// sink wrote for them, so nothing can be added beside them.
	if canon, err := json.Marshal(e); err != nil || !bytes.Equal(canon, b) {
		return nil, fmt.Errorf("line %d (seq %d): event was modified: the line is not as written", line, e.Seq)
	}
	switch {
	case prev == nil && e.Seq == 1 && e.PrevHash != "":
		return nil, fmt.Errorf("line %d (seq 1): the first event of a chain has a prev_hash", line)
	case prev == nil:
	case e.Seq != prev.Seq+1:
		return nil, fmt.Errorf("line %d (seq %d): expected seq %d: an event was inserted, deleted or reordered", line, e.Seq, prev.Seq+1)
	case e.PrevHash != prev.Hash:
		return nil, fmt.Errorf("line %d (seq %d): prev_hash is not the hash of line %d: the chain is broken", line, e.Seq, line-1)
	}
	return &e, nil
}
