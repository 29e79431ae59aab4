package audit

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// Event is one audit record. Zero fields are left out of the JSON.
type Event struct {
	Seq      int64     `json:"seq"`
	Time     time.Time `json:"time"`
	PrevHash string    `json:"prev_hash"`
	Hash     string    `json:"hash,omitempty"`

	// Kind is session.accepted, auth.succeeded, auth.failed, statement,
	// statement.bind, statement.copy, statement.completed,
	// session.expired, session.ended or catalog.changed.
	Kind string `json:"kind"`
	// Mode is "shadow" on every event of a proxy in shadow mode, whose
	// statements ran as the client sent them; empty in enforce mode.
	Mode    string   `json:"mode,omitempty"`
	Session string   `json:"session,omitempty"`
	Client  string   `json:"client,omitempty"`
	Subject string   `json:"subject,omitempty"`
	Issuer  string   `json:"issuer,omitempty"`
	Tenants []string `json:"tenants,omitempty"`
	// Role is the token's role claim; Access how the session runs when it
	// is not the default tenant-scoped read-write: "unscoped",
	// "read-only", or both, space-separated.
	Role        string `json:"role,omitempty"`
	Access      string `json:"access,omitempty"`
	Database    string `json:"database,omitempty"`
	Application string `json:"application,omitempty"`

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

	// StatementID ties a statement.completed event to its statement.
	StatementID string `json:"statement_id,omitempty"`
	// Executions counts the executions of a prepared statement.
	Executions int64 `json:"executions,omitempty"`

	// Statements and Rejected total a session (session.ended).
	Statements int64 `json:"statements,omitempty"`
	Rejected   int64 `json:"rejected,omitempty"`
}

// Decisions a statement carries (Decision). Enforce mode records passed,
// rewritten and rejected. Shadow mode sends every statement as the client
// wrote it and records what enforce mode would have done: passed,
// would-rewrite (Rewritten holds the SQL enforce mode would send) and
// would-reject. Kinds statement.bind and statement.copy are recorded
// only when a Bind or a COPY row is (or would be) refused.
const (
	DecisionPassed       = "passed"
	DecisionRewritten    = "rewritten"
	DecisionRejected     = "rejected"
	DecisionWouldRewrite = "would-rewrite"
	DecisionWouldReject  = "would-reject"
	// DecisionUnscoped: a session of the --unscoped-role ran the statement
	// as written, without tenant scoping (both modes).
	DecisionUnscoped = "unscoped"
)

