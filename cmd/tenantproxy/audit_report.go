package main

import (
	"bufio"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/tenantproxy/tenantproxy/audit"
)

func newAuditReportCmd() *cobra.Command {
	var output string
	var enforced bool
	cmd := &cobra.Command{
		Use:   "report FILE... [-o text|json] [--enforced]",
		Short: "Sum up what enforce mode would refuse and rewrite, from a shadow-mode audit stream",
		Long: `Read audit files (a rotated series oldest first; - is standard input) and
group the statements a proxy in --mode shadow recorded by fingerprint
(statements that differ only in their constants share one): for each group
the decision enforce mode would make, how many statements were sent and how
often they ran (a prepared statement is sent once and may run many times),
for how many tenants and sessions, when first and last seen, an example as
the client sent it, and the reason it would be refused or the SQL enforce
mode would send instead. Groups enforce mode would refuse come first, then
by runs. The first line sums up every statement seen; statements that would
pass are counted, not listed.

Binds and COPY rows enforce mode would refuse (a tenant parameter bound to
another tenant, a row of another tenant) are groups of their own. With
--enforced, the statements an enforcing proxy rewrote and refused are
counted and grouped too.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if output != "text" && output != "json" {
				return fmt.Errorf("--output %q: use text or json", output)
			}
			r := newShadowReport(enforced)
			for _, path := range args {
				if err := r.readFile(path, cmd.InOrStdin()); err != nil {
					return err
				}
			}
			r.finish()
			out := cmd.OutOrStdout()
			if output == "json" {
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				return enc.Encode(r)
			}
			r.writeText(out)
			return nil
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "text", "text or json")
	cmd.Flags().BoolVar(&enforced, "enforced", false, "also count and group the statements of enforce mode (decisions rewritten and rejected)")
	return cmd
}

// shadowReport is what audit report found.
type shadowReport struct {
	Files  []string  `json:"files"`
	Events int       `json:"events"`
	From   time.Time `json:"from,omitzero"`
	To     time.Time `json:"to,omitzero"`
	// Skipped counts lines that are not events (a line torn by a crash).
	Skipped int `json:"skipped_lines,omitempty"`

	// Statements counts statement strings; each is counted under what
	// enforce mode does with it. Enforced counts those that an enforcing
	// proxy decided (--enforced).
	Statements   int `json:"statements"`
	WouldPass    int `json:"would_pass"`
	WouldRewrite int `json:"would_rewrite"`
	WouldReject  int `json:"would_reject"`
	Enforced     int `json:"enforced,omitempty"`
	// Binds and COPYs enforce mode refuses after accepting the statement.
	BindsWouldReject  int `json:"binds_would_reject"`
	CopiesWouldReject int `json:"copies_would_reject"`

	Groups []*reportGroup `json:"groups"`

	enforced bool
	byKey    map[string]*reportGroup
	byID     map[string]*reportGroup // statement id -> its group
}

// reportGroup is the statements of one fingerprint with one decision.
type reportGroup struct {
	// Kind is statement, statement.bind (refused at Bind) or
	// statement.copy (a COPY row refused).
	Kind        string `json:"kind"`
	Decision    string `json:"decision"`
	Fingerprint string `json:"fingerprint,omitempty"`
	// Count is the statements sent (a Query, a Parse; for kinds
	// statement.bind and statement.copy, the refused Binds and COPYs);
	// Runs how often they ran, from their statement.completed events.
	Count    int   `json:"count"`
	Runs     int64 `json:"runs"`
	Tenants  int   `json:"tenants"`
	Sessions int   `json:"sessions"`
	// FirstSeen is when the first statement was sent, LastSeen the last
	// event about the group (a prepared statement's run totals are
	// written when it is closed or its session ends).
	FirstSeen time.Time `json:"first_seen"`
	LastSeen  time.Time `json:"last_seen"`
	// SQL is the first statement of the group as the client sent it;
	// Rewritten what enforce mode sends in its place.
	SQL       string `json:"sql,omitempty"`
	Rewritten string `json:"rewritten,omitempty"`
	// Reason and SQLState are the most frequent refusal of the group;
	// Reasons counts its distinct reasons.
	Reason   string `json:"reason,omitempty"`
	SQLState string `json:"sqlstate,omitempty"`
	Reasons  int    `json:"reasons,omitempty"`

	tenants, sessions map[string]bool
	reasons           map[string]*reasonCount
}

type reasonCount struct {
	n, first int
	state    string
}

func newShadowReport(enforced bool) *shadowReport {
	return &shadowReport{enforced: enforced, byKey: map[string]*reportGroup{}, byID: map[string]*reportGroup{}, Groups: []*reportGroup{}}
}

// readFile adds the events of one audit file ("-": stdin).
func (r *shadowReport) readFile(path string, stdin io.Reader) error {
	in := stdin
	if path != "-" {
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		in = f
	}
	r.Files = append(r.Files, path)
	br := bufio.NewReader(in)
	for {
		line, err := br.ReadBytes('\n')
		if len(strings.TrimSpace(string(line))) > 0 {
			var e audit.Event
			if json.Unmarshal(line, &e) != nil {
				r.Skipped++
			} else {
				r.add(e)
			}
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
	}
}

// add counts one event.
func (r *shadowReport) add(e audit.Event) {
	r.Events++
	if r.From.IsZero() || e.Time.Before(r.From) {
		r.From = e.Time
	}
	if e.Time.After(r.To) {
		r.To = e.Time
	}
	if e.Kind == "statement.completed" {
		if g := r.byID[e.StatementID]; g != nil {
			g.Runs += e.Executions
			if e.Time.After(g.LastSeen) {
				g.LastSeen = e.Time // a prepared statement's totals come when it ends
			}
		}
		return
	}
	if e.Mode != "shadow" && !r.enforced {
		return
	}
	switch e.Kind {
	case "statement":
		r.Statements++
		if e.Mode != "shadow" {
			r.Enforced++
		}
		switch e.Decision {
		case audit.DecisionPassed:
			r.WouldPass++
			return
		case audit.DecisionRewritten, audit.DecisionWouldRewrite:
			r.WouldRewrite++
		case audit.DecisionRejected, audit.DecisionWouldReject:
			r.WouldReject++
		default:
			return
		}
	case "statement.bind", "statement.copy":
		if !rejects(e.Decision) {
			return
		}
		if e.Kind == "statement.bind" {
			r.BindsWouldReject++
		} else {
			r.CopiesWouldReject++
		}
	default:
		return
	}
	r.group(e)
}

func rejects(decision string) bool {
	return decision == audit.DecisionRejected || decision == audit.DecisionWouldReject
}

// group adds a statement event to its fingerprint's group.
func (r *shadowReport) group(e audit.Event) {
	id := e.Fingerprint
	switch {
	case id != "":
	case e.SQL != "":
		id = "sql:" + e.SQL // does not parse
	default:
		id = "reason:" + e.Reason // no SQL (a fast-path function call)
	}
	key := e.Kind + "\x00" + e.Decision + "\x00" + id
	g := r.byKey[key]
	if g == nil {
		g = &reportGroup{Kind: e.Kind, Decision: e.Decision, Fingerprint: e.Fingerprint, FirstSeen: e.Time, LastSeen: e.Time,
			SQL: e.SQL, Rewritten: e.Rewritten, tenants: map[string]bool{}, sessions: map[string]bool{}, reasons: map[string]*reasonCount{}}
		r.byKey[key] = g
		r.Groups = append(r.Groups, g)
	}
	g.Count++
	if e.Kind == "statement" {
		if e.StatementID != "" {
			r.byID[e.StatementID] = g
		}
	} else {
		g.Runs++ // each event is one refused Bind or COPY
	}
	for _, t := range e.Tenants {
		g.tenants[t] = true
	}
	if e.Session != "" {
		g.sessions[e.Session] = true
	}
	if e.Time.Before(g.FirstSeen) {
		g.FirstSeen = e.Time
	}
	if e.Time.After(g.LastSeen) {
		g.LastSeen = e.Time
	}
	if e.Reason != "" {
		rc := g.reasons[e.Reason]
		if rc == nil {
			rc = &reasonCount{first: len(g.reasons), state: e.SQLState}
			g.reasons[e.Reason] = rc
		}
		rc.n++
	}
}

// finish fills in the groups' totals and sorts them: refusals first, then
// by runs and statements.
func (r *shadowReport) finish() {
	for _, g := range r.Groups {
		g.Tenants, g.Sessions, g.Reasons = len(g.tenants), len(g.sessions), len(g.reasons)
		var best *reasonCount
		for reason, rc := range g.reasons {
			if best == nil || rc.n > best.n || rc.n == best.n && rc.first < best.first {
				best, g.Reason, g.SQLState = rc, reason, rc.state
			}
		}
	}
	rank := func(g *reportGroup) int {
		if rejects(g.Decision) {
			return 0
		}
		return 1
	}
	slices.SortStableFunc(r.Groups, func(a, b *reportGroup) int {
		return cmp.Or(cmp.Compare(rank(a), rank(b)), cmp.Compare(b.Runs, a.Runs), cmp.Compare(b.Count, a.Count), a.FirstSeen.Compare(b.FirstSeen),
			cmp.Compare(a.Kind, b.Kind), cmp.Compare(a.Fingerprint, b.Fingerprint))
	})
}

// writeText prints the report for people.
func (r *shadowReport) writeText(w io.Writer) {
	pct := func(n int) string {
		if r.Statements == 0 {
			return "0%"
		}
		return fmt.Sprintf("%.1f%%", 100*float64(n)/float64(r.Statements))
	}
	fmt.Fprintf(w, "%d statements seen: would-pass %d (%s), would-rewrite %d (%s), would-reject %d (%s)",
		r.Statements, r.WouldPass, pct(r.WouldPass), r.WouldRewrite, pct(r.WouldRewrite), r.WouldReject, pct(r.WouldReject))
	if r.BindsWouldReject > 0 || r.CopiesWouldReject > 0 {
		fmt.Fprintf(w, "; when run, would-reject %d %s and %d %s", r.BindsWouldReject, plural(r.BindsWouldReject, "Bind", "Binds"),
			r.CopiesWouldReject, plural(r.CopiesWouldReject, "COPY", "COPYs"))
	}
	fmt.Fprintln(w)
	var about []string
	if r.Enforced > 0 {
		about = append(about, fmt.Sprintf("%d of the statements were decided in enforce mode", r.Enforced))
	}
	if !r.From.IsZero() {
		about = append(about, fmt.Sprintf("events from %s to %s", r.From.UTC().Format(time.RFC3339), r.To.UTC().Format(time.RFC3339)))
	}
	about = append(about, fmt.Sprintf("%d %s", len(r.Files), plural(len(r.Files), "file", "files")))
	if r.Skipped > 0 {
		about = append(about, fmt.Sprintf("%d unreadable %s skipped", r.Skipped, plural(r.Skipped, "line", "lines")))
	}
	fmt.Fprintln(w, strings.Join(about, "; "))
	if r.Statements == 0 && !r.enforced {
		fmt.Fprintln(w, "no statement of a proxy in --mode shadow; --enforced counts enforce mode's")
	}
	for _, g := range r.Groups {
		fmt.Fprintln(w)
		what := g.Decision
		sent := fmt.Sprintf("%d %s, %d %s", g.Count, plural(g.Count, "statement", "statements"), g.Runs, plural(int(g.Runs), "run", "runs"))
		switch g.Kind {
		case "statement.bind":
			what += " at Bind"
			sent = fmt.Sprintf("%d %s", g.Count, plural(g.Count, "Bind", "Binds"))
		case "statement.copy":
			what += " COPY rows"
			sent = fmt.Sprintf("%d %s", g.Count, plural(g.Count, "COPY", "COPYs"))
		}
		fmt.Fprintf(w, "%s  %s  %d %s  %d %s  %s .. %s\n", strings.ToUpper(what), sent,
			g.Tenants, plural(g.Tenants, "tenant", "tenants"), g.Sessions, plural(g.Sessions, "session", "sessions"),
			g.FirstSeen.UTC().Format(time.RFC3339), g.LastSeen.UTC().Format(time.RFC3339))
		field := func(name, value string) {
			if value != "" {
				fmt.Fprintf(w, "  %-11s %s\n", name, strings.ReplaceAll(value, "\n", "\n              "))
			}
		}
		field("sql", g.SQL)
		if rejects(g.Decision) {
			reason := strings.TrimPrefix(g.Reason, "tenantproxy: ")
			if g.SQLState != "" {
				reason += " [" + g.SQLState + "]"
			}
			if g.Reasons > 1 {
				reason += fmt.Sprintf(" (and %d other %s)", g.Reasons-1, plural(g.Reasons-1, "reason", "reasons"))
			}
			field("reason", reason)
		} else {
			field("rewritten", g.Rewritten)
		}
		field("fingerprint", g.Fingerprint)
	}
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
