package diffcorpus

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/tenantproxy/tenantproxy/internal/pgtest"
)

// Outcome is what a statement string returned: each result's columns and
// sorted rows (for COPY ... TO STDOUT the copied lines, sorted), or the
// SQLSTATE and message of the error that ended it.
type Outcome struct {
	Results       []string
	Code, Message string
}

// Failed reports whether the statement string ended in an error.
func (o Outcome) Failed() bool { return o.Code != "" }

// Refusal reports whether the error is a tenantproxy refusal: SQLSTATE
// 42501 with a message starting "tenantproxy: ".
func (o Outcome) Refusal() bool {
	return o.Code == "42501" && strings.HasPrefix(o.Message, "tenantproxy: ")
}

func (o Outcome) String() string {
	if o.Failed() {
		return fmt.Sprintf("ERROR %s: %s", o.Code, o.Message)
	}
	return fmt.Sprintf("%q", o.Results)
}

// Run runs sql on conn with the simple protocol; a COPY ... TO STDOUT is
// read with CopyTo.
func Run(ctx context.Context, conn *pgconn.PgConn, sql string) Outcome {
	if copiesOut(sql) {
		var buf bytes.Buffer
		if _, err := conn.CopyTo(ctx, &buf, sql); err != nil {
			return errOutcome(err)
		}
		lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
		slices.Sort(lines)
		return Outcome{Results: lines}
	}
	rs, err := conn.Exec(ctx, sql).ReadAll()
	if err != nil {
		return errOutcome(err)
	}
	return Outcome{Results: pgtest.ResultTexts(rs)}
}

// copiesOut reports whether sql is a COPY ... TO STDOUT.
func copiesOut(sql string) bool {
	upper := strings.ToUpper(sql)
	return strings.HasPrefix(strings.TrimSpace(upper), "COPY") && strings.Contains(upper, "TO STDOUT")
}

// errOutcome is the outcome of an error; anything but a Postgres error
// gets the code "client".
func errOutcome(err error) Outcome {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return Outcome{Code: pe.Code, Message: pe.Message}
	}
	return Outcome{Code: "client", Message: err.Error()}
}

// Session is the way under test to the shared database as one tenant.
type Session struct {
	// Conn is the session: through the proxy, or straight to the shared
	// database when Rewrite is set.
	Conn *pgconn.PgConn
	// Rewrite, when set, turns a statement into what is sent on Conn (the
	// rewriter, in process); a *pgconn.PgError it returns is the refusal
	// the client would get. Nil sends statements unchanged.
	Rewrite func(sql string) (string, error)
}

// Run sends one statement string through the session.
func (s Session) Run(ctx context.Context, sql string) Outcome {
	if s.Rewrite != nil {
		out, err := s.Rewrite(sql)
		if err != nil {
			return errOutcome(err)
		}
		sql = out
	}
	return Run(ctx, s.Conn, sql)
}

// Differential compares, for one tenant, a session on the shared database
// with the tenant's own database.
type Differential struct {
	// Tenant is the session's tenant.
	Tenant string
	// Session reaches the shared database as Tenant.
	Session Session
	// Shared is a direct connection to the shared database; Own to the
	// database holding only Tenant's rows.
	Shared, Own DB
	// TransactionPooling: the proxy pools by transaction, and refuses the
	// statements that would outlive one (SessionLevel).
	TransactionPooling bool
}

// sessionLevel matches the statements transaction pooling refuses:
// SQL-level prepared statements, cursors WITH HOLD and LISTEN.
var sessionLevel = regexp.MustCompile(`(?i)\b(PREPARE|EXECUTE|DEALLOCATE|LISTEN)\b|\bWITH\s+HOLD\b`)

// SessionLevel reports whether sql uses what transaction pooling refuses.
func SessionLevel(sql string) bool { return sessionLevel.MatchString(sql) }

// sides are the rows of the shared database before or after a statement:
// the tenant's and everyone else's.
type sides struct{ mine, others []string }

func (d Differential) snapshot(ctx context.Context) (sides, error) {
	mine, err := d.Shared.Dump(ctx, d.Tenant, true)
	if err != nil {
		return sides{}, err
	}
	others, err := d.Shared.Dump(ctx, d.Tenant, false)
	return sides{mine, others}, err
}

