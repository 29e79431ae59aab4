package e2e_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
)

// rawSession is an authenticated session through the proxy driven message
// by message, for protocol edges drivers do not expose.
type rawSession struct {
	t    *testing.T
	conn net.Conn
	fe   *pgproto3.Frontend
}

func (e *env) raw(t *testing.T, tenant string) *rawSession {
	t.Helper()
	return rawConnect(t, e.connString(e.token(t, tenant)))
}

// rawDirect is the same straight to Postgres, to compare with.
func (e *env) rawDirect(t *testing.T) *rawSession {
	t.Helper()
	return rawConnect(t, e.upstream)
}

func rawConnect(t *testing.T, dsn string) *rawSession {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	pc, err := pgconn.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	hc, err := pc.Hijack()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { hc.Conn.Close() })
	return &rawSession{t: t, conn: hc.Conn, fe: hc.Frontend}
}

func (r *rawSession) send(msgs ...pgproto3.FrontendMessage) {
	r.t.Helper()
	for _, m := range msgs {
		r.fe.Send(m)
	}
	if err := r.fe.Flush(); err != nil {
		r.t.Fatal(err)
	}
}

// until reads messages up to and including ReadyForQuery and returns them
// spelled as short strings: "DataRow 10", "PortalSuspended", "Error 42501".
func (r *rawSession) until() []string {
	r.t.Helper()
	_ = r.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	var out []string
	for {
		msg, err := r.fe.Receive()
		if err != nil {
			r.t.Fatalf("receive after %v: %v", out, err)
		}
		switch m := msg.(type) {
		case *pgproto3.DataRow:
			out = append(out, "DataRow "+string(m.Values[0]))
		case *pgproto3.CommandComplete:
			out = append(out, "CommandComplete "+string(m.CommandTag))
		case *pgproto3.ErrorResponse:
			out = append(out, "Error "+m.Code)
		case *pgproto3.ParameterDescription:
			out = append(out, fmt.Sprintf("ParameterDescription %v", m.ParameterOIDs))
		case *pgproto3.RowDescription:
			var cols []string
			for _, f := range m.Fields {
				cols = append(cols, fmt.Sprintf("%s:%d", f.Name, f.DataTypeOID))
			}
			out = append(out, "RowDescription "+strings.Join(cols, ","))
		case *pgproto3.ReadyForQuery:
			return append(out, "ReadyForQuery "+string(m.TxStatus))
		default:
			out = append(out, strings.TrimPrefix(fmt.Sprintf("%T", msg), "*pgproto3."))
		}
	}
}

func wantMessages(t *testing.T, got []string, want ...string) {
	t.Helper()
	if strings.Join(got, " | ") != strings.Join(want, " | ") {
		t.Fatalf("messages:\n got: %s\nwant: %s", strings.Join(got, " | "), strings.Join(want, " | "))
	}
}

// A portal executed with a row limit is suspended and resumed, across a
// named statement that is described, executed twice and closed.
func TestPortalsWithARowLimit(t *testing.T) {
	e := newEnv(t)
	r := e.raw(t, "1")
	r.send(
		&pgproto3.Parse{Name: "s1", Query: "SELECT id FROM orders WHERE total > $1 ORDER BY id", ParameterOIDs: []uint32{0}},
		&pgproto3.Describe{ObjectType: 'S', Name: "s1"},
		&pgproto3.Bind{PreparedStatement: "s1", Parameters: [][]byte{[]byte("0")}},
		&pgproto3.Describe{ObjectType: 'P'},
		&pgproto3.Execute{MaxRows: 2},
		&pgproto3.Execute{MaxRows: 2},
		&pgproto3.Sync{},
	)
	wantMessages(t, r.until(),
		"ParseComplete", "ParameterDescription [1700]", "RowDescription id:23",
		"BindComplete", "RowDescription id:23",
		"DataRow 10", "DataRow 11", "PortalSuspended", "DataRow 12", "CommandComplete SELECT 1",
		"ReadyForQuery I")
	// The statement runs again with another parameter, then is closed.
	r.send(
		&pgproto3.Bind{PreparedStatement: "s1", Parameters: [][]byte{[]byte("15")}},
		&pgproto3.Execute{},
		&pgproto3.Close{ObjectType: 'S', Name: "s1"},
		&pgproto3.Sync{},
	)
	wantMessages(t, r.until(), "BindComplete", "DataRow 11", "CommandComplete SELECT 1", "CloseComplete", "ReadyForQuery I")
	r.send(&pgproto3.Bind{PreparedStatement: "s1"}, &pgproto3.Execute{}, &pgproto3.Sync{})
	wantMessages(t, r.until(), "Error 26000", "ReadyForQuery I")
}

