package audit

import (
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// OnFailure says what happens to new statements while the audit stream
// cannot be written or has fallen behind. No mode drops events.
type OnFailure string

const (
	// Reject refuses new statements until the stream recovers.
	Reject OnFailure = "reject"
	// Block makes new statements wait until the stream recovers.
	Block OnFailure = "block"
)

// ErrUnavailable is returned in Reject mode while the stream is failing
// or its queue is full: what the event was to record must not happen.
var ErrUnavailable = errors.New("the audit stream cannot be written; statements are refused until it recovers")

// errClosed is returned for events offered after Close.
var errClosed = errors.New("the audit stream is closed")

// QueueConfig tunes a Queue. Zero values take the defaults.
type QueueConfig struct {
	// Size is how many events may wait to be written before Append
	// refuses (Reject) or waits (Block); default 10000. Record is never
	// refused.
	Size int
	// FsyncInterval is the longest time between fsyncs (default 100ms).
	// Negative: every write is synced before Durable returns.
	FsyncInterval time.Duration
	OnFailure     OnFailure     // default Reject
	RetryInterval time.Duration // between attempts after a failure (default 1s)
	Logger        *slog.Logger
}

// Events Append refuses while the stream fails are not lost from view:
// once it recovers, one audit.refused event counts them by kind, from the
// first refusal on (Rejected holds the total).

// Ticket names an appended event: the count of events appended up to and
// including it. Durable(t) returns once that many are written.
type Ticket int64

// Queue writes events to a JSONLSink with group commit. Append queues an
// event and returns at once; Durable makes sure it is written (and, with
// a negative FsyncInterval, synced): the first caller to find the sink
// free writes every waiting event, of every session, in one write, and
// the callers that came meanwhile find theirs written. Record queues an
// event about something that already happened; it is never refused and is
// written with the next group, or by the queue's goroutine within
// flushEvery. A failed write keeps its events and is retried until it
// succeeds, so nothing is lost; meanwhile Append and Durable refuse
// (Reject) or wait (Block). Close writes everything and syncs.
type Queue struct {
	sink *JSONLSink
	cfg  QueueConfig

	mu       sync.Mutex
	cond     *sync.Cond // written, failing, writing or closed changed
	pending  []Event    // appended, not yet written, in order
	appended int64      // events ever appended
	written  int64      // events the sink has (synced too with a negative FsyncInterval)
	writing  bool       // a caller or the goroutine holds the sink
	dirty    bool       // written since the last fsync
	lastSync time.Time
	closed   bool
	batches  int64 // writes made (for telling whether a sync covered them all)

	// refused counts, by kind, the events Append refused while the
	// stream failed (what they announced did not happen); recorded as
	// one audit.refused event once it recovers.
	refused      map[string]int64
	refusedSince time.Time

	failing atomic.Bool
	kick    chan struct{} // wakes the goroutine: a failure to retry, or Close
	done    chan struct{}
	stats   Stats
}

// Stats are the queue's running figures, for metrics.
type Stats struct {
	Written   atomic.Int64 // events on disk
	Failures  atomic.Int64 // failed write attempts
	Rejected  atomic.Int64 // Append and Durable calls refused
	LatencyUS atomic.Int64 // last batch's write (and sync) time
	Batches   atomic.Int64 // writes made
}

// flushEvery bounds how long a Recorded event waits for a group to carry
// it before the queue's goroutine writes it.
const flushEvery = 20 * time.Millisecond

// maxBatch caps the events one write carries.
const maxBatch = 4096

// NewQueue starts the queue's goroutine, which retries failed writes,
// writes Recorded events nobody else carried, and fsyncs.
func NewQueue(sink *JSONLSink, cfg QueueConfig) *Queue {
	if cfg.Size <= 0 {
		cfg.Size = 10000
	}
	if cfg.FsyncInterval == 0 {
		cfg.FsyncInterval = 100 * time.Millisecond
	}
	if cfg.OnFailure == "" {
		cfg.OnFailure = Reject
	}
	if cfg.RetryInterval <= 0 {
		cfg.RetryInterval = time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	q := &Queue{sink: sink, cfg: cfg, kick: make(chan struct{}, 1), done: make(chan struct{}), lastSync: time.Now()}
	q.cond = sync.NewCond(&q.mu)
	go q.run()
	return q
}

// Depth is the number of events waiting to be written.
func (q *Queue) Depth() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.pending)
}

