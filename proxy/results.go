package proxy

import (
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"
)

// A statement's outcome (command tag, rows, SQLSTATE) arrives later, on the
// relay. For every message upstream answers with a completion (a simple
// Query; an Execute) the session queues a pending entry in send order; the
// relay fills the entry at the head and finishes it. After an error,
// Postgres skips the rest of a pipeline up to Sync: those entries are
// dropped at the round's ReadyForQuery.

// pending is one awaited completion.
type pending struct {
	id      string // statement id; "" for a refused statement's sentinel
	execute bool   // an Execute (else a simple Query)
	round   int
	start   time.Time
	tags    []string
	rows    int64
	state   string
	// keys: a simple Query whose COPY has its keys checked after it, the
	// relay's view of the string's statements (copykeys.go).
	keys *keysRelay
}

// execTotals add up the executions of one extended-protocol statement.
type execTotals struct {
	executions, rows int64
	lastTag, state   string
}

// results is the session's queue of pending completions.
type results struct {
	mu      sync.Mutex
	queue   []*pending
	keyed   atomic.Int32 // queued strings with checked COPY keys
	totals  map[string]*execTotals
	portals map[string]string // portal -> statement id (session goroutine only)
}

func newResults() *results {
	return &results{totals: map[string]*execTotals{}, portals: map[string]string{}}
}

// expect queues a completion (session goroutine).
func (r *results) expect(id string, execute bool, round int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.queue = append(r.queue, &pending{id: id, execute: execute, round: round, start: time.Now()})
}

// expectCopyKeys queues the completion of a simple Query whose COPY has
// its keys checked in the same string.
func (r *results) expectCopyKeys(id string, round int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.queue = append(r.queue, &pending{id: id, round: round, start: time.Now(), keys: &keysRelay{}})
	r.keyed.Add(1)
}

// passKeys returns what the client sees of an upstream message (relay
// goroutine): when the string being answered is a COPY with checked keys,
// the proxy's own statements are hidden (keysRelay.pass).
func (r *results) passKeys(msg pgproto3.BackendMessage) (pgproto3.BackendMessage, bool) {
	if r.keyed.Load() == 0 {
		return msg, true // the common case: no lock
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.queue) == 0 || r.queue[0].keys == nil {
		return msg, true
	}
	if _, ok := msg.(*pgproto3.ReadyForQuery); ok {
		r.keyed.Add(-1) // observe ends the string at this ReadyForQuery
		return msg, true
	}
	return r.queue[0].keys.pass(msg)
}

// rowsOf reads the row count at the end of a command tag ("UPDATE 3").
func rowsOf(tag string) int64 {
	i := strings.LastIndexByte(tag, ' ')
	n, err := strconv.ParseInt(tag[i+1:], 10, 64)
	if err != nil {
		return 0
	}
	return n
}

// observe applies one upstream message (relay goroutine) and returns the
// completions it finished.
func (r *results) observe(msg pgproto3.BackendMessage, ready int) []*pending {
	r.mu.Lock()
	defer r.mu.Unlock()
	var head *pending
	if len(r.queue) > 0 {
		head = r.queue[0]
	}
	var done []*pending
	finish := func() {
		done = append(done, head)
		r.queue = r.queue[1:]
		if len(r.queue) == 0 {
			r.queue = nil // an idle session keeps no array
		}
	}
	switch m := msg.(type) {
	case *pgproto3.CommandComplete:
		if head != nil {
			tag := string(m.CommandTag)
			head.tags = append(head.tags, tag)
			head.rows += rowsOf(tag)
			if head.execute {
				finish()
			}
		}
	case *pgproto3.EmptyQueryResponse, *pgproto3.PortalSuspended:
		if head != nil && head.execute {
			finish()
		}
	case *pgproto3.ErrorResponse:
		if head != nil {
			head.state = m.Code
			if head.execute {
				finish()
			}
		}
	case *pgproto3.ReadyForQuery:
		kept := r.queue[:0]
		for _, p := range r.queue {
			switch {
			case p.round >= ready:
				kept = append(kept, p)
			case !p.execute:
				done = append(done, p) // a simple Query ends at its ReadyForQuery
			}
		}
		r.queue = kept
		if len(kept) == 0 {
			r.queue = nil
		}
	}
	return done
}

// add counts one finished execution into its statement's totals.
func (r *results) add(p *pending) {
	r.mu.Lock()
	defer r.mu.Unlock()
	t := r.totals[p.id]
	if t == nil {
		t = &execTotals{}
		r.totals[p.id] = t
	}
	t.executions++
	t.rows += p.rows
	if len(p.tags) > 0 {
		t.lastTag = p.tags[len(p.tags)-1]
	}
	if p.state != "" {
		t.state = p.state
	}
}

// take removes and returns a statement's totals (nil when it never ran).
func (r *results) take(id string) *execTotals {
	r.mu.Lock()
	defer r.mu.Unlock()
	t := r.totals[id]
	delete(r.totals, id)
	return t
}

// takeAll removes every statement's totals.
func (r *results) takeAll() map[string]*execTotals {
	r.mu.Lock()
	defer r.mu.Unlock()
	all := r.totals
	r.totals = map[string]*execTotals{}
	return all
}

// nextStatementID names the session's next statement.
func (s *session) nextStatementID() string {
	s.statementSeq++
	return s.id + "-" + strconv.FormatInt(s.statementSeq, 10)
}

// completed records what finished upstream (relay goroutine): a simple
// Query at once; an Execute into its statement's totals, and at once too
// with --audit-executions.
func (s *session) completed(done []*pending) {
	for _, p := range done {
		if p.id == "" {
			continue
		}
		s.srv.cfg.Metrics.upstreamDone(time.Since(p.start))
		if p.execute {
			s.results.add(p)
			if !s.srv.cfg.AuditExecutions {
				continue
			}
		}
		s.record(event{Kind: "statement.completed", StatementID: p.id, CommandTag: strings.Join(p.tags, ";"),
			Rows: p.rows, SQLState: p.state, Executions: 1, DurationMS: float64(time.Since(p.start).Microseconds()) / 1000})
	}
}

// statementEnded records the totals of an extended-protocol statement that
// was closed, replaced, or outlived by its session.
func (s *session) statementEnded(id string, t *execTotals) {
	if t == nil || s.srv.cfg.AuditExecutions {
		return
	}
	s.record(event{Kind: "statement.completed", StatementID: id, CommandTag: t.lastTag, Rows: t.rows,
		SQLState: t.state, Executions: t.executions})
}

// endUnnamed records the totals of the unnamed statement a new Parse
// replaces.
func (s *session) endUnnamed() {
	if recs := s.book.statement(""); len(recs) > 0 {
		s.statementEnded(recs[0].id, s.results.take(recs[0].id))
	}
}
