package e2e_test

import (
	"context"
	"errors"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestShutdownDrains: on SIGTERM the proxy stops accepting, ends idle
// sessions with 57P01 at once, lets an open transaction finish and
// commit, then exits 0 with every session's events in the audit stream.
func TestShutdownDrains(t *testing.T) {
	e := newEnv(t, envOptions{extraArgs: []string{"--shutdown-timeout", "10s"}})
	ctx := context.Background()
	busy, idle := e.connect(t, "1"), e.connect(t, "2")
	tx, err := busy.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "INSERT INTO orders (customer_id, total, note) VALUES (NULL, 1, 'during shutdown')"); err != nil {
		t.Fatal(err)
	}
	if err := e.proxy.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "the idle session to be ended", func() error {
		if !strings.Contains(e.logs.String(), "57P01") {
			return errors.New("no 57P01 in the proxy log yet")
		}
		return nil
	})
	if _, err := idle.Exec(ctx, "SELECT 1"); err == nil {
		t.Fatal("the idle session is still served after SIGTERM")
	}
	if c, err := e.dial(t, "3"); err == nil {
		c.Close(ctx)
		t.Fatal("a new connection was accepted while shutting down")
	}
	// The transaction goes on to its end.
	time.Sleep(300 * time.Millisecond)
	if _, err := tx.Exec(ctx, "UPDATE orders SET total = 2 WHERE note = 'during shutdown'"); err != nil {
		t.Fatalf("the open transaction was cut: %v", err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatalf("commit during shutdown: %v", err)
	}
	select {
	case <-e.exited:
	case <-time.After(5 * time.Second):
		t.Fatal("the proxy did not exit once its last transaction ended")
	}
	if code := e.proxy.ProcessState.ExitCode(); code != 0 {
		t.Fatalf("exit code %d", code)
	}
	wantRows(t, column(t, e.direct(t), "SELECT total::text FROM orders WHERE note = 'during shutdown'"), "2")
	ended := 0
	for _, ev := range auditEvents(t, e.dir+"/audit.jsonl") {
		if ev.Kind == "session.ended" {
			ended++
		}
	}
	if ended < 2 {
		t.Fatalf("%d session.ended events in the audit stream, want both sessions'", ended)
	}
}
