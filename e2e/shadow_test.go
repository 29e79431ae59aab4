package e2e_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/tenantproxy/tenantproxy/audit"
)

// shadowArgs start a proxy in shadow mode (which needs one upstream
// connection per client), predicting the default transaction pooling.
var shadowArgs = []string{"--mode", "shadow", "--pool-mode", "session"}

// insert is the script's prepared INSERT, whose first parameter is the
// tenant column.
const insert = "INSERT INTO orders (tenant_id, customer_id, total, note) VALUES ($1, $2, $3, $4)"

// shadowScript is an application's mix of statements as tenant 1: reads
// that enforce mode scopes, a table it refuses, a prepared INSERT bound to
// another tenant, a COPY with a row of another tenant, a transaction with
// a refusal inside, SQL-level PREPARE (refused with transaction pooling)
// and a fast-path function call. It returns what the client saw, step by
// step: a result, or the SQLSTATE of the error.
func shadowScript(t *testing.T, e *env) []string {
	t.Helper()
	ctx := context.Background()
	conn := e.connect(t, "1")
	var out []string
	add := func(step, result string, err error) {
		if err != nil {
			result = "ERROR " + sqlState(err)
			if sqlState(err) == "" {
				t.Fatalf("%s: %v", step, err)
			}
		}
		out = append(out, step+": "+result)
	}
	query := func(step, sql string, args ...any) {
		rows, err := conn.Query(ctx, sql, args...)
		var vals []string
		if err == nil {
			vals, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (string, error) {
				v, err := r.Values()
				if err != nil || len(v) == 0 {
					return "", err
				}
				return toText(v[0]), nil
			})
		}
		add(step, strings.Join(vals, ","), err)
	}
	exec := func(step, sql string, args ...any) {
		tag, err := conn.Exec(ctx, sql, args...)
		add(step, tag.String(), err)
	}
	query("scoped read", "SELECT id FROM orders WHERE id < 100 ORDER BY id", pgxSimple)
	query("join", "SELECT c.name FROM customers c JOIN orders o ON o.customer_id = c.id WHERE o.id = 20", pgxSimple)
	query("uncatalogued table", "SELECT value FROM secrets", pgxSimple)
	query("extended read of another tenant", "SELECT count(*) FROM orders WHERE tenant_id = $1 AND id < 100", 2)
	exec("insert for another tenant", insert, 2, 3, 42, "cross-tenant insert")
	exec("insert for the own tenant", insert, 1, 1, 43, "own insert")
	tag, err := conn.PgConn().CopyFrom(ctx, strings.NewReader("1\t1\t7\tcopied\n2\t3\t8\tcopied\n"),
		"COPY orders (tenant_id, customer_id, total, note) FROM STDIN")
	add("copy with a row of another tenant", tag.String(), err)
	exec("begin", "BEGIN", pgxSimple)
	exec("update another tenant's order", "UPDATE orders SET note = 'touched by tenant 1' WHERE id = 20", pgxSimple)
	query("uncatalogued table in the transaction", "SELECT count(*) FROM secrets", pgxSimple)
	exec("commit", "COMMIT", pgxSimple)
	exec("sql prepare", "PREPARE five AS SELECT 5", pgxSimple)
	query("sql execute", "EXECUTE five", pgxSimple)
	exec("sql deallocate", "DEALLOCATE five", pgxSimple)

	// The fast-path protocol has no SQL to scope.
	var oid uint32
	if err := e.direct(t).QueryRow(ctx, "SELECT 'pg_backend_pid'::regproc::oid").Scan(&oid); err != nil {
		t.Fatal(err)
	}
	raw := e.raw(t, "1")
	raw.send(&pgproto3.FunctionCall{Function: oid})
	out = append(out, "fast-path call: "+strings.Join(raw.until(), " | "))
	return out
}

// decisionOf is a statement event's decision in enforce mode's terms, with
// what the decision says: shadow mode's prediction of enforce mode.
func decisionOf(e audit.Event) string {
	d := strings.TrimPrefix(e.Decision, "would-")
	switch d {
	case "rewrite":
		d = "rewritten"
	case "reject":
		d = "rejected"
	}
	return fmt.Sprintf("%s %s %q rewritten=%q reason=%q sqlstate=%s", e.Kind, d, e.SQL, e.Rewritten, e.Reason, e.SQLState)
}

