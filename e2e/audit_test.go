package e2e_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/tenantproxy/tenantproxy/audit"
	"github.com/tenantproxy/tenantproxy/internal/pgtest"
)

// auditEvents reads the events of an audit file.
func auditEvents(t *testing.T, path string) []audit.Event {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []audit.Event
	for _, line := range bytes.Split(bytes.TrimSuffix(data, []byte("\n")), []byte("\n")) {
		var e audit.Event
		if json.Unmarshal(line, &e) == nil {
			out = append(out, e)
		}
	}
	return out
}

// verifyCLI runs tenantproxy audit verify.
func verifyCLI(t *testing.T, files ...string) (string, error) {
	t.Helper()
	out, err := exec.Command(binary(t), append([]string{"audit", "verify"}, files...)...).CombinedOutput()
	return string(out), err
}

// TestAuditStream: statements produce events with the session's tenant,
// subject and decision; the file verifies, and copies with one byte
// changed, one line removed or two lines swapped do not; a proxy killed
// mid-stream leaves a file that verifies, and the chain goes on after a
// restart.
func TestAuditStream(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	path := filepath.Join(e.dir, "audit.jsonl")
	one := e.connect(t, "1")
	for _, sql := range []string{"SELECT * FROM orders", "SELECT 1", "SELECT * FROM secrets"} {
		_, _ = one.Exec(ctx, sql, pgxSimple)
	}
	var events []audit.Event
	eventually(t, 5*time.Second, "statement events on disk", func() error {
		events = auditEvents(t, path)
		for _, ev := range events {
			if ev.Decision == "rejected" {
				return nil
			}
		}
		return os.ErrNotExist
	})
	decisions := map[string]audit.Event{}
	for _, ev := range events {
		if ev.Kind == "statement" {
			decisions[ev.SQL] = ev
		}
	}
	for sql, want := range map[string]string{"SELECT * FROM orders": "rewritten", "SELECT 1": "passed", "SELECT * FROM secrets": "rejected"} {
		ev := decisions[sql]
		if ev.Decision != want || ev.Subject != "e2e" || strings.Join(ev.Tenants, ",") != "1" || ev.Fingerprint == "" || ev.CatalogVersion == 0 {
			t.Errorf("%s: event %+v", sql, ev)
		}
	}
	if ev := decisions["SELECT * FROM orders"]; !strings.Contains(ev.Rewritten, "tenant_id = '1'") {
		t.Errorf("rewritten SQL not recorded: %+v", ev)
	}
	if ev := decisions["SELECT * FROM secrets"]; !strings.Contains(ev.Reason, "not in the tenant catalog") || ev.SQLState != "42501" {
		t.Errorf("rejection not recorded: %+v", ev)
	}
	completed := map[string]audit.Event{}
	for _, ev := range events {
		if ev.Kind == "statement.completed" {
			completed[ev.StatementID] = ev
		}
	}
	if c := completed[decisions["SELECT * FROM orders"].StatementID]; c.CommandTag != "SELECT 3" || c.Rows != 3 {
		t.Errorf("completion of the rewritten SELECT: %+v", c)
	}
	// Prepared statements are recorded once, with their executions counted.
	for i := 0; i < 3; i++ {
		if _, err := one.Exec(ctx, "SELECT id FROM orders WHERE id > $1", i); err != nil {
			t.Fatal(err)
		}
	}
	// A catalog change made with the CLI reaches the stream, and a session's
	// end carries its totals.
	e.cli(t, "catalog", "add-global", "secrets")
	one.Close(ctx)
	eventually(t, 5*time.Second, "catalog change and session end", func() error {
		var changed, ended bool
		for _, ev := range auditEvents(t, path) {
			changed = changed || ev.Kind == "catalog.changed" && strings.Contains(ev.Reason, "add-global") && strings.HasSuffix(ev.Subject, "(cli)")
			ended = ended || ev.Kind == "session.ended" && ev.Statements >= 4 && ev.Rejected == 1
		}
		executions := false
		for _, ev := range auditEvents(t, path) {
			executions = executions || ev.Kind == "statement.completed" && ev.Executions == 3 && ev.Rows == 9
		}
		if !changed || !ended || !executions {
			return fmt.Errorf("catalog.changed %v, session.ended with totals %v, prepared statement totals %v", changed, ended, executions)
		}
		return nil
	})
	if out, err := verifyCLI(t, path); err != nil || !strings.Contains(out, "chain intact") {
		t.Fatalf("verify: %v\n%s", err, out)
	}

	data, _ := os.ReadFile(path)
	lines := strings.SplitAfter(strings.TrimSuffix(string(data), "\n"), "\n")
	if len(lines) < 4 {
		t.Fatalf("only %d events", len(lines))
	}
	changed := strings.Replace(string(data), `"SELECT 1"`, `"SELECT 2"`, 1)
	swapped := append([]string{}, lines...)
	swapped[1], swapped[2] = swapped[2], swapped[1]
	for name, content := range map[string]string{
		"one byte changed":  changed,
		"one line removed":  strings.Join(append(append([]string{}, lines[:1]...), lines[2:]...), "") + "\n",
		"two lines swapped": strings.Join(swapped, "") + "\n",
	} {
		copyPath := filepath.Join(t.TempDir(), "copy.jsonl")
		if err := os.WriteFile(copyPath, []byte(strings.TrimSuffix(content, "\n\n")+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		out, err := verifyCLI(t, copyPath)
		if err == nil || !strings.Contains(out, "FAILED") || !strings.Contains(out, "line ") {
			t.Errorf("%s: verify passed or said too little: %v\n%s", name, err, out)
		}
	}

	// Kill a proxy mid-stream: what is on disk still verifies.
	killed := filepath.Join(e.dir, "killed.jsonl")
	e.start(t, "", "--audit-file", killed, "--audit-fsync-interval", "0")
	conn := e.connect(t, "1")
	stop := make(chan struct{})
	go func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := conn.Exec(ctx, "SELECT count(*) FROM orders WHERE id > $1", i); err != nil {
				return
			}
		}
	}()
	time.Sleep(300 * time.Millisecond)
	_ = e.proxy.Process.Signal(syscall.SIGKILL)
	close(stop)
	time.Sleep(100 * time.Millisecond)
	if out, err := verifyCLI(t, killed); err != nil {
		t.Fatalf("verify after SIGKILL: %v\n%s", err, out)
	}
	before := len(auditEvents(t, killed))
	e.start(t, "", "--audit-file", killed)
	again := e.connect(t, "1")
	if _, err := again.Exec(ctx, "SELECT 1", pgx.QueryExecModeSimpleProtocol); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "events after the restart", func() error {
		if len(auditEvents(t, killed)) <= before {
			return os.ErrNotExist
		}
		return nil
	})
	series, _ := filepath.Glob(killed + ".torn-*")
	if out, err := verifyCLI(t, append(series, killed)...); err != nil {
		t.Fatalf("verify of the series after a restart: %v\n%s", err, out)
	}
}

