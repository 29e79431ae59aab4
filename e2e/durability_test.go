package e2e_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/tenantproxy/tenantproxy/audit"
	"github.com/tenantproxy/tenantproxy/auth"
)

// TestAuditSurvivesSIGKILL: sixteen clients insert rows while the proxy is
// killed with SIGKILL, five times for each --audit-fsync-interval setting.
// Every insert a client saw succeed, and every row Postgres committed, has
// its statement event in the file the killed proxy left, because a
// statement goes upstream only once its event is written.
func TestAuditSurvivesSIGKILL(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	for _, fsync := range []string{"0", "100ms"} {
		for round := range 5 {
			file := filepath.Join(e.dir, fmt.Sprintf("kill-%s-%d.jsonl", fsync, round))
			e.start(t, "", "--audit-file", file, "--audit-fsync-interval", fsync)
			proxy := e.proxy
			var mu sync.Mutex
			var acked []string
			stop := make(chan struct{})
			var wg sync.WaitGroup
			for c := range 16 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					conn, err := pgx.Connect(ctx, e.connString(e.token(t, "1")))
					if err != nil {
						return // the proxy may already be gone
					}
					defer conn.Close(ctx)
					for i := 0; ; i++ {
						select {
						case <-stop:
							return
						default:
						}
						note := fmt.Sprintf("kill-%s-%d-%d-%d", fsync, round, c, i)
						if _, err := conn.Exec(ctx, "INSERT INTO orders (tenant_id, total, note) VALUES (1, 1, '"+note+"')", pgxSimple); err != nil {
							return
						}
						mu.Lock()
						acked = append(acked, note)
						mu.Unlock()
					}
				}()
			}
			time.Sleep(700 * time.Millisecond)
			if err := proxy.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			<-e.exited
			close(stop)
			wg.Wait()

			audited := map[string]bool{}
			for _, ev := range auditEvents(t, file) {
				if ev.Kind == "statement" {
					if i := strings.Index(ev.SQL, "'kill-"); i >= 0 {
						audited[strings.Trim(ev.SQL[i:], "')")] = true
					}
				}
			}
			rows, err := e.direct(t).Query(ctx, "SELECT note FROM orders WHERE note LIKE $1", fmt.Sprintf("kill-%s-%d-%%", fsync, round))
			if err != nil {
				t.Fatal(err)
			}
			committed, err := pgx.CollectRows(rows, pgx.RowTo[string])
			if err != nil {
				t.Fatal(err)
			}
			var missingAcked, missingCommitted int
			for _, n := range acked {
				if !audited[n] {
					missingAcked++
				}
			}
			for _, n := range committed {
				if !audited[n] {
					missingCommitted++
				}
			}
			t.Logf("--audit-fsync-interval %s, round %d: %d acknowledged, %d committed, %d audited; without an event: %d acknowledged, %d committed",
				fsync, round, len(acked), len(committed), len(audited), missingAcked, missingCommitted)
			if len(acked) == 0 {
				t.Fatalf("no insert was acknowledged before the kill:\n%s", e.logs.String())
			}
			if missingAcked > 0 || missingCommitted > 0 {
				t.Errorf("--audit-fsync-interval %s, round %d: %d acknowledged and %d committed inserts have no statement event",
					fsync, round, missingAcked, missingCommitted)
			}
			// The next proxy continues the chain: the torn line is moved aside.
			if out, err := verifyCLI(t, file); err != nil && !strings.Contains(out, "torn") {
				t.Errorf("audit verify after SIGKILL: %v\n%s", err, out)
			}
		}
	}
}