// An error in the middle of a pipeline (a failing statement, not a
// refusal) skips everything up to Sync, as Postgres does, and the
// statements before it in the same implicit transaction are rolled back.
func TestErrorInsideAPipelineSkipsToSync(t *testing.T) {
	e := newEnv(t)
	r := e.raw(t, "1")
	r.send(
		&pgproto3.Parse{Query: "INSERT INTO orders (customer_id, total) VALUES (1, 1) RETURNING tenant_id"},
		&pgproto3.Bind{}, &pgproto3.Execute{},
		&pgproto3.Parse{Query: "SELECT 1 / count(*) FROM plans WHERE id < 0"},
		&pgproto3.Bind{}, &pgproto3.Execute{},
		&pgproto3.Parse{Query: "SELECT count(*) FROM orders"},
		&pgproto3.Bind{}, &pgproto3.Execute{},
		&pgproto3.Sync{},
	)
	wantMessages(t, r.until(),
		"ParseComplete", "BindComplete", "DataRow 1", "CommandComplete INSERT 0 1",
		"ParseComplete", "BindComplete", "Error 22012", "ReadyForQuery I")
	r.send(&pgproto3.Query{String: "SELECT count(*) FROM orders"})
	wantMessages(t, r.until(), "RowDescription count:20", "DataRow 3", "CommandComplete SELECT 1", "ReadyForQuery I")
}

// Several statements in one simple Query run in one implicit transaction:
// when one of them is refused, or fails upstream, nothing of the string is
// committed.
func TestSimpleQueryStringIsAllOrNothing(t *testing.T) {
	e := newEnv(t)
	conn := e.connect(t, "1")
	ctx := context.Background()
	for _, sql := range []string{
		"INSERT INTO orders (customer_id, total, note) VALUES (1, 1, 'atomic'); SELECT * FROM secrets; INSERT INTO orders (customer_id, total, note) VALUES (1, 2, 'atomic')",
		"INSERT INTO orders (customer_id, total, note) VALUES (1, 1, 'atomic'); SELECT 1 / 0",
	} {
		err := conn.PgConn().Exec(ctx, sql).Close()
		if err == nil {
			t.Fatalf("%s: no error", sql)
		}
		wantRows(t, column(t, e.direct(t), "SELECT count(*)::text FROM orders WHERE note = 'atomic'"), "0")
	}
	wantRows(t, column(t, conn, "SELECT count(*)::text FROM orders"), "3")
}

// Notices and ParameterStatus changes reach the client, in order with the
// results around them.
func TestNoticesAndParameterStatusAreRelayed(t *testing.T) {
	e := newEnv(t)
	var notices []string
	cfg, err := pgx.ParseConfig(e.connString(e.token(t, "1")))
	if err != nil {
		t.Fatal(err)
	}
	cfg.OnNotice = func(_ *pgconn.PgConn, n *pgconn.Notice) { notices = append(notices, n.Severity+" "+n.Code) }
	conn, err := pgx.ConnectConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	ctx := context.Background()
	if _, err := conn.Exec(ctx, "ROLLBACK"); err != nil {
		t.Fatal(err)
	}
	if strings.Join(notices, ",") != "WARNING 25P01" {
		t.Fatalf("notices = %v", notices)
	}
	if _, err := conn.Exec(ctx, "SET application_name = 'matrix-app'"); err != nil {
		t.Fatal(err)
	}
	if got := conn.PgConn().ParameterStatus("application_name"); got != "matrix-app" {
		t.Fatalf("application_name = %q", got)
	}
	if _, err := conn.Exec(ctx, "SET TIME ZONE 'Europe/Paris'"); err != nil {
		t.Fatal(err)
	}
	if got := conn.PgConn().ParameterStatus("TimeZone"); got != "Europe/Paris" {
		t.Fatalf("TimeZone = %q", got)
	}

	// The same messages in the same order as straight from Postgres.
	q := &pgproto3.Query{String: "ROLLBACK; SET application_name = 'raw'; SELECT 1; SET TIME ZONE 'UTC'"}
	r, d := e.raw(t, "1"), e.rawDirect(t)
	r.send(q)
	d.send(q)
	want := d.until()
	if !strings.Contains(strings.Join(want, ","), "ParameterStatus") || !strings.Contains(strings.Join(want, ","), "NoticeResponse") {
		t.Fatalf("Postgres sent no ParameterStatus or notice: %v", want)
	}
	wantMessages(t, r.until(), want...)
}

