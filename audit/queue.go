package audit

import (
	"errors"
	"log/slog"
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

// ErrUnavailable is returned by Queue.Write in Reject mode while the
// stream is failing or its queue is full.
var ErrUnavailable = errors.New("the audit stream cannot be written; statements are refused until it recovers")

// QueueConfig tunes a Queue. Zero values take the defaults.
type QueueConfig struct {
	Size          int           // events that may wait (default 10000)
	FsyncInterval time.Duration // at most this long between fsyncs (default 100ms; negative: every batch)
	OnFailure     OnFailure     // default Reject
	RetryInterval time.Duration // between attempts after a failure (default 1s)
	Logger        *slog.Logger
}

// Queue puts events on a bounded queue that one goroutine writes to a
// JSONLSink in batches. A failed batch is retried until it is written, so
// nothing is lost; meanwhile new events are refused (Reject) or wait
// (Block). Close drains the queue and syncs.
type Queue struct {
	sink    *JSONLSink
	cfg     QueueConfig
	ch      chan Event
	mu      sync.RWMutex // guards closed against sends
	closed  bool
	done    chan struct{}
	failing atomic.Bool
	stats   Stats
}

// Stats are the queue's running figures, for metrics.
type Stats struct {
	Written   atomic.Int64 // events on disk
	Failures  atomic.Int64 // failed write attempts
	Rejected  atomic.Int64 // Write calls refused
	LatencyUS atomic.Int64 // last batch's write (and sync) time
}

// NewQueue starts the writer goroutine.
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
	q := &Queue{sink: sink, cfg: cfg, ch: make(chan Event, cfg.Size), done: make(chan struct{})}
	go q.run()
	return q
}

// Depth is the number of events waiting to be written.
func (q *Queue) Depth() int { return len(q.ch) }

// Stats returns the queue's figures.
func (q *Queue) Stats() *Stats { return &q.stats }

// Healthy reports whether the last write attempt succeeded.
func (q *Queue) Healthy() bool { return !q.failing.Load() }

// FullWait is how long Write waits in Reject mode for room in a full
// queue whose writer is healthy (a burst the writer is catching up on)
// before it refuses.
const FullWait = time.Second

// Write queues an event. In Reject mode it fails at once while the stream
// is failing, and after FullWait when the queue stays full; in Block mode
// it waits.
func (q *Queue) Write(e Event) error {
	if e.Time.IsZero() {
		e.Time = time.Now().UTC()
	}
	for q.cfg.OnFailure == Block && q.failing.Load() && !q.isClosed() {
		time.Sleep(20 * time.Millisecond)
	}
	q.mu.RLock()
	defer q.mu.RUnlock()
	if q.closed {
		return errors.New("the audit stream is closed")
	}
	if q.cfg.OnFailure == Reject && q.failing.Load() {
		q.stats.Rejected.Add(1)
		return ErrUnavailable
	}
	select {
	case q.ch <- e:
		return nil
	default:
	}
	if q.cfg.OnFailure == Reject {
		timer := time.NewTimer(FullWait)
		defer timer.Stop()
		select {
		case q.ch <- e:
			return nil
		case <-timer.C:
		}
		q.stats.Rejected.Add(1)
		return ErrUnavailable
	}
	q.ch <- e
	return nil
}

func (q *Queue) isClosed() bool {
	q.mu.RLock()
	defer q.mu.RUnlock()
	return q.closed
}

// run writes batches until the queue is closed and drained.
func (q *Queue) run() {
	defer close(q.done)
	lastSync := time.Now()
	dirty := false
	ticker := time.NewTicker(max(q.cfg.FsyncInterval, 10*time.Millisecond))
	defer ticker.Stop()
	for {
		var batch []Event
		select {
		case e, ok := <-q.ch:
			if !ok {
				if dirty {
					_ = q.sink.Sync()
				}
				return
			}
			batch = append(batch, e)
		case <-ticker.C:
			if dirty {
				if err := q.sink.Sync(); err == nil {
					dirty, lastSync = false, time.Now()
				}
			}
			continue
		}
	more:
		for len(batch) < 1000 {
			select {
			case e, ok := <-q.ch:
				if !ok {
					break more
				}
				batch = append(batch, e)
			default:
				break more
			}
		}
		syncNow := q.cfg.FsyncInterval < 0 || time.Since(lastSync) >= q.cfg.FsyncInterval
		q.writeUntilDone(batch, syncNow)
		if syncNow {
			dirty, lastSync = false, time.Now()
		} else {
			dirty = true
		}
	}
}

// writeUntilDone writes one batch, retrying until it succeeds: an event
// that was queued is never dropped.
func (q *Queue) writeUntilDone(batch []Event, sync bool) {
	for attempt := 1; ; attempt++ {
		start := time.Now()
		err := q.sink.WriteBatch(batch, sync)
		q.stats.LatencyUS.Store(time.Since(start).Microseconds())
		if err == nil {
			q.stats.Written.Add(int64(len(batch)))
			if q.failing.Swap(false) {
				q.cfg.Logger.Info("audit stream recovered", "events", len(batch), "attempts", attempt)
			}
			return
		}
		q.stats.Failures.Add(1)
		if !q.failing.Swap(true) {
			q.cfg.Logger.Error("audit write failed; retrying, new statements are "+map[OnFailure]string{Reject: "refused", Block: "held"}[q.cfg.OnFailure],
				"err", err, "waiting", len(batch)+len(q.ch))
		}
		time.Sleep(q.cfg.RetryInterval)
	}
}

// Close stops accepting events, writes every queued one and syncs. It
// waits for a failing stream to recover (at most grace), so that what was
// acknowledged is on disk; after grace the remaining events are reported
// as lost in the error.
func (q *Queue) Close(grace time.Duration) error {
	q.mu.Lock()
	if !q.closed {
		q.closed = true
		close(q.ch)
	}
	q.mu.Unlock()
	select {
	case <-q.done:
		return q.sink.Close()
	case <-time.After(grace):
		return errors.New("audit stream: events were still unwritten at shutdown (the sink kept failing)")
	}
}

// Rotate starts a new file, continuing the chain (SIGHUP).
func (q *Queue) Rotate() error { return q.sink.Rotate() }