// Check runs s for the tenant through the session and, unless it is
// refused, on the tenant's own database, and reports how they differ: a
// refusal must be a tenantproxy refusal that changes nothing and leaves
// the session usable; an accepted statement must not be refused; a read
// returns the same results and changes nothing; a write returns the same
// results (or fails on both) and leaves the tenant's rows the same on both
// databases. Every other tenant's rows must be unchanged in every case.
// Both databases are reloaded after a write or a failed check.
func (d Differential) Check(ctx context.Context, s Statement) (err error) {
	before, err := d.snapshot(ctx)
	if err != nil {
		return err
	}
	defer func() {
		if s.Write || err != nil {
			err = errors.Join(err, d.Shared.Load(ctx), d.Own.Load(ctx))
		}
	}()
	got := d.Session.Run(ctx, s.SQL)
	var want Outcome
	if !s.Refused && !got.Refusal() && !s.NoCompare {
		want = Run(ctx, d.Own.Conn, s.SQL)
	}
	if err := errors.Join(idle(ctx, d.Session.Conn), idle(ctx, d.Own.Conn)); err != nil {
		return fmt.Errorf("ending the transaction the statement left open: %w", err)
	}
	if err := d.compare(ctx, s, got, want); err != nil {
		return err
	}
	return d.unchanged(ctx, s, before)
}

// compare judges the session's outcome against the expectation and the
// tenant's own database.
func (d Differential) compare(ctx context.Context, s Statement, got, want Outcome) error {
	switch {
	case s.Refused && !got.Refusal():
		return fmt.Errorf("want a tenantproxy refusal (42501), got %s", got)
	case s.Refused:
		if err := Run(ctx, d.Session.Conn, "SELECT 1"); err.Failed() {
			return fmt.Errorf("the session is unusable after the refusal: %s", err)
		}
		return nil
	case got.Refusal():
		return fmt.Errorf("refused: %s", got.Message)
	case s.NoCompare && got.Failed():
		return fmt.Errorf("failed: %s", got)
	case s.NoCompare:
		return nil
	case s.Write && got.Failed() && want.Failed() && (got.Code != want.Code || got.Message != want.Message):
		return fmt.Errorf("fails differently\nshared database: %s\nown database:    %s", got, want)
	case s.Write && got.Failed() && want.Failed():
		return nil // the same failure; the rows are checked next
	case got.Code != want.Code || !slices.Equal(got.Results, want.Results):
		return fmt.Errorf("results differ\nshared database: %s\nown database:    %s", got, want)
	}
	return nil
}

// unchanged checks the rows after the statement: nobody else's changed;
// the tenant's changed only by a write, and then as on its own database.
func (d Differential) unchanged(ctx context.Context, s Statement, before sides) error {
	after, err := d.snapshot(ctx)
	if err != nil {
		return err
	}
	if !slices.Equal(before.others, after.others) {
		return fmt.Errorf("other tenants' rows changed:\n%s", diff(before.others, after.others))
	}
	if !s.Write {
		if !slices.Equal(before.mine, after.mine) {
			return fmt.Errorf("the tenant's rows changed, but it is not a write:\n%s", diff(before.mine, after.mine))
		}
		return nil
	}
	if s.NoCompare {
		return nil
	}
	own, err := d.Own.Dump(ctx, d.Tenant, true)
	if err != nil {
		return err
	}
	if !slices.Equal(after.mine, own) {
		return fmt.Errorf("after the write, the tenant's rows differ (- shared, + own):\n%s", diff(after.mine, own))
	}
	return nil
}

// idle rolls back a transaction a statement string left open (or failed).
func idle(ctx context.Context, conn *pgconn.PgConn) error {
	if conn.TxStatus() == 'I' {
		return nil
	}
	return exec(ctx, conn, "ROLLBACK")
}

// diff lists the rows only in a (-) and only in b (+); both are sorted.
func diff(a, b []string) string {
	var out []string
	for _, r := range a {
		if _, found := slices.BinarySearch(b, r); !found {
			out = append(out, "- "+r)
		}
	}
	for _, r := range b {
		if _, found := slices.BinarySearch(a, r); !found {
			out = append(out, "+ "+r)
		}
	}
	return strings.Join(out, "\n")
}

// RunAll checks every statement that runs for the tenant, reports each
// failure with t.Errorf, and counts the runs in tally.
func (d Differential) RunAll(t testing.TB, tally *Tally) {
	t.Helper()
	ctx := context.Background()
	for _, s := range Statements {
		if !s.RunsFor(d.Tenant) {
			continue
		}
		if d.TransactionPooling && SessionLevel(s.SQL) {
			s.Refused = true
		}
		tally.Add(d.Tenant, s)
		if err := d.Check(ctx, s); err != nil {
			t.Errorf("tenant %s, %s: %s\n%v", d.Tenant, s.Category, s.SQL, err)
		}
	}
}
