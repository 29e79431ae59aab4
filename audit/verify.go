package audit

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
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

// Report is what verifying a series of audit files found.
type Report struct {
	Files    int
	Events   int
	FirstSeq int64
	LastSeq  int64
	// Torn lists each file whose last line was cut short (a crash in
	// the middle of a write): reported, not tampering; the chain goes on
	// from the last complete event.
	Torn []string
}

// VerifyFiles checks a file or a rotated series, oldest first, as one
// chain: each file's first event must follow the previous file's last
// complete event. The error names the first modified, inserted, reordered
// or deleted event by file, line and sequence number.
func VerifyFiles(paths []string) (Report, error) {
	var r Report
	var prev *Event
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			return r, err
		}
		r.Files++
		lines := bytes.SplitAfter(data, []byte("\n"))
		for i, b := range lines {
			if len(b) == 0 {
				continue
			}
			if b[len(b)-1] != '\n' { // only ever the last piece
				r.Torn = append(r.Torn, fmt.Sprintf("%s: line %d is torn after seq %d (cut short by a crash; not an event)", p, i+1, r.LastSeq))
				break
			}
			e, err := verifyLine(b[:len(b)-1], prev, i+1)
			if err != nil {
				return r, fmt.Errorf("%s: %w", p, err)
			}
			if r.Events == 0 {
				r.FirstSeq = e.Seq
			}
			r.Events++
			r.LastSeq = e.Seq
			prev = e
		}
	}
	return r, nil
}