// TestAuditOutageKeepsEveryEvent: the audit file's disk fills up, and
// while it stays full every kind of event happens: a statement refused
// (58030), a statement that was running when the disk filled completes, a
// session starts and is refused, a bad token fails, a good token is
// refused, a token expires, a session ends. Once space is freed the proxy
// recovers without a restart, every one of those events is in the file,
// and the chain has no hole.
func TestAuditOutageKeepsEveryEvent(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mounting a small tmpfs needs root")
	}
	e := newEnv(t)
	ctx := context.Background()
	disk := filepath.Join(e.dir, "disk")
	if err := os.Mkdir(disk, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", disk).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs: %v %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("umount", "-l", disk).Run() })
	file := filepath.Join(disk, "audit.jsonl")
	e.start(t, "", "--audit-file", file, "--audit-fsync-interval", "0", "--token-expiry-grace", "0s")

	ender := e.connect(t, "1") // ends during the outage
	running := e.connect(t, "1")
	expiresAt := time.Now().Add(3 * time.Second)
	expiring, err := auth.Mint(e.secret, auth.MintOptions{Tenants: []string{"1"}, Subject: "expiring", TTL: 3 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	expires := e.connectToken(t, expiring)
	refused := e.connect(t, "1")
	// Two connections that have started (session.accepted is written)
	// and wait for their password: one bad, one good.
	startup := func() *pgproto3.Frontend {
		c, err := net.Dial("tcp", e.addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		fe := pgproto3.NewFrontend(c, c)
		fe.Send(&pgproto3.StartupMessage{ProtocolVersion: pgproto3.ProtocolVersion30, Parameters: map[string]string{"user": "app", "database": e.database}})
		if err := fe.Flush(); err != nil {
			t.Fatal(err)
		}
		if msg, err := fe.Receive(); err != nil {
			t.Fatal(err)
		} else if _, ok := msg.(*pgproto3.AuthenticationCleartextPassword); !ok {
			t.Fatalf("got %T, want a password request", msg)
		}
		return fe
	}
	badPassword, goodPassword := startup(), startup()
	sleepDone := make(chan error, 1)
	go func() {
		_, err := running.Exec(ctx, "SELECT count(*) FROM generate_series(1, 30000000)", pgxSimple)
		sleepDone <- err
	}()
	time.Sleep(300 * time.Millisecond) // upstream now, its event written

	// The disk fills.
	filler := filepath.Join(disk, "filler")
	f, err := os.Create(filler)
	if err != nil {
		t.Fatal(err)
	}
	chunk := make([]byte, 4096)
	for {
		if _, err := f.Write(chunk); err != nil {
			break
		}
	}
	f.Close()
	outage := time.Now()

	// A statement of a session opened before: refused, 58030.
	if _, err := refused.Exec(ctx, "SELECT 'during the outage'", pgxSimple); sqlState(err) != "58030" {
		t.Fatalf("statement during the outage: %v, want 58030", err)
	}
	// A new session: refused, 58030.
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	if c, err := pgx.Connect(cctx, e.connString(e.token(t, "1"))); err == nil {
		c.Close(ctx)
		t.Fatal("a session started during the outage")
	} else if sqlState(err) != "58030" {
		t.Fatalf("connecting during the outage: %v, want 58030", err)
	}
	cancel()
	password := func(fe *pgproto3.Frontend, pw string) string {
		fe.Send(&pgproto3.PasswordMessage{Password: pw})
		if err := fe.Flush(); err != nil {
			t.Fatal(err)
		}
		msg, err := fe.Receive()
		if err != nil {
			t.Fatal(err)
		}
		er, ok := msg.(*pgproto3.ErrorResponse)
		if !ok {
			t.Fatalf("got %T, want an error", msg)
		}
		return er.Code
	}
	if code := password(badPassword, "not-a-token"); code != "28P01" {
		t.Errorf("bad token during the outage: %s, want 28P01", code)
	}
	if code := password(goodPassword, e.token(t, "1")); code != "58030" {
		t.Errorf("good token during the outage: %s, want 58030", code)
	}
	// The statement that was running completes.
	if err := <-sleepDone; err != nil {
		t.Fatalf("the statement running when the disk filled: %v", err)
	}
	// A session ends.
	ender.Close(ctx)
	// A token expires.
	time.Sleep(time.Until(expiresAt.Add(200 * time.Millisecond)))
	if _, err := expires.Exec(ctx, "SELECT 1", pgxSimple); pgCode(err) != "28P01" {
		t.Errorf("expired token during the outage: %v, want 28P01", err)
	}

	// Space comes back: the proxy recovers by itself.
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "statements served again", func() error {
		_, err := refused.Exec(ctx, "SELECT 'after the outage'", pgxSimple)
		return err
	})
	after := e.connect(t, "1")
	wantRows(t, column(t, after, "SELECT count(*)::text FROM orders"), "3")

	_ = e.proxy.Process.Signal(os.Interrupt)
	<-e.exited
	events := auditEvents(t, file)
	if out, err := verifyCLI(t, file); err != nil {
		t.Fatalf("audit verify: %v\n%s", err, out)
	}
	has := func(what string, match func(audit.Event) bool) {
		t.Helper()
		for _, ev := range events {
			if match(ev) {
				return
			}
		}
		t.Errorf("no event for %s", what)
	}
	// What was refused is either written with a follow-up saying it did
	// not run (the first write to fail) or, refused before it was queued
	// once the stream was known to fail, counted in audit.refused.
	refusedCount := map[string]int64{}
	for _, ev := range events {
		if ev.Kind == "audit.refused" {
			for _, part := range strings.Split(ev.Reason[strings.LastIndex(ev.Reason, ": ")+2:], ", ") {
				var n int64
				var kind string
				if _, err := fmt.Sscanf(part, "%d %s", &n, &kind); err == nil {
					refusedCount[kind] += n
				}
			}
		}
	}
	notRun := func(kind string) int64 {
		var n int64
		for _, ev := range events {
			if ev.Kind == kind && strings.HasPrefix(ev.Reason, "not run") {
				n++
			}
		}
		return n
	}
	if got := refusedCount["statement"] + notRun("statement.completed"); got < 1 {
		t.Errorf("the refused statement is neither written as not run nor counted: %v", refusedCount)
	}
	if got := refusedCount["session.accepted"] + refusedCount["auth.succeeded"] + notRun("session.ended"); got < 2 {
		t.Errorf("the two refused sessions are not all accounted for (%d): %v", got, refusedCount)
	}
	t.Logf("refused during the outage, by kind: %v; written as not run: %d statements, %d sessions", refusedCount, notRun("statement.completed"), notRun("session.ended"))
	has("the running statement's completion", func(ev audit.Event) bool {
		return ev.Kind == "statement.completed" && ev.CommandTag == "SELECT 1" && ev.Time.After(outage)
	})
	has("the bad token", func(ev audit.Event) bool { return ev.Kind == "auth.failed" && ev.Time.After(outage) })
	has("the session that ended", func(ev audit.Event) bool {
		return ev.Kind == "session.ended" && ev.Reason == "" && ev.Time.After(outage)
	})
	has("the expired token", func(ev audit.Event) bool { return ev.Kind == "session.expired" && ev.Subject == "expiring" })
	has("the statement after recovery", func(ev audit.Event) bool {
		return ev.Kind == "statement" && strings.Contains(ev.SQL, "after the outage")
	})
	var seq int64
	for _, ev := range events {
		if ev.Seq != seq+1 {
			t.Fatalf("hole in the chain: seq %d after %d", ev.Seq, seq)
		}
		seq = ev.Seq
	}
	if !strings.Contains(e.logs.String(), "audit stream recovered") {
		t.Error("the recovery is not logged")
	}
}
