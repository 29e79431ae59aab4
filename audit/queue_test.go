package audit_test

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tenantproxy/tenantproxy/audit"
)

// flaky is a writer that fails (writing nothing) while down is set.
type flaky struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	down atomic.Bool
}

func (f *flaky) Write(p []byte) (int, error) {
	if f.down.Load() {
		return 0, errors.New("disk full")
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.buf.Write(p)
}

func (f *flaky) String() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.buf.String()
}

func newFlakyQueue(mode audit.OnFailure) (*flaky, *audit.Queue) {
	w := &flaky{}
	q := audit.NewQueue(audit.NewJSONLSink(w, nil), audit.QueueConfig{Size: 8, OnFailure: mode, RetryInterval: 10 * time.Millisecond, FsyncInterval: -1})
	return w, q
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("timed out")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// In reject mode a failing sink refuses new events and makes Durable fail;
// every event accepted (and every Recorded one) is written, in one unbroken
// chain, once the sink recovers.
func TestQueueRejectsWhileFailingAndLosesNothing(t *testing.T) {
	w, q := newFlakyQueue(audit.Reject)
	if err := q.Write(audit.Event{Kind: "statement", SQL: "before"}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(w.String(), "before") {
		t.Fatal("Write returned before its event was written")
	}
	w.down.Store(true)
	ticket, err := q.Append(audit.Event{Kind: "statement", SQL: "queued while failing"})
	if err != nil {
		t.Fatal(err)
	}
	if err := q.Durable(ticket); !errors.Is(err, audit.ErrUnavailable) {
		t.Fatalf("durable while failing: %v", err)
	}
	if _, err := q.Append(audit.Event{Kind: "statement", SQL: "refused"}); !errors.Is(err, audit.ErrUnavailable) {
		t.Fatalf("append while failing: %v", err)
	}
	q.Record(audit.Event{Kind: "statement.completed", SQL: "recorded while failing"})
	w.down.Store(false)
	waitFor(t, q.Healthy)
	if err := q.Write(audit.Event{Kind: "statement", SQL: "after"}); err != nil {
		t.Fatal(err)
	}
	if err := q.Close(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	out := w.String()
	for _, want := range []string{"before", "queued while failing", "recorded while failing", "after"} {
		if !strings.Contains(out, want) {
			t.Errorf("event %q lost:\n%s", want, out)
		}
	}
	if strings.Contains(out, `"refused"`) {
		t.Error("a refused event was written")
	}
	if !strings.Contains(out, `"kind":"audit.refused"`) || !strings.Contains(out, ": 1 statement") {
		t.Errorf("the refusal is not summed up once the stream recovered:\n%s", out)
	}
	if err := audit.VerifyChain(strings.NewReader(out)); err != nil {
		t.Fatal(err)
	}
	if q.Stats().Failures.Load() == 0 || q.Stats().Rejected.Load() != 2 || q.Stats().Written.Load() != 5 {
		t.Fatalf("stats failures=%d rejected=%d written=%d", q.Stats().Failures.Load(), q.Stats().Rejected.Load(), q.Stats().Written.Load())
	}
}

// In block mode a failing sink holds writers until it recovers.
func TestQueueBlocksWhileFailing(t *testing.T) {
	w, q := newFlakyQueue(audit.Block)
	w.down.Store(true)
	done := make(chan error, 2)
	go func() { done <- q.Write(audit.Event{Kind: "statement", SQL: "first"}) }()
	waitFor(t, func() bool { return !q.Healthy() })
	go func() { done <- q.Write(audit.Event{Kind: "statement", SQL: "held"}) }()
	select {
	case err := <-done:
		t.Fatalf("write returned while the sink was failing: %v", err)
	case <-time.After(100 * time.Millisecond):
	}
	w.down.Store(false)
	for range 2 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	if err := q.Close(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	if out := w.String(); !strings.Contains(out, "first") || !strings.Contains(out, "held") {
		t.Fatalf("events lost:\n%s", out)
	}
}

// Many writers waiting at once are carried by few writes (group commit),
// each Write returning only once its own event is written.
func TestQueueGroupCommit(t *testing.T) {
	sink, err := audit.OpenFile(t.TempDir() + "/audit.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	q := audit.NewQueue(sink, audit.QueueConfig{FsyncInterval: -1})
	const writers, each = 32, 50
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				if err := q.Write(audit.Event{Kind: "statement", Session: fmt.Sprint(w), SQL: fmt.Sprint(i)}); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	st := q.Stats()
	if st.Written.Load() != writers*each {
		t.Fatalf("written %d of %d", st.Written.Load(), writers*each)
	}
	t.Logf("%d events, %d writes with fsync (%.1f events per write)", st.Written.Load(), st.Batches.Load(), float64(st.Written.Load())/float64(st.Batches.Load()))
	if st.Batches.Load() >= writers*each {
		t.Errorf("every event took its own write and fsync: %d", st.Batches.Load())
	}
	if err := q.Close(5 * time.Second); err != nil {
		t.Fatal(err)
	}
}

// BenchmarkQueue measures events per second through the queue into a file.
func BenchmarkQueue(b *testing.B) {
	sink, err := audit.OpenFile(b.TempDir() + "/audit.jsonl")
	if err != nil {
		b.Fatal(err)
	}
	q := audit.NewQueue(sink, audit.QueueConfig{Size: 100000, OnFailure: audit.Block}) // block: measure the writer, not refusals
	ev := audit.Event{Kind: "statement", Session: "0123456789abcdef", Client: "127.0.0.1:50000", Subject: "user-1",
		Tenants: []string{"42"}, Database: "app", SQL: "SELECT * FROM orders WHERE id = $1", Decision: "rewritten",
		Rewritten: "SELECT * FROM (SELECT * FROM public.orders WHERE orders.tenant_id = '42') orders WHERE id = $1", CatalogVersion: 7}
	b.ReportAllocs()
	for b.Loop() {
		if err := q.Write(ev); err != nil {
			b.Fatal(err)
		}
	}
	if err := q.Close(time.Minute); err != nil {
		b.Fatal(err)
	}
}

// Rotation by size (and on request) continues one chain across files.
func TestRotationKeepsOneChain(t *testing.T) {
	dir := t.TempDir()
	path := dir + "/audit.jsonl"
	sink, err := audit.OpenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sink.MaxSize = 2000
	q := audit.NewQueue(sink, audit.QueueConfig{FsyncInterval: -1, OnFailure: audit.Block})
	for i := 0; i < 40; i++ {
		if err := q.Write(audit.Event{Kind: "statement", SQL: strings.Repeat("x", 100)}); err != nil {
			t.Fatal(err)
		}
		waitFor(t, func() bool { return q.Depth() == 0 }) // one event per batch
		if i == 20 {
			if err := q.Rotate(); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := q.Close(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	rotated, _ := filepath.Glob(path + ".*")
	sort.Strings(rotated)
	if len(rotated) < 2 {
		t.Fatalf("rotated files: %v", rotated)
	}
	r, err := audit.VerifyFiles(append(rotated, path))
	if err != nil || r.Events != 40 || r.LastSeq != 40 {
		t.Fatalf("series: %+v %v", r, err)
	}
	// Leaving a file out of the series is found.
	var nonEmpty []string
	for _, f := range append(rotated, path) {
		if st, err := os.Stat(f); err == nil && st.Size() > 0 {
			nonEmpty = append(nonEmpty, f)
		}
	}
	if len(nonEmpty) < 3 {
		t.Fatalf("want at least three non-empty files, got %v", nonEmpty)
	}
	if _, err := audit.VerifyFiles(append([]string{nonEmpty[0]}, nonEmpty[2:]...)); err == nil {
		t.Fatal("a missing middle file went unnoticed")
	}
}