// TestAuditToPostgres: the audit stream can go to a table; while the audit
// database refuses connections, statements are refused (reject mode) and
// nothing is lost; afterwards the table verifies as one chain.
func TestAuditToPostgres(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	auditDSN := pgtest.NewDatabase(t)
	auditDB, err := pgx.Connect(ctx, auditDSN)
	if err != nil {
		t.Fatal(err)
	}
	defer auditDB.Close(ctx)
	admin := e.direct(t)
	e.start(t, "", "--audit-file", "-", "--audit-dsn", auditDSN)
	one := e.connect(t, "1")
	if _, err := one.Exec(ctx, "SELECT * FROM orders", pgxSimple); err != nil {
		t.Fatal(err)
	}
	count := func() int {
		var n int
		if err := auditDB.QueryRow(ctx, "SELECT count(*) FROM tenantproxy.audit_events").Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	eventually(t, 5*time.Second, "events in the table", func() error {
		if count() < 3 {
			return os.ErrNotExist
		}
		return nil
	})

	// Take the audit database away: its sessions are ended and new ones refused.
	name := auditDB.Config().Database
	if _, err := admin.Exec(ctx, fmt.Sprintf(`ALTER DATABASE %q ALLOW_CONNECTIONS false`, name)); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.Exec(ctx, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid() AND application_name <> 'keep'", name); err != nil {
		t.Fatal(err)
	}
	var refused error
	eventually(t, 10*time.Second, "statements refused while the audit database is down", func() error {
		_, refused = one.Exec(ctx, "SELECT 1", pgxSimple)
		if sqlState(refused) != "58030" {
			return fmt.Errorf("got %v", refused)
		}
		return nil
	})
	if _, err := admin.Exec(ctx, fmt.Sprintf(`ALTER DATABASE %q ALLOW_CONNECTIONS true`, name)); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "statements accepted after recovery", func() error {
		_, err := one.Exec(ctx, "SELECT 2", pgxSimple)
		return err
	})
	auditDB2, err := pgx.Connect(ctx, auditDSN)
	if err != nil {
		t.Fatal(err)
	}
	defer auditDB2.Close(ctx)
	var has2 bool
	eventually(t, 5*time.Second, "the accepted statement's event", func() error {
		if err := auditDB2.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM tenantproxy.audit_events WHERE event->>'sql' = 'SELECT 2')").Scan(&has2); err != nil || !has2 {
			return fmt.Errorf("not yet (%v)", err)
		}
		return nil
	})
	out, err := exec.Command(binary(t), "audit", "verify", "--dsn", auditDSN).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "chain intact") {
		t.Fatalf("verify --dsn: %v\n%s", err, out)
	}
}

