package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tenantproxy/tenantproxy/audit"
)

// shadowAuditFiles writes a synthetic audit stream as a proxy writes it (a
// hash-chained series of two files, the second ending in a torn line): two
// shadow-mode sessions of tenants 1 and 2, and one session of an enforcing
// proxy.
func shadowAuditFiles(t *testing.T) (older, newer string) {
	t.Helper()
	dir := t.TempDir()
	older, newer = filepath.Join(dir, "audit.jsonl.1"), filepath.Join(dir, "audit.jsonl")
	at := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	next := func() time.Time { at = at.Add(time.Second); return at }
	stmt := func(mode, id, tenant, decision, sql, fp, rewritten, reason string) audit.Event {
		session, _, _ := strings.Cut(id, "-")
		e := audit.Event{Time: next(), Kind: "statement", Mode: mode, Session: session, StatementID: id, Tenants: []string{tenant},
			SQL: sql, Fingerprint: fp, Decision: decision, Rewritten: rewritten, Reason: reason}
		if reason != "" {
			e.SQLState = "42501"
		}
		return e
	}
	const secrets = `tenantproxy: table "secrets" is not in the tenant catalog`
	first := []audit.Event{
		{Time: next(), Kind: "session.accepted", Mode: "shadow", Session: "s1"},
		stmt("shadow", "s1-1", "1", "passed", "SELECT 1", "fp-one", "", ""),
		stmt("shadow", "s1-2", "1", "would-rewrite", "SELECT * FROM orders WHERE id = 10", "fp-orders",
			"SELECT * FROM (SELECT * FROM public.orders WHERE orders.tenant_id = '1') orders WHERE id = 10", ""),
		stmt("shadow", "s1-3", "1", "would-reject", "SELECT * FROM secrets", "fp-secrets", "", secrets),
		{Time: next(), Kind: "statement.completed", Mode: "shadow", Session: "s1", StatementID: "s1-3", CommandTag: "SELECT 1", Rows: 1, Executions: 1},
		stmt("shadow", "s2-1", "2", "would-rewrite", "SELECT * FROM orders WHERE id = 20", "fp-orders",
			"SELECT * FROM (SELECT * FROM public.orders WHERE orders.tenant_id = '2') orders WHERE id = 20", ""),
	}
	second := []audit.Event{
		stmt("shadow", "s2-2", "2", "would-reject", "SELECT *\nFROM secrets", "fp-secrets", "", secrets),
		{Time: next(), Kind: "statement.bind", Mode: "shadow", Session: "s2", Tenants: []string{"2"}, Fingerprint: "fp-insert",
			SQL: "INSERT INTO orders (tenant_id, total) VALUES ($1, $2)", Decision: "would-reject", SQLState: "42501",
			Reason: `tenantproxy: parameter $1 names tenant "1", which is not the session's tenant`},
		{Time: next(), Kind: "statement.copy", Mode: "shadow", Session: "s2", Tenants: []string{"2"}, Fingerprint: "fp-copy",
			SQL: "COPY orders (tenant_id, total) FROM STDIN", Decision: "would-reject", SQLState: "42501",
			Reason: `tenantproxy: COPY refused: row 2 names tenant "1" in column tenant_id, which is not the session's tenant`},
		{Time: next(), Kind: "statement.completed", Mode: "shadow", Session: "s2", StatementID: "s2-2", CommandTag: "SELECT 1", Rows: 3, Executions: 3},
		stmt("", "s3-1", "3", "rejected", "SELECT * FROM secrets", "fp-secrets", "", secrets),
		stmt("", "s3-2", "3", "rewritten", "SELECT * FROM orders WHERE id = 30", "fp-orders",
			"SELECT * FROM (SELECT * FROM public.orders WHERE orders.tenant_id = '3') orders WHERE id = 30", ""),
	}
	var b1, b2 bytes.Buffer
	sink := audit.NewJSONLSink(&b1, nil)
	for _, e := range first {
		if err := sink.Write(e); err != nil {
			t.Fatal(err)
		}
	}
	sink2 := audit.NewJSONLSink(&b2, nil)
	for _, e := range second {
		if err := sink2.Write(e); err != nil {
			t.Fatal(err)
		}
	}
	b2.WriteString(`{"seq":12,"time":"2026-11-23T12:0`) // torn by a crash
	if err := os.WriteFile(older, b1.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(newer, b2.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	return older, newer
}

func runAuditCLI(t *testing.T, stdin string, args ...string) (string, error) {
	t.Helper()
	cmd := newRootCmd()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SetIn(strings.NewReader(stdin))
	cmd.SetArgs(args)
	err := cmd.Execute()
	return out.String(), err
}

// The report sums up the shadow-mode statements, lists what enforce mode
// would refuse first, then what it would rewrite, by fingerprint and by
// how often they ran (from statement.completed), and leaves enforce
// mode's events out.
func TestAuditReportGroupsShadowFindings(t *testing.T) {
	older, newer := shadowAuditFiles(t)
	out, err := runAuditCLI(t, "", "audit", "report", older, newer)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	lines := strings.Split(out, "\n")
	if want := "5 statements seen: would-pass 1 (20.0%), would-rewrite 2 (40.0%), would-reject 2 (40.0%); when run, would-reject 1 Bind and 1 COPY"; lines[0] != want {
		t.Fatalf("summary\n%s\nwant\n%s\n\n%s", lines[0], want, out)
	}
	if !strings.Contains(lines[1], "events from 2026-11-23T12:00:01Z to 2026-11-23T12:00:12Z; 2 files; 1 unreadable line skipped") {
		t.Errorf("second line: %s", lines[1])
	}
	var heads []string
	for _, l := range lines {
		if l != "" && !strings.HasPrefix(l, " ") && l != lines[0] && l != lines[1] {
			heads = append(heads, l)
		}
	}
	want := []string{
		"WOULD-REJECT  2 statements, 4 runs  2 tenants  2 sessions  2026-11-23T12:00:04Z .. 2026-11-23T12:00:10Z",
		"WOULD-REJECT AT BIND  1 Bind  1 tenant  1 session  2026-11-23T12:00:08Z .. 2026-11-23T12:00:08Z",
		"WOULD-REJECT COPY ROWS  1 COPY  1 tenant  1 session  2026-11-23T12:00:09Z .. 2026-11-23T12:00:09Z",
		"WOULD-REWRITE  2 statements, 0 runs  2 tenants  2 sessions  2026-11-23T12:00:03Z .. 2026-11-23T12:00:06Z",
	}
	if strings.Join(heads, "\n") != strings.Join(want, "\n") {
		t.Fatalf("groups:\n%s\nwant:\n%s\n\n%s", strings.Join(heads, "\n"), strings.Join(want, "\n"), out)
	}
	for _, s := range []string{
		"  sql         SELECT * FROM secrets\n  reason      table \"secrets\" is not in the tenant catalog [42501]\n  fingerprint fp-secrets\n",
		"  reason      parameter $1 names tenant \"1\", which is not the session's tenant [42501]",
		"  sql         SELECT * FROM orders WHERE id = 10\n  rewritten   SELECT * FROM (SELECT * FROM public.orders WHERE orders.tenant_id = '1') orders WHERE id = 10\n",
	} {
		if !strings.Contains(out, s) {
			t.Errorf("missing\n%s\nin\n%s", s, out)
		}
	}
	if strings.Contains(out, "SELECT 1") || strings.Contains(out, "id = 30") {
		t.Errorf("passed statements or enforce mode's events are listed:\n%s", out)
	}
}

// With --enforced, enforce mode's decisions are counted and grouped beside
// shadow mode's; -o json carries the same; - reads standard input.
func TestAuditReportJSONAndEnforced(t *testing.T) {
	older, newer := shadowAuditFiles(t)
	data, _ := os.ReadFile(older)
	out, err := runAuditCLI(t, string(data), "audit", "report", "-o", "json", "--enforced", "-", newer)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	var r struct {
		Files  []string
		Groups []reportGroup
	}
	r2 := map[string]any{}
	if err := json.Unmarshal([]byte(out), &r2); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatal(err)
	}
	num := func(k string) int { v, _ := r2[k].(float64); return int(v) }
	if num("statements") != 7 || num("would_pass") != 1 || num("would_rewrite") != 3 || num("would_reject") != 3 ||
		num("enforced") != 2 || num("binds_would_reject") != 1 || num("copies_would_reject") != 1 || num("skipped_lines") != 1 {
		t.Fatalf("totals: %s", out)
	}
	var got []string
	for _, g := range r.Groups {
		got = append(got, g.Kind+" "+g.Decision+" "+g.Fingerprint)
	}
	want := []string{"statement would-reject fp-secrets", "statement.bind would-reject fp-insert", "statement.copy would-reject fp-copy",
		"statement rejected fp-secrets", "statement would-rewrite fp-orders", "statement rewritten fp-orders"}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("groups:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if g := r.Groups[0]; g.Count != 2 || g.Runs != 4 || g.Tenants != 2 || g.Sessions != 2 || g.SQLState != "42501" || g.SQL != "SELECT * FROM secrets" ||
		!g.FirstSeen.Equal(time.Date(2026, 11, 23, 12, 0, 4, 0, time.UTC)) || !g.LastSeen.Equal(time.Date(2026, 11, 23, 12, 0, 10, 0, time.UTC)) {
		t.Errorf("first group: %+v", g)
	}
	if r.Files[0] != "-" {
		t.Errorf("files: %v", r.Files)
	}
}

// Without shadow-mode events the report says so; a file that does not
// exist and an unknown output are errors; tail takes the shadow decisions
// and refuses a misspelt one.
func TestAuditReportEdges(t *testing.T) {
	var b bytes.Buffer
	sink := audit.NewJSONLSink(&b, nil)
	_ = sink.Write(audit.Event{Kind: "statement", Decision: "rejected", SQL: "SELECT * FROM secrets", Fingerprint: "x", Reason: "no"})
	path := filepath.Join(t.TempDir(), "enforce.jsonl")
	if err := os.WriteFile(path, b.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := runAuditCLI(t, "", "audit", "report", path)
	if err != nil || !strings.HasPrefix(out, "0 statements seen: would-pass 0 (0%)") || !strings.Contains(out, "--enforced counts enforce mode's") {
		t.Errorf("enforce-only file: %v\n%s", err, out)
	}
	if _, err := runAuditCLI(t, "", "audit", "report", filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Error("a missing file is not an error")
	}
	if _, err := runAuditCLI(t, "", "audit", "report", "-o", "yaml", path); err == nil {
		t.Error("-o yaml accepted")
	}
	older, _ := shadowAuditFiles(t)
	out, err = runAuditCLI(t, "", "audit", "tail", older, "--decision", "would-reject")
	if err != nil || !strings.Contains(out, `[shadow] sub= tenant=1 would-reject "SELECT * FROM secrets"`) || strings.Contains(out, "would-rewrite") {
		t.Errorf("tail --decision would-reject: %v\n%s", err, out)
	}
	if out, err := runAuditCLI(t, "", "audit", "tail", older, "--decision", "would_reject"); err == nil || !strings.Contains(err.Error(), "would-reject") {
		t.Errorf("a misspelt decision: %v\n%s", err, out)
	}
}

// --mode shadow needs --pool-mode session; modes and predicted pool modes
// are checked.
func TestModeFlags(t *testing.T) {
	base := serveOptions{mode: "enforce", shadowPoolMode: "transaction", poolMode: "transaction"}
	for _, c := range []struct {
		mode, shadowPool, pool string
		err                    string
	}{
		{"enforce", "transaction", "transaction", ""},
		{"shadow", "transaction", "session", ""},
		{"shadow", "session", "session", ""},
		{"shadow", "transaction", "transaction", "--mode shadow needs --pool-mode session"},
		{"audit", "transaction", "session", `--mode must be enforce or shadow, got "audit"`},
		{"shadow", "statement", "session", "--shadow-pool-mode must be transaction or session"},
	} {
		o := base
		o.mode, o.shadowPoolMode, o.poolMode = c.mode, c.shadowPool, c.pool
		err := checkModeFlags(o)
		if c.err == "" && err != nil || c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)) {
			t.Errorf("%+v: %v, want %q", c, err, c.err)
		}
	}
}