// Decisions lists every decision, enforce mode's first.
var Decisions = []string{DecisionPassed, DecisionRewritten, DecisionRejected, DecisionUnscoped, DecisionWouldRewrite, DecisionWouldReject}

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
	for _, p := range []*string{&e.PrevHash, &e.Hash, &e.Kind, &e.Mode, &e.Session, &e.Client, &e.Subject, &e.Issuer, &e.Role, &e.Access,
		&e.Database, &e.Application, &e.SQL, &e.Fingerprint, &e.Decision, &e.Reason, &e.Rewritten,
		&e.CommandTag, &e.SQLState, &e.StatementID} {
		if !utf8.ValidString(*p) {
			*p = strings.ToValidUTF8(*p, "\uFFFD")
		}
	}
	for i, v := range e.Tenants {
		if !utf8.ValidString(v) {
			t := slices.Clone(e.Tenants) // the caller's slice stays as it was
			for j := i; j < len(t); j++ {
				t[j] = strings.ToValidUTF8(t[j], "\uFFFD")
			}
			e.Tenants = t
			break
		}
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

// hashedLine returns an event's hash and its JSON line with the hash in
// it: the line is what json.Marshal gives for the event with Hash set,
// made from the one marshalling the hash covers.
func hashedLine(e Event) (string, []byte, error) {
	var l liner
	line, err := l.appendLine(nil, &e)
	return l.hash, line, err
}

// liner writes events' lines, reusing its buffer and hash between them.
type liner struct {
	scratch []byte
	h       hash.Hash
	sum     [sha256.Size]byte
	hex     [2 * sha256.Size]byte
	hash    string // the last line's
}

// appendLine appends e's line (without newline) to dst and sets l.hash.
func (l *liner) appendLine(dst []byte, e *Event) ([]byte, error) {
	e.Hash = ""
	b, ok := appendEvent(l.scratch[:0], e)
	if !ok {
		var err error
		if b, err = json.Marshal(e); err != nil {
			return dst, err
		}
	} else if cap(b) <= 64<<10 {
		l.scratch = b
	}
	if l.h == nil {
		l.h = sha256.New()
	}
	l.h.Reset()
	l.h.Write([]byte(e.PrevHash))
	l.h.Write(b)
	hex.Encode(l.hex[:], l.h.Sum(l.sum[:0]))
	l.hash = string(l.hex[:])
	// Before kind come seq, time and prev_hash, none of which can hold
	// a quote: the first ,"kind": is where the hash goes.
	i := bytes.Index(b, []byte(`,"kind":`))
	if i < 0 {
		e.Hash = l.hash
		line, err := json.Marshal(e)
		return append(dst, line...), err
	}
	dst = append(dst, b[:i]...)
	dst = append(dst, `,"hash":"`...)
	dst = append(dst, l.hex[:]...)
	dst = append(dst, '"')
	return append(dst, b[i:]...), nil
}

// JSONLSink writes one JSON event per line and chains them. It is safe for
// concurrent use.
type JSONLSink struct {
	file *os.File // set when the sink owns a file (OpenFile)
	path string   // the file's name, for rotation
	// MaxSize, when positive, rotates the file once it reaches this many
	// bytes (set before the first write).
	MaxSize int64
	mu      sync.Mutex
	w       io.Writer
	sync    func() error
	close   func() error
	seq     int64
	prev    string
	broken  error
	// size is the file's length (files only): where the next write lands,
	// kept here so that a write costs no seek.
	size  int64
	buf   []byte // the last batch's lines, reused
	liner liner
}

// NewJSONLSink starts a new chain on w. syncer, when not nil, runs after
// every write (an fsync, for files); its error is the write's error.
func NewJSONLSink(w io.Writer, syncer func() error) *JSONLSink {
	return &JSONLSink{w: w, sync: syncer}
}

// Write assigns the event its sequence number, time (when zero), prev_hash
// and hash, and writes it as one line.
func (s *JSONLSink) Write(e Event) error { return s.WriteBatch([]Event{e}, s.sync != nil) }

// WriteBatch chains and writes events in one write, then syncs when
// asked (and a syncer or file is there). A failed write is undone (a file
// is cut back to where it was) and the chain does not advance, so the same
// batch can be written again later: nothing is lost or written twice.
func (s *JSONLSink) WriteBatch(events []Event, sync bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.broken != nil {
		return fmt.Errorf("audit stream stopped: %w", s.broken)
	}
	buf := s.buf[:0]
	seq, prev := s.seq, s.prev
	for i := range events {
		e := events[i]
		e.Seq = seq + 1
		if e.Time.IsZero() {
			e.Time = time.Now().UTC()
		}
		e.PrevHash = prev
		e.normalise()
		var err error
		if buf, err = s.liner.appendLine(buf, &e); err != nil {
			return fmt.Errorf("audit event: %w", err)
		}
		buf = append(buf, '\n')
		seq, prev = e.Seq, s.liner.hash
	}
	if cap(buf) <= 1<<20 {
		s.buf = buf
	}
	var offset int64 = -1
	if s.file != nil {
		offset = s.size
	}
	if n, err := s.w.Write(buf); err != nil {
		if n == 0 {
			return fmt.Errorf("write audit events: %w", err) // nothing to undo
		}
		return s.undo(offset, fmt.Errorf("write audit events: %w", err))
	}
	if sync {
		if err := s.doSync(); err != nil {
			return s.undo(offset, fmt.Errorf("sync audit stream: %w", err))
		}
	}
	s.seq, s.prev = seq, prev
	s.size += int64(len(buf))
	if s.MaxSize > 0 && offset >= 0 && offset+int64(len(buf)) >= s.MaxSize {
		if err := s.rotate(); err != nil {
			// The events are written; a failed rotation only means the
			// file grows on.
			return nil
		}
	}
	return nil
}

// Rotate renames the file to PATH.TIME and continues the chain in a new
// file at PATH (files only; others are left as they are).
func (s *JSONLSink) Rotate() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rotate()
}

func (s *JSONLSink) rotate() error {
	if s.file == nil || s.path == "" {
		return nil
	}
	if err := s.file.Sync(); err != nil {
		return err
	}
	old := s.path + "." + time.Now().UTC().Format("20060102T150405.000000000Z")
	if err := os.Rename(s.path, old); err != nil {
		return err
	}
	f, err := os.OpenFile(s.path, os.O_RDWR|os.O_APPEND|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		// Keep writing to the renamed file rather than stop.
		return err
	}
	_ = s.file.Close()
	s.file, s.w, s.close, s.size = f, f, f.Close, 0
	return nil
}

// undo cuts a file back to offset after a failed write; when it cannot,
// the chain would have a hole, so the sink stops for good.
func (s *JSONLSink) undo(offset int64, err error) error {
	if s.file != nil && offset >= 0 {
		if terr := s.file.Truncate(offset); terr == nil {
			s.size = offset
			return err
		}
	}
	s.broken = err
	return err
}

// Sync flushes written events to stable storage (files only). It does not
// hold writes back while the disk works: what it covers is at least what
// was written when it was called.
func (s *JSONLSink) Sync() error {
	s.mu.Lock()
	syncer, f := s.sync, s.file
	s.mu.Unlock()
	switch {
	case syncer != nil:
		return syncer()
	case f != nil:
		if err := f.Sync(); err != nil && !errors.Is(err, os.ErrClosed) { // closed: rotated, and rotation syncs
			return err
		}
	}
	return nil
}

func (s *JSONLSink) doSync() error {
	switch {
	case s.sync != nil:
		return s.sync()
	case s.file != nil:
		return s.file.Sync()
	}
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
