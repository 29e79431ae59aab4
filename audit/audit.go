package audit

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"
)

// Event is one audit record.
type Event struct {
	Seq      int64     `json:"seq"`
	Time     time.Time `json:"time"`
	PrevHash string    `json:"prev_hash"`
	Hash     string    `json:"hash,omitempty"`

	// Kind is session.accepted, auth.succeeded, auth.failed, statement or
	// session.ended.
	Kind        string   `json:"kind"`
	Session     string   `json:"session,omitempty"`
	Client      string   `json:"client,omitempty"`
	Subject     string   `json:"subject,omitempty"`
	Issuer      string   `json:"issuer,omitempty"`
	Tenants     []string `json:"tenants,omitempty"`
	Database    string   `json:"database,omitempty"`
	Application string   `json:"application,omitempty"`

	SQL            string  `json:"sql,omitempty"`
	Fingerprint    string  `json:"fingerprint,omitempty"`
	Decision       string  `json:"decision,omitempty"`
	Reason         string  `json:"reason,omitempty"`
	Rewritten      string  `json:"rewritten,omitempty"`
	CatalogVersion int64   `json:"catalog_version,omitempty"`
	CommandTag     string  `json:"command_tag,omitempty"`
	Rows           int64   `json:"rows,omitempty"`
	SQLState       string  `json:"sqlstate,omitempty"`
	DurationMS     float64 `json:"duration_ms,omitempty"`
}

// Sink receives events. Write returns an error when the event could not be
// recorded.
type Sink interface {
	Write(Event) error
	Close() error
}

// hashOf is the SHA-256 of an event's JSON without its own hash.
func hashOf(e Event) (string, []byte, error) {
	e.Hash = ""
	b, err := json.Marshal(e)
	if err != nil {
		return "", nil, err
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:]), b, nil
}

// JSONLSink writes one JSON event per line and chains them.
type JSONLSink struct {
	mu     sync.Mutex
	w      io.Writer
	sync   func() error
	close  func() error
	seq    int64
	prev   string
	broken error
}

// NewJSONLSink chains events onto w, starting a new chain. sync, when set,
// runs after every write (an fsync, for files).
func NewJSONLSink(w io.Writer, sync func() error) *JSONLSink {
	return &JSONLSink{w: w, sync: sync}
}

// Write assigns the event its sequence number, time and hashes and writes it.
func (s *JSONLSink) Write(e Event) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.broken != nil {
		return fmt.Errorf("audit stream is broken by an earlier write error: %w", s.broken)
	}
	e.Seq = s.seq + 1
	if e.Time.IsZero() {
		e.Time = time.Now().UTC()
	}
	e.PrevHash = s.prev
	hash, _, err := hashOf(e)
	if err != nil {
		return err
	}
	e.Hash = hash
	line, err := json.Marshal(e)
	if err != nil {
		return err
	}
	if _, err := s.w.Write(append(line, '\n')); err != nil {
		s.broken = err
		return err
	}
	if s.sync != nil {
		if err := s.sync(); err != nil {
			s.broken = err
			return err
		}
	}
	s.seq, s.prev = e.Seq, hash
	return nil
}

// Close closes the underlying file, if the sink owns one.
func (s *JSONLSink) Close() error {
	if s.close != nil {
		return s.close()
	}
	return nil
}

// OpenFile opens an append-only audit file ("-" is stdout). When the file
// already holds events, the chain continues from its last one.
func OpenFile(path string) (*JSONLSink, error) {
	if path == "-" {
		return NewJSONLSink(os.Stdout, nil), nil
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	last, err := lastEvent(f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("audit file %s: %w", path, err)
	}
	s := NewJSONLSink(f, nil)
	s.close = f.Close
	if last != nil {
		s.seq, s.prev = last.Seq, last.Hash
	}
	return s, nil
}

// lastEvent reads the last complete event of a file.
func lastEvent(r io.Reader) (*Event, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 64<<20)
	var last []byte
	for sc.Scan() {
		if len(bytes.TrimSpace(sc.Bytes())) > 0 {
			last = append(last[:0], sc.Bytes()...)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if last == nil {
		return nil, nil
	}
	var e Event
	if err := json.Unmarshal(last, &e); err != nil {
		return nil, errors.New("its last line is not a complete event (torn write?); move the file aside to start a new chain")
	}
	return &e, nil
}

// VerifyChain checks a stream of events and reports the first line whose
// sequence number or hash does not follow from the line before.
func VerifyChain(r io.Reader) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 64<<20)
	var prev *Event
	line := 0
	for sc.Scan() {
		line++
		var e Event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			return fmt.Errorf("line %d: not an event: %v", line, err)
		}
		want, _, err := hashOf(e)
		if err != nil {
			return err
		}
		if e.Hash != want {
			return fmt.Errorf("line %d (seq %d): event was modified: its hash does not match its content", line, e.Seq)
		}
		if prev != nil {
			if e.Seq != prev.Seq+1 {
				return fmt.Errorf("line %d (seq %d): expected seq %d: an event was inserted, deleted or reordered", line, e.Seq, prev.Seq+1)
			}
			if e.PrevHash != prev.Hash {
				return fmt.Errorf("line %d (seq %d): prev_hash does not match line %d: the chain is broken", line, e.Seq, line-1)
			}
		}
		prev = &e
	}
	return sc.Err()
}