// Stats returns the queue's figures.
func (q *Queue) Stats() *Stats { return &q.stats }

// Healthy reports whether the last write attempt succeeded.
func (q *Queue) Healthy() bool { return !q.failing.Load() }

// FullWait is how long Append waits in Reject mode for room in a full
// queue whose sink is healthy (a burst being caught up on) before it
// refuses.
const FullWait = time.Second

// Write appends an event and waits until it is durable: Append, then
// Durable.
func (q *Queue) Write(e Event) error {
	t, err := q.Append(e)
	if err != nil {
		return err
	}
	return q.Durable(t)
}

// Append queues an event for something about to happen (a session let
// in, a statement sent). In Reject mode it fails at once while the stream
// is failing, and after FullWait when the queue stays full; in Block mode
// it waits.
func (q *Queue) Append(e Event) (Ticket, error) {
	if e.Time.IsZero() {
		e.Time = time.Now().UTC()
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	var deadline time.Time
	for {
		switch {
		case q.closed:
			return 0, errClosed
		case q.cfg.OnFailure == Reject && q.failing.Load():
			q.refuse(e.Kind)
			return 0, ErrUnavailable
		case len(q.pending) < q.cfg.Size:
			return q.add(e), nil
		case q.cfg.OnFailure == Reject && deadline.IsZero():
			deadline = time.Now().Add(FullWait)
		case q.cfg.OnFailure == Reject && time.Now().After(deadline):
			q.refuse(e.Kind)
			return 0, ErrUnavailable
		}
		if !q.writing && !q.failing.Load() {
			q.writeLocked() // make room
			continue
		}
		q.cond.Wait()
	}
}

// Record queues an event for something that has already happened (a
// completion, a failed authentication, a session's end). It is never
// refused: while the stream fails such events wait in memory and are
// written when it recovers.
func (q *Queue) Record(e Event) {
	if e.Time.IsZero() {
		e.Time = time.Now().UTC()
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		q.cfg.Logger.Error("audit event after the stream closed", "kind", e.Kind, "session", e.Session)
		return
	}
	q.add(e)
}

// refuse counts an event Append refused (mu held).
func (q *Queue) refuse(kind string) {
	q.stats.Rejected.Add(1)
	if q.refused == nil {
		q.refused, q.refusedSince = map[string]int64{}, time.Now().UTC()
	}
	q.refused[kind]++
}

// refusedEvent sums up the refused events (mu held) and starts a new count.
func (q *Queue) refusedEvent() Event {
	var total int64
	var parts []string
	for _, kind := range slices.Sorted(maps.Keys(q.refused)) {
		total += q.refused[kind]
		parts = append(parts, fmt.Sprintf("%d %s", q.refused[kind], kind))
	}
	e := Event{Kind: "audit.refused", Rejected: total,
		Reason: fmt.Sprintf("refused because the audit stream could not be written, from %s: %s", q.refusedSince.Format(time.RFC3339Nano), strings.Join(parts, ", "))}
	q.refused = nil
	return e
}

func (q *Queue) add(e Event) Ticket {
	q.pending = append(q.pending, e)
	q.appended++
	return Ticket(q.appended)
}

// Durable returns once the event with ticket t, and every one before it,
// is written (and synced, with a negative FsyncInterval). It writes the
// waiting events itself when no one else is. While the stream fails it
// returns ErrUnavailable in Reject mode (the event stays queued and is
// written on recovery) and waits in Block mode.
func (q *Queue) Durable(t Ticket) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	for q.written < int64(t) {
		switch {
		case q.writing:
			q.cond.Wait()
		case q.failing.Load() && q.cfg.OnFailure == Reject:
			q.stats.Rejected.Add(1)
			return ErrUnavailable
		case q.failing.Load() || q.closed:
			q.cond.Wait() // the goroutine retries (and drains at Close)
		default:
			q.writeLocked()
		}
	}
	return nil
}