// TestAuditFileThatCannotBeWritten: with the audit file on a full disk
// (/dev/full), reject mode refuses new sessions with 58030; block mode
// holds them.
func TestAuditFileThatCannotBeWritten(t *testing.T) {
	if _, err := os.Stat("/dev/full"); err != nil {
		t.Skip("no /dev/full on this system")
	}
	e := newEnv(t)
	ctx := context.Background()
	port, err := pgtest.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	metrics := fmt.Sprintf("127.0.0.1:%d", port)
	e.start(t, "", "--audit-file", "/dev/full", "--audit-shutdown-timeout", "1s", "--metrics-listen", metrics)
	// No session starts unaudited: connecting is refused with 58030 (a
	// session connected before an outage has its statements refused with
	// 58030 instead: TestAuditToPostgres).
	eventually(t, 5*time.Second, "sessions refused while the disk is full", func() error {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		c, err := pgx.Connect(cctx, e.connString(e.token(t, "1")))
		if err == nil {
			c.Close(ctx)
			return fmt.Errorf("a session started while its events could not be recorded")
		}
		if sqlState(err) != "58030" {
			return fmt.Errorf("got %v, want 58030", err)
		}
		return nil
	})
	// Not ready while the audit stream cannot be written.
	resp, err := http.Get("http://" + metrics + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(body), "audit stream") {
		t.Errorf("/readyz while the audit stream fails: %d %s", resp.StatusCode, body)
	}
	if !strings.Contains(e.logs.String(), "audit write failed") {
		t.Error("the failure is not logged")
	}

	// Block mode holds everything, new sessions included, rather than run
	// anything unaudited.
	e.start(t, "", "--audit-file", "/dev/full", "--audit-on-failure", "block", "--audit-shutdown-timeout", "1s")
	cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if conn, err := pgx.Connect(cctx, e.connString(e.token(t, "1"))); err == nil {
		_, err = conn.Exec(cctx, "SELECT 1", pgxSimple)
		conn.Close(ctx)
		if err == nil {
			t.Fatal("a statement ran while the audit stream was blocked")
		}
	}
}