// A client that goes away inside a transaction, politely or not, leaves no
// transaction open upstream and nothing of it committed.
func TestDisconnectEndsTheUpstreamTransaction(t *testing.T) {
	e := newEnv(t)
	direct := e.direct(t)
	for _, how := range []string{"terminate", "abrupt"} {
		t.Run(how, func(t *testing.T) {
			app := "disconnect-" + how
			r := e.raw(t, "1")
			r.send(&pgproto3.Query{String: "SET application_name = '" + app + "'; BEGIN; INSERT INTO orders (customer_id, total, note) VALUES (1, 1, '" + app + "')"})
			got := r.until()
			if got[len(got)-1] != "ReadyForQuery T" {
				t.Fatalf("not in a transaction: %v", got)
			}
			wantRows(t, column(t, direct, "SELECT state FROM pg_stat_activity WHERE application_name = $1", app), "idle in transaction")
			if how == "terminate" {
				r.send(&pgproto3.Terminate{})
			}
			r.conn.Close()
			eventually(t, 10*time.Second, "upstream session gone", func() error {
				if n := column(t, direct, "SELECT count(*)::text FROM pg_stat_activity WHERE application_name = $1", app); n[0] != "0" {
					return errors.New(n[0] + " upstream sessions left")
				}
				return nil
			})
			wantRows(t, column(t, direct, "SELECT count(*)::text FROM orders WHERE note = $1", app), "0")
		})
	}
}

// CopyFail from the client ends a COPY FROM with nothing committed, and the
// session goes on.
func TestCopyFailFromTheClient(t *testing.T) {
	e := newEnv(t)
	conn := e.connect(t, "1")
	ctx := context.Background()
	pr, pw := io.Pipe()
	go func() {
		_, _ = pw.Write([]byte("1\t5\tcopyfail\n"))
		pw.CloseWithError(errors.New("client gave up"))
	}()
	_, err := conn.PgConn().CopyFrom(ctx, pr, "COPY orders (customer_id, total, note) FROM STDIN")
	if err == nil || !strings.Contains(err.Error(), "client gave up") {
		t.Fatalf("copy: %v", err)
	}
	wantState(t, err, "57014")
	wantRows(t, column(t, e.direct(t), "SELECT count(*)::text FROM orders WHERE note = 'copyfail'"), "0")
	wantRows(t, column(t, conn, "SELECT count(*)::text FROM orders"), "3")
}

// COPY FROM STDIN into a tenant-bound table through the extended protocol
// is refused at Parse (0A000) with a hint (every driver of the matrix sends COPY
// as a simple Query, where the proxy filters its rows); the session goes
// on. COPY TO through the extended protocol is scoped as usual.
func TestCopyFromThroughTheExtendedProtocol(t *testing.T) {
	e := newEnv(t)
	r := e.raw(t, "1")
	r.send(
		&pgproto3.Parse{Query: "COPY orders (customer_id, total, note) FROM STDIN"},
		&pgproto3.Bind{}, &pgproto3.Execute{}, &pgproto3.Sync{},
	)
	wantMessages(t, r.until(), "Error 0A000", "ReadyForQuery I")
	r.send(
		&pgproto3.Parse{Query: "COPY orders (id) TO STDOUT"},
		&pgproto3.Bind{}, &pgproto3.Execute{}, &pgproto3.Sync{},
	)
	wantMessages(t, r.until(), "ParseComplete", "BindComplete", "CopyOutResponse",
		"CopyData", "CopyData", "CopyData", "CopyDone", "CommandComplete COPY 3", "ReadyForQuery I")
}

// Startup parameters: harmless ones reach Postgres, settings that change
// what a statement reads are refused at connect, and so is replication.
func TestStartupParameters(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	tok := e.token(t, "1")
	ok := e.connString(tok) + "&application_name=startup-app&options=" + optionValue("-c statement_timeout=5s -c DateStyle=German")
	conn, err := pgx.Connect(ctx, ok)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	wantRows(t, column(t, conn, "SHOW statement_timeout"), "5s")
	wantRows(t, column(t, e.direct(t), "SELECT count(*)::text FROM pg_stat_activity WHERE application_name = 'startup-app'"), "1")
	for _, bad := range []string{
		"&options=" + optionValue("-c search_path=evil"),
		"&options=" + optionValue("-c role=postgres"),
		"&options=" + optionValue("--search_path=evil"),
		"&search_path=evil",
		"&replication=database",
		"&client_encoding=SJIS",
	} {
		_, err := pgx.Connect(ctx, e.connString(tok)+bad)
		if err == nil {
			t.Fatalf("%s: connected", bad)
		}
		if code := sqlState(err); code != "42501" && code != "08P01" {
			t.Fatalf("%s: %v", bad, err)
		}
	}
}

// optionValue escapes a libpq options value for a URL (spaces as %20).
func optionValue(s string) string {
	return strings.ReplaceAll(url.QueryEscape(s), "+", "%20")
}