// writeLocked writes the waiting events as one batch (mu held on entry and
// return; released around the write). On failure they stay at the front
// of the queue and the goroutine retries.
func (q *Queue) writeLocked() {
	if len(q.pending) == 0 {
		return
	}
	n := min(len(q.pending), maxBatch)
	batch := q.pending[:n:n]
	sync := q.cfg.FsyncInterval < 0
	q.writing = true
	q.mu.Unlock()
	start := time.Now()
	err := q.sink.WriteBatch(batch, sync)
	q.stats.LatencyUS.Store(time.Since(start).Microseconds())
	q.mu.Lock()
	q.writing = false
	defer q.cond.Broadcast()
	if err != nil {
		q.stats.Failures.Add(1)
		if !q.failing.Swap(true) {
			q.cfg.Logger.Error("audit write failed; retrying, new statements are "+map[OnFailure]string{Reject: "refused", Block: "held"}[q.cfg.OnFailure],
				"err", err, "waiting", len(q.pending))
		}
		select {
		case q.kick <- struct{}{}:
		default:
		}
		return
	}
	// Keep the array for the next group (the write is done with it),
	// unless a burst made it large.
	rest := copy(q.pending, q.pending[n:])
	clear(q.pending[rest:]) // what the events point to may go
	q.pending = q.pending[:rest]
	if cap(q.pending) > 1024 && rest == 0 {
		q.pending = nil
	}
	q.written += int64(n)
	q.batches++
	q.stats.Written.Add(int64(n))
	q.stats.Batches.Add(1)
	if sync {
		q.lastSync = time.Now()
	} else {
		q.dirty = true
	}
	if q.failing.Swap(false) {
		q.cfg.Logger.Info("audit stream recovered", "events", n, "refused", q.stats.Rejected.Load())
	}
	if len(q.refused) > 0 && !q.failing.Load() {
		q.add(q.refusedEvent()) // written with the next group
	}
}

// run writes what no caller carried, retries failed writes and fsyncs,
// until Close has drained the queue.
func (q *Queue) run() {
	defer close(q.done)
	timer := time.NewTimer(flushEvery)
	defer timer.Stop()
	for {
		select {
		case <-timer.C:
		case <-q.kick:
		}
		q.mu.Lock()
		if q.failing.Load() {
			q.mu.Unlock()
			time.Sleep(q.cfg.RetryInterval) // a failing write is retried this often
			q.mu.Lock()
		}
		for !q.writing && len(q.pending) > 0 {
			q.writeLocked()
			if q.failing.Load() {
				break
			}
		}
		if q.dirty && (q.closed || time.Since(q.lastSync) >= q.cfg.FsyncInterval) {
			q.syncLocked()
		}
		if q.closed && len(q.pending) == 0 && !q.writing && !q.dirty {
			q.mu.Unlock()
			return
		}
		q.mu.Unlock()
		timer.Reset(flushEvery)
	}
}

// syncLocked fsyncs what was written (mu held; released around the sync,
// which writers do not wait for). Only when no write landed meanwhile is
// the file clean afterwards.
func (q *Queue) syncLocked() {
	before := q.batches
	q.mu.Unlock()
	err := q.sink.Sync()
	q.mu.Lock()
	if err != nil {
		q.stats.Failures.Add(1)
		q.cfg.Logger.Error("audit fsync failed; retrying", "err", err)
		return
	}
	q.lastSync = time.Now()
	q.dirty = q.batches != before
}

// Close stops accepting events, writes every queued one and syncs. It
// waits for a failing stream to recover (at most grace), so that what was
// acknowledged is on disk; after grace the remaining events are reported
// as lost in the error.
func (q *Queue) Close(grace time.Duration) error {
	q.mu.Lock()
	q.closed = true
	q.cond.Broadcast()
	q.mu.Unlock()
	select {
	case q.kick <- struct{}{}:
	default:
	}
	select {
	case <-q.done:
		return q.sink.Close()
	case <-time.After(grace):
		return errors.New("audit stream: events were still unwritten at shutdown (the sink kept failing)")
	}
}

// Rotate starts a new file, continuing the chain (SIGHUP).
func (q *Queue) Rotate() error { return q.sink.Rotate() }
