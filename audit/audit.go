package audit

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
)

// Event is one audit record. Zero fields are left out of the JSON.
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
// recorded; the caller decides what that means for the statement.
type Sink interface {
	Write(Event) error
	Close() error
}

// normalise replaces invalid UTF-8 in every string field with U+FFFD, as
// encoding/json would, so the event reads back exactly as it was hashed.
// Client-supplied text (SQL, application names) need not be valid UTF-8.
func (e *Event) normalise() {
	for _, p := range []*string{&e.PrevHash, &e.Hash, &e.Kind, &e.Session, &e.Client, &e.Subject, &e.Issuer,
		&e.Database, &e.Application, &e.SQL, &e.Fingerprint, &e.Decision, &e.Reason, &e.Rewritten,
		&e.CommandTag, &e.SQLState} {
		*p = strings.ToValidUTF8(*p, "\uFFFD")
	}
	if len(e.Tenants) > 0 {
		t := make([]string, len(e.Tenants))
		for i, v := range e.Tenants {
			t[i] = strings.ToValidUTF8(v, "\uFFFD")
		}
		e.Tenants = t
	}
}

// hashOf returns the chain hash of e: sha256 of its prev_hash followed by
// its JSON without the hash field.
func hashOf(e Event) (string, error) {
	e.Hash = ""
	b, err := json.Marshal(e)
	if err != nil {
		return "", err
	}
	h := sha256.New()
	h.Write([]byte(e.PrevHash))
	h.Write(b)
	return hex.EncodeToString(h.Sum(nil)), nil
}

// JSONLSink writes one JSON event per line and chains them. It is safe for
// concurrent use.
type JSONLSink struct {
	mu     sync.Mutex
	w      io.Writer
	sync   func() error
	close  func() error
	seq    int64
	prev   string
	broken error
}

// NewJSONLSink starts a new chain on w. syncer, when not nil, runs after
// every write (an fsync, for files); its error is the write's error.
func NewJSONLSink(w io.Writer, syncer func() error) *JSONLSink {
	return &JSONLSink{w: w, sync: syncer}
}

// Write assigns the event its sequence number, time (when zero), prev_hash
// and hash, and writes it as one line. After a failed write every later
// Write fails too: a chain with a hole in it is worse than a stopped one.
func (s *JSONLSink) Write(e Event) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.broken != nil {
		return fmt.Errorf("audit stream stopped after an earlier write error: %w", s.broken)
	}
	e.Seq = s.seq + 1
	if e.Time.IsZero() {
		e.Time = time.Now().UTC()
	}
	e.PrevHash = s.prev
	e.normalise()
	hash, err := hashOf(e)
	if err != nil {
		return fmt.Errorf("audit event: %w", err)
	}
	e.Hash = hash
	line, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("audit event: %w", err)
	}
	if _, err := s.w.Write(append(line, '\n')); err != nil {
		s.broken = err
		return fmt.Errorf("write audit event: %w", err)
	}
	if s.sync != nil {
		if err := s.sync(); err != nil {
			s.broken = err
			return fmt.Errorf("sync audit stream: %w", err)
		}
	}
	s.seq, s.prev = e.Seq, hash
	return nil
}

// Close closes the file the sink owns (none for stdout or NewJSONLSink).
func (s *JSONLSink) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.close == nil {
		return nil
	}
	err := s.close()
	s.close = nil
	if s.broken == nil {
		s.broken = fmt.Errorf("audit sink is closed")
	}
	return err
}