// decisions reads the decisions of an audit file, in order, once every
// statement event of its sessions is there (the fast-path call is the
// last statement).
func decisions(t *testing.T, path string) []audit.Event {
	t.Helper()
	var out []audit.Event
	eventually(t, 10*time.Second, "the fast-path call's event", func() error {
		out = out[:0]
		done := false
		for _, ev := range auditEvents(t, path) {
			switch ev.Kind {
			case "statement", "statement.bind", "statement.copy":
				out = append(out, ev)
				done = done || strings.Contains(ev.Reason, "fast-path")
			}
		}
		if !done {
			return fmt.Errorf("%d decisions so far", len(out))
		}
		return nil
	})
	return out
}

// TestShadowModeRunsEverythingAndAuditsWhatEnforceWould: a proxy started
// with --mode shadow refuses nothing — the client reads and writes other
// tenants' rows and the uncatalogued table — and records for each
// statement what enforce mode would have done: would-rewrite with the SQL
// it would send, would-reject with the reason, for statements, Binds and
// COPY rows. It says so loudly at start and in its metrics, and
// tenantproxy audit report sums the findings up.
func TestShadowModeRunsEverythingAndAuditsWhatEnforceWould(t *testing.T) {
	metrics := freeAddr(t)
	e := newEnv(t, envOptions{extraArgs: append(slices.Clone(shadowArgs), "--metrics-listen", metrics)})
	if !strings.Contains(e.logs.String(), "SHADOW MODE: THIS PROXY PROTECTS NOTHING") {
		t.Errorf("no warning at start:\n%s", e.logs.String())
	}
	got := shadowScript(t, e)
	want := []string{
		"scoped read: 10,11,12,20,21,30",
		"join: carol",
		"uncatalogued table: do not leak",
		"extended read of another tenant: 2",
		"insert for another tenant: INSERT 0 1",
		"insert for the own tenant: INSERT 0 1",
		"copy with a row of another tenant: COPY 2",
		"begin: BEGIN",
		"update another tenant's order: UPDATE 1",
		"uncatalogued table in the transaction: 1",
		"commit: COMMIT",
		"sql prepare: PREPARE",
		"sql execute: 5",
		"sql deallocate: DEALLOCATE",
		"fast-path call: FunctionCallResponse | ReadyForQuery I",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("the client saw:\n%s\nwant (nothing enforced):\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	direct := e.direct(t)
	wantRows(t, column(t, direct, "SELECT note FROM orders WHERE tenant_id = 2 AND id <> 21 ORDER BY id"),
		"touched by tenant 1", "cross-tenant insert", "copied")

	path := filepath.Join(e.dir, "audit.jsonl")
	events := decisions(t, path)
	bySQL := map[string]audit.Event{}
	for _, ev := range events {
		if ev.Mode != "shadow" {
			t.Errorf("event without mode shadow: %+v", ev)
		}
		bySQL[ev.Kind+" "+ev.SQL] = ev
	}
	check := func(key, decision string, ok func(audit.Event) bool) {
		t.Helper()
		ev, found := bySQL[key]
		if !found || ev.Decision != decision || !ok(ev) {
			t.Errorf("%s: want %s, got %+v", key, decision, ev)
		}
	}
	check("statement SELECT id FROM orders WHERE id < 100 ORDER BY id", "would-rewrite", func(ev audit.Event) bool {
		return ev.Rewritten == "SELECT id FROM (SELECT * FROM public.orders WHERE orders.tenant_id = '1') orders WHERE id < 100 ORDER BY id"
	})
	check("statement SELECT value FROM secrets", "would-reject", func(ev audit.Event) bool {
		return strings.Contains(ev.Reason, `table "secrets" is not in the tenant catalog`) && ev.SQLState == "42501" && ev.Rewritten == ""
	})
	check("statement "+insert, "would-rewrite", func(ev audit.Event) bool { return strings.Contains(ev.Rewritten, "public.orders") })
	check("statement.bind "+insert, "would-reject", func(ev audit.Event) bool {
		return strings.Contains(ev.Reason, `parameter $1 names tenant "2", which is not the session's tenant`) && ev.SQLState == "42501" &&
			ev.StatementID == bySQL["statement "+insert].StatementID
	})
	check("statement.copy COPY orders (tenant_id, customer_id, total, note) FROM STDIN", "would-reject", func(ev audit.Event) bool {
		return strings.Contains(ev.Reason, `COPY refused: row 2 names tenant "2"`)
	})
	check("statement PREPARE five AS SELECT 5", "would-reject", func(ev audit.Event) bool {
		return strings.Contains(ev.Reason, "not available in transaction pooling mode")
	})
	check("statement BEGIN", "passed", func(ev audit.Event) bool { return ev.Rewritten == "" })
	check("statement ", "would-reject", func(ev audit.Event) bool { return strings.Contains(ev.Reason, "fast-path") })
	// What ran is recorded as in enforce mode: the refused read returned its row.
	eventually(t, 5*time.Second, "the completion of the uncatalogued read", func() error {
		for _, ev := range auditEvents(t, path) {
			if ev.Kind == "statement.completed" && ev.StatementID == bySQL["statement SELECT value FROM secrets"].StatementID && ev.Rows == 1 {
				return nil
			}
		}
		return fmt.Errorf("not yet")
	})
	if v := metric(t, metrics, `tenantproxy_mode\{mode="shadow"\}`); v != 1 {
		t.Errorf("tenantproxy_mode{mode=\"shadow\"} = %v", v)
	}
	if v := metric(t, metrics, `tenantproxy_statements_total\{decision="would-reject"\}`); v < 6 {
		t.Errorf("would-reject statements counted: %v", v)
	}

	// The report: would-reject first, then by count; an example and the
	// reason or the rewritten SQL for each.
	out, err := exec.Command(binary(t), "audit", "report", path).CombinedOutput()
	if err != nil {
		t.Fatalf("audit report: %v\n%s", err, out)
	}
	report := string(out)
	lines := strings.Split(report, "\n")
	if want := "14 statements seen: would-pass 2 (14.3%), would-rewrite 6 (42.9%), would-reject 6 (42.9%); when run, would-reject 1 Bind and 1 COPY"; lines[0] != want {
		t.Errorf("summary:\n%s\nwant\n%s", lines[0], want)
	}
	var heads []string
	for _, l := range lines[2:] {
		if l != "" && !strings.HasPrefix(l, " ") {
			heads = append(heads, strings.Fields(l)[0]+" "+strings.Fields(l)[1])
		}
	}
	firstRewrite := slices.IndexFunc(heads, func(h string) bool { return strings.HasPrefix(h, "WOULD-REWRITE") })
	if firstRewrite != 8 || slices.ContainsFunc(heads[firstRewrite:], func(h string) bool { return strings.HasPrefix(h, "WOULD-REJECT") }) {
		t.Errorf("groups not in order (8 would-reject, then would-rewrite): %q\n%s", heads, report)
	}
	for _, s := range []string{
		"  sql         SELECT value FROM secrets\n  reason      table \"secrets\" is not in the tenant catalog [42501]\n",
		"WOULD-REJECT AT BIND  1 Bind  1 tenant  1 session",
		"  reason      parameter $1 names tenant \"2\", which is not the session's tenant [42501]",
		"WOULD-REJECT COPY ROWS  1 COPY  1 tenant",
		"WOULD-REJECT  1 statement, 1 run  1 tenant  1 session",
		"  sql         SELECT id FROM orders WHERE id < 100 ORDER BY id\n  rewritten   SELECT id FROM (SELECT * FROM public.orders WHERE orders.tenant_id = '1') orders WHERE id < 100 ORDER BY id\n",
	} {
		if !strings.Contains(report, s) {
			t.Errorf("report lacks\n%s\nin\n%s", s, report)
		}
	}
	t.Logf("audit report:\n%s", report)

	// The rewrite cache serves shadow mode: another tenant's run of a
	// statement is a hit, recorded with that tenant's scoping.
	hits := metric(t, metrics, "tenantproxy_rewrite_cache_hits_total")
	const scoped = "SELECT id FROM orders WHERE id < 100 ORDER BY id"
	wantRows(t, column(t, e.connect(t, "2"), scoped, pgxSimple), "10", "11", "12", "20", "21", "30")
	if after := metric(t, metrics, "tenantproxy_rewrite_cache_hits_total"); after != hits+1 {
		t.Errorf("rewrite cache hits went from %v to %v", hits, after)
	}
	eventually(t, 5*time.Second, "tenant 2's event", func() error {
		for _, ev := range auditEvents(t, path) {
			if ev.SQL == scoped && strings.Join(ev.Tenants, ",") == "2" {
				if ev.Decision != "would-rewrite" || !strings.Contains(ev.Rewritten, "orders.tenant_id = '2'") {
					t.Fatalf("tenant 2's event: %+v", ev)
				}
				return nil
			}
		}
		return fmt.Errorf("not yet")
	})
}

// TestShadowModePredictsEnforce: the same statements through a proxy in
// enforce mode (the default, with transaction pooling) get exactly the
// decisions shadow mode recorded — statement by statement, Bind and COPY
// included, with the same rewritten SQL and reasons — and the client sees
// the refusals.
func TestShadowModePredictsEnforce(t *testing.T) {
	e := newEnv(t, envOptions{extraArgs: shadowArgs})
	shadowed := shadowScript(t, e)
	shadowFile := filepath.Join(e.dir, "audit.jsonl")
	enforceFile := filepath.Join(e.dir, "enforce.jsonl")
	e.start(t, "", "--audit-file", enforceFile)
	enforced := shadowScript(t, e)

	want := map[string]string{
		"scoped read":                           "10,11,12",
		"join":                                  "",
		"uncatalogued table":                    "ERROR 42501",
		"extended read of another tenant":       "0",
		"insert for another tenant":             "ERROR 42501",
		"copy with a row of another tenant":     "ERROR 42501",
		"update another tenant's order":         "UPDATE 0",
		"uncatalogued table in the transaction": "ERROR 42501",
		"commit":                                "ROLLBACK",
		"sql prepare":                           "ERROR 42501",
		"sql execute":                           "ERROR 42501",
		"sql deallocate":                        "ERROR 26000", // PREPARE was refused: no such statement
		"fast-path call":                        "Error 42501 | ReadyForQuery I",
	}
	for i, line := range enforced {
		step, result, _ := strings.Cut(line, ": ")
		if w, ok := want[step]; ok && result != w {
			t.Errorf("enforce mode, %s: %s, want %s", step, result, w)
		}
		if _, ok := want[step]; !ok && result != strings.SplitN(shadowed[i], ": ", 2)[1] {
			t.Errorf("enforce mode, %s: %s, shadow mode saw %s", step, result, shadowed[i])
		}
	}

	// Each distinct statement once, in order: a client may repeat one
	// after a refusal (pgx prepares a statement again after any error).
	predicted, decided := decisions(t, shadowFile), decisions(t, enforceFile)
	var p, d []string
	for _, ev := range predicted {
		if k := decisionOf(ev); !slices.Contains(p, k) {
			p = append(p, k)
		}
	}
	for _, ev := range decided {
		if ev.Mode != "" || strings.HasPrefix(ev.Decision, "would-") {
			t.Errorf("an enforce-mode event looks like shadow mode's: %+v", ev)
		}
		if k := decisionOf(ev); !slices.Contains(d, k) {
			d = append(d, k)
		}
	}
	if strings.Join(p, "\n") != strings.Join(d, "\n") {
		t.Fatalf("shadow mode predicted:\n%s\nenforce mode decided:\n%s", strings.Join(p, "\n"), strings.Join(d, "\n"))
	}
	if len(p) < 16 {
		t.Fatalf("only %d decisions compared", len(p))
	}

	// Enforce mode still fills in the tenant column a COPY leaves out.
	tag, err := e.connect(t, "1").PgConn().CopyFrom(context.Background(), strings.NewReader("1\t9.5\tfilled in\n"),
		"COPY orders (customer_id, total, note) FROM STDIN")
	if err != nil || tag.RowsAffected() != 1 {
		t.Fatalf("copy without the tenant column: %v %v", tag, err)
	}
	wantRows(t, column(t, e.direct(t), "SELECT tenant_id FROM orders WHERE note = 'filled in'"), "1")
}

// TestShadowModeNeedsSessionPooling: --mode shadow with transaction
// pooling does not start, and says why.
func TestShadowModeNeedsSessionPooling(t *testing.T) {
	e := newEnv(t)
	cmd := exec.Command(binary(t), "serve", "--listen", freeAddr(t), "--upstream", e.upstream, "--jwt-key", e.keyFile,
		"--audit-file", filepath.Join(e.dir, "refused.jsonl"), "--mode", "shadow")
	cmd.Env = os.Environ()
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "--mode shadow needs --pool-mode session") {
		t.Fatalf("serve --mode shadow with transaction pooling: %v\n%s", err, out)
	}
}
