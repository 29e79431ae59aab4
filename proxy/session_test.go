package proxy

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/tenantproxy/tenantproxy/audit"
	"github.com/tenantproxy/tenantproxy/auth"
	"github.com/tenantproxy/tenantproxy/catalog"
	"github.com/tenantproxy/tenantproxy/rewrite"
)

// The session's tests run without a database: clients and upstream
// connections are net.Pipes, and upstream is a scripted pgproto3.Backend
// (fakeUpstream) that answers as Postgres does for the messages the tests
// send, and records everything it receives.

// fakeUpstream serves the proxy's upstream connections.
type fakeUpstream struct {
	t     *testing.T
	mu    sync.Mutex
	conns int
	log   []upMsg // every message received, in order
	// hold, when set, is waited on before a simple Query whose SQL
	// contains "hold" is answered.
	hold chan struct{}
}

// upMsg is one message upstream received: on which connection, its type,
// and its SQL or name.
type upMsg struct {
	conn int
	kind string // Query, Parse, Bind, Describe, Execute, Sync, Close, ...
	text string
}

func (f *fakeUpstream) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	f.mu.Lock()
	f.conns++
	id := f.conns
	f.mu.Unlock()
	proxySide, serverSide := net.Pipe()
	go f.serve(id, serverSide)
	return proxySide, nil
}

// received returns a copy of the log.
func (f *fakeUpstream) received() []upMsg {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]upMsg(nil), f.log...)
}

func (f *fakeUpstream) record(m upMsg) {
	f.mu.Lock()
	f.log = append(f.log, m)
	f.mu.Unlock()
}

func (f *fakeUpstream) serve(id int, c net.Conn) {
	defer c.Close()
	be := pgproto3.NewBackend(c, c)
	if _, err := be.ReceiveStartupMessage(); err != nil {
		return
	}
	be.Send(&pgproto3.AuthenticationOk{})
	for k, v := range map[string]string{"server_version": "15.0", "client_encoding": "UTF8", "standard_conforming_strings": "on", "DateStyle": "ISO, MDY", "TimeZone": "UTC", "integer_datetimes": "on"} {
		be.Send(&pgproto3.ParameterStatus{Name: k, Value: v})
	}
	be.Send(&pgproto3.BackendKeyData{ProcessID: uint32(1000 + id), SecretKey: []byte{1, 2, 3, 4}})
	be.Send(&pgproto3.ReadyForQuery{TxStatus: 'I'})
	if be.Flush() != nil {
		return
	}
	tx := byte('I')
	skip := false // an extended-protocol error: skip to Sync
	prepared := map[string]string{}
	fail := func(code, msg string) {
		be.Send(&pgproto3.ErrorResponse{Severity: "ERROR", Code: code, Message: msg})
		if tx == 'T' {
			tx = 'E'
		}
	}
	row := func() {
		be.Send(&pgproto3.DataRow{Values: [][]byte{[]byte("1")}})
		be.Send(&pgproto3.CommandComplete{CommandTag: []byte("SELECT 1")})
	}
	rowDesc := &pgproto3.RowDescription{Fields: []pgproto3.FieldDescription{{Name: []byte("n"), DataTypeOID: 23, DataTypeSize: 4, TypeModifier: -1}}}
	for {
		msg, err := be.Receive()
		if err != nil {
			return
		}
		switch m := msg.(type) {
		case *pgproto3.Query:
			f.record(upMsg{id, "Query", m.String})
			if strings.Contains(m.String, "hold") && f.hold != nil {
				<-f.hold
			}
			for _, part := range strings.Split(m.String, ";") {
				part = strings.TrimSpace(part)
				word := strings.ToUpper(strings.Fields(part + " x")[0])
				switch {
				case part == "":
				case strings.HasPrefix(part, sentinelPrefix):
					fail("42601", fmt.Sprintf("syntax error at or near %q", part))
				case tx == 'E' && word != "ROLLBACK":
					fail("25P02", "current transaction is aborted, commands ignored until end of transaction block")
				case strings.Contains(part, "current_setting("):
					fields := make([]pgproto3.FieldDescription, len(trackedSettings))
					values := make([][]byte, len(trackedSettings))
					for i, name := range trackedSettings {
						fields[i] = pgproto3.FieldDescription{Name: []byte(name), DataTypeOID: 25, DataTypeSize: -1, TypeModifier: -1}
						values[i] = []byte("v")
					}
					be.Send(&pgproto3.RowDescription{Fields: fields})
					be.Send(&pgproto3.DataRow{Values: values})
					be.Send(&pgproto3.CommandComplete{CommandTag: []byte("SELECT 1")})
				case word == "BEGIN":
					tx = 'T'
					be.Send(&pgproto3.CommandComplete{CommandTag: []byte("BEGIN")})
				case word == "COMMIT" || word == "ROLLBACK":
					tx = 'I'
					be.Send(&pgproto3.CommandComplete{CommandTag: []byte(word)})
				case word == "SELECT":
					be.Send(rowDesc)
					row()
				default:
					be.Send(&pgproto3.CommandComplete{CommandTag: []byte(word)})
				}
				if tx == 'E' {
					break
				}
			}
			be.Send(&pgproto3.ReadyForQuery{TxStatus: tx})
		case *pgproto3.Parse:
			f.record(upMsg{id, "Parse", m.Name + ":" + m.Query})
			switch {
			case skip:
			case strings.HasPrefix(m.Query, sentinelPrefix):
				fail("42601", fmt.Sprintf("syntax error at or near %q", m.Query))
				skip = true
			case m.Name != "" && prepared[m.Name] != "":
				fail("42P05", fmt.Sprintf("prepared statement %q already exists", m.Name))
				skip = true
			default:
				prepared[m.Name] = m.Query
				be.Send(&pgproto3.ParseComplete{})
			}
		case *pgproto3.Bind:
			f.record(upMsg{id, "Bind", m.PreparedStatement})
			switch {
			case skip:
			case prepared[m.PreparedStatement] == "":
				fail("26000", fmt.Sprintf("prepared statement %q does not exist", m.PreparedStatement))
				skip = true
			default:
				be.Send(&pgproto3.BindComplete{})
			}
		case *pgproto3.Describe:
			f.record(upMsg{id, "Describe", string(m.ObjectType) + m.Name})
			if !skip {
				if m.ObjectType == 'S' {
					be.Send(&pgproto3.ParameterDescription{})
				}
				be.Send(rowDesc)
			}
		case *pgproto3.Execute:
			f.record(upMsg{id, "Execute", m.Portal})
			if !skip {
				row()
			}
		case *pgproto3.Close:
			f.record(upMsg{id, "Close", m.Name})
			if !skip {
				delete(prepared, m.Name)
				be.Send(&pgproto3.CloseComplete{})
			}
		case *pgproto3.Sync:
			f.record(upMsg{id, "Sync", ""})
			skip = false
			be.Send(&pgproto3.ReadyForQuery{TxStatus: tx})
		case *pgproto3.Flush:
		case *pgproto3.Terminate:
			return
		}
		if be.Flush() != nil {
			return
		}
	}
}

// memAudit keeps events in memory.
type memAudit struct {
	mu     sync.Mutex
	events []audit.Event
}

func (a *memAudit) Append(e audit.Event) (audit.Ticket, error) {
	a.Record(e)
	return 0, nil
}
func (a *memAudit) Durable(audit.Ticket) error { return nil }
func (a *memAudit) Record(e audit.Event) {
	a.mu.Lock()
	a.events = append(a.events, e)
	a.mu.Unlock()
}

func (a *memAudit) kinds() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []string
	for _, e := range a.events {
		out = append(out, e.Kind)
	}
	return out
}

type staticCatalog struct{ snap *catalog.Snapshot }

func (c staticCatalog) Snapshot() *catalog.Snapshot { return c.snap }

// testProxy is a Server in transaction mode over a fakeUpstream.
type testProxy struct {
	srv    *Server
	up     *fakeUpstream
	audit  *memAudit
	secret []byte
}

func newTestProxy(t *testing.T, pool PoolConfig) *testProxy {
	t.Helper()
	secret := []byte("session-test-secret-0123456789-abcdef")
	key := filepath.Join(t.TempDir(), "hmac.key")
	if err := os.WriteFile(key, secret, 0o600); err != nil {
		t.Fatal(err)
	}
	verifier, err := auth.NewVerifier(auth.Config{KeyFiles: []string{key}})
	if err != nil {
		t.Fatal(err)
	}
	snap, err := catalog.NewSnapshot(1, []catalog.Table{
		{Schema: "public", Name: "orders", Kind: catalog.TenantBound, TenantColumn: "tenant_id",
			Columns: []catalog.Column{{Name: "id", Type: "integer"}, {Name: "tenant_id", Type: "integer"}, {Name: "total", Type: "integer"}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	up := &fakeUpstream{t: t}
	cfg, err := pgconn.ParseConfig("host=127.0.0.1 port=5432 user=proxy dbname=app sslmode=disable")
	if err != nil {
		t.Fatal(err)
	}
	cfg.DialFunc = up.dial
	a := &memAudit{}
	srv, err := NewServer(Config{
		Upstream: cfg, Verifier: verifier, Rewriter: rewrite.New(rewrite.Config{TransactionPooling: true, Database: "app"}),
		Catalog: staticCatalog{snap}, Audit: a, AllowPlaintextPassword: true, Pool: pool,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.stop(); srv.pool.close() })
	return &testProxy{srv: srv, up: up, audit: a, secret: secret}
}

// client is one client connection to the test proxy.
type client struct {
	t  *testing.T
	fe *pgproto3.Frontend
	c  net.Conn
}

// connect opens a session as tenant and reads up to its first
// ReadyForQuery.
func (p *testProxy) connect(t *testing.T, tenant string) *client {
	t.Helper()
	clientSide, proxySide := net.Pipe()
	p.srv.wg.Add(1)
	go p.srv.serveConn(context.Background(), proxySide)
	return p.handshake(t, clientSide, tenant)
}

// handshake starts a session on a client connection and reads up to its
// first ReadyForQuery.
func (p *testProxy) handshake(t *testing.T, clientSide net.Conn, tenant string) *client {
	t.Helper()
	token, err := auth.Mint(p.secret, auth.MintOptions{Tenants: []string{tenant}, Subject: "test", TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	c := &client{t: t, fe: pgproto3.NewFrontend(clientSide, clientSide), c: clientSide}
	t.Cleanup(func() { clientSide.Close() })
	c.send(&pgproto3.StartupMessage{ProtocolVersion: pgproto3.ProtocolVersion30, Parameters: map[string]string{"user": "app", "database": "app"}})
	if _, ok := c.next().(*pgproto3.AuthenticationCleartextPassword); !ok {
		t.Fatal("no password request")
	}
	c.send(&pgproto3.PasswordMessage{Password: token})
	c.until('Z')
	return c
}

func (c *client) send(msgs ...pgproto3.FrontendMessage) {
	c.t.Helper()
	for _, m := range msgs {
		c.fe.Send(m)
	}
	done := make(chan error, 1)
	go func() { done <- c.fe.Flush() }() // net.Pipe: the proxy reads as we write
	select {
	case err := <-done:
		if err != nil {
			c.t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		c.t.Fatal("the proxy does not read")
	}
}

func (c *client) next() pgproto3.BackendMessage {
	c.t.Helper()
	_ = c.c.SetReadDeadline(time.Now().Add(5 * time.Second))
	m, err := c.fe.Receive()
	if err != nil {
		c.t.Fatalf("reading from the proxy: %v", err)
	}
	return m
}

// until reads messages up to the next of type typ ('Z' for ReadyForQuery)
// and returns them as short strings: "C SELECT 1", "E 42601 ...", "Z I".
func (c *client) until(typ byte) []string {
	c.t.Helper()
	var out []string
	for {
		m := c.next()
		var s string
		switch m := m.(type) {
		case *pgproto3.ReadyForQuery:
			s = "Z " + string(m.TxStatus)
		case *pgproto3.CommandComplete:
			s = "C " + string(m.CommandTag)
		case *pgproto3.ErrorResponse:
			s = "E " + m.Code + " " + m.Message
		case *pgproto3.DataRow:
			s = "D " + string(m.Values[0])
		case *pgproto3.ParseComplete:
			s = "1"
		case *pgproto3.BindComplete:
			s = "2"
		case *pgproto3.CloseComplete:
			s = "3"
		default:
			s = fmt.Sprintf("%T", m)[len("*pgproto3."):]
		}
		out = append(out, s)
		if tb := typeByte(m); tb == typ {
			return out
		}
	}
}

func typeByte(m pgproto3.BackendMessage) byte {
	b, _ := m.Encode(nil)
	return b[0]
}

func (p *testProxy) idle() int {
	_, idle, _ := p.srv.pool.stats()
	return idle
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// A simple Query in a transaction of its own: rewritten upstream, answered
// by the session goroutine itself (no relay), audited before it went, and
// its connection back in the pool at ReadyForQuery.
func TestSessionSimpleQuery(t *testing.T) {
	p := newTestProxy(t, PoolConfig{Size: 2})
	c := p.connect(t, "7")
	c.send(&pgproto3.Query{String: "SELECT total FROM orders WHERE id = 1"})
	if got := strings.Join(c.until('Z'), " | "); got != "RowDescription | D 1 | C SELECT 1 | Z I" {
		t.Fatalf("client got %s", got)
	}
	var sent string
	for _, m := range p.up.received() {
		if m.kind == "Query" && strings.Contains(m.text, "orders") {
			sent = m.text
		}
	}
	if !strings.Contains(sent, "tenant_id") || !strings.Contains(sent, "7") {
		t.Fatalf("upstream got %q, not scoped to tenant 7", sent)
	}
	waitUntil(t, "the connection is back in the pool", func() bool { return p.idle() == 1 })
	waitUntil(t, "the completion is audited", func() bool {
		return strings.Contains(strings.Join(p.audit.kinds(), " "), "statement statement.completed")
	})
}

// A refusal inside a transaction: the client gets the proxy's error where
// Postgres would raise it, the transaction is aborted upstream (the
// sentinel ran there), and ROLLBACK ends it and frees the connection.
func TestSessionRefusalInTransaction(t *testing.T) {
	p := newTestProxy(t, PoolConfig{Size: 2})
	c := p.connect(t, "7")
	c.send(&pgproto3.Query{String: "BEGIN"})
	if got := strings.Join(c.until('Z'), " | "); got != "C BEGIN | Z T" {
		t.Fatalf("BEGIN: %s", got)
	}
	c.send(&pgproto3.Query{String: "SELECT * FROM unknown_table"})
	got := c.until('Z')
	if len(got) != 2 || !strings.HasPrefix(got[0], "E 42") || !strings.Contains(got[0], "tenantproxy:") || got[1] != "Z E" {
		t.Fatalf("refused statement: %q", got)
	}
	if p.idle() != 0 {
		t.Fatal("the connection went back mid-transaction")
	}
	c.send(&pgproto3.Query{String: "ROLLBACK"})
	if got := strings.Join(c.until('Z'), " | "); got != "C ROLLBACK | Z I" {
		t.Fatalf("ROLLBACK: %s", got)
	}
	waitUntil(t, "the connection is back in the pool", func() bool { return p.idle() == 1 })
	for _, m := range p.up.received() {
		if strings.Contains(m.text, "unknown_table") {
			t.Fatalf("the refused statement reached upstream: %q", m.text)
		}
	}
}

// A pipeline of extended-protocol messages sent in one write is answered
// in order, one Sync at a time; the second Parse's refusal skips to its
// Sync, and the third statement runs.
func TestSessionPipeline(t *testing.T) {
	p := newTestProxy(t, PoolConfig{Size: 2})
	c := p.connect(t, "7")
	c.send(
		&pgproto3.Parse{Query: "SELECT total FROM orders WHERE id = $1"}, &pgproto3.Bind{Parameters: [][]byte{[]byte("1")}}, &pgproto3.Execute{}, &pgproto3.Sync{},
		&pgproto3.Parse{Query: "SELECT * FROM unknown_table"}, &pgproto3.Bind{}, &pgproto3.Execute{}, &pgproto3.Sync{},
		&pgproto3.Parse{Query: "SELECT id FROM orders"}, &pgproto3.Bind{}, &pgproto3.Execute{}, &pgproto3.Sync{},
	)
	first := strings.Join(c.until('Z'), " | ")
	second := c.until('Z')
	third := strings.Join(c.until('Z'), " | ")
	if first != "1 | 2 | D 1 | C SELECT 1 | Z I" || third != "1 | 2 | D 1 | C SELECT 1 | Z I" {
		t.Fatalf("first %s; third %s", first, third)
	}
	if len(second) != 2 || !strings.HasPrefix(second[0], "E 42") || second[1] != "Z I" {
		t.Fatalf("second: %q", second)
	}
	waitUntil(t, "the connection is back in the pool", func() bool { return p.idle() >= 1 })
}

// A named statement prepared on one connection is prepared again, under
// its server name, on the other connection a later transaction gets; the
// client never sees that Parse's ParseComplete.
func TestSessionPreparedStatementMovesBetweenConnections(t *testing.T) {
	p := newTestProxy(t, PoolConfig{Size: 2, TenantShare: 2})
	a := p.connect(t, "7")
	b := p.connect(t, "7")
	a.send(&pgproto3.Parse{Name: "s1", Query: "SELECT total FROM orders WHERE id = $1"}, &pgproto3.Sync{})
	if got := strings.Join(a.until('Z'), " | "); got != "1 | Z I" {
		t.Fatalf("Parse: %s", got)
	}
	var first int
	for _, m := range p.up.received() {
		if m.kind == "Parse" && strings.Contains(m.text, "orders") {
			first = m.conn
		}
	}
	// b holds the connection a prepared s1 on; a must use the other.
	b.send(&pgproto3.Query{String: "BEGIN"})
	b.until('Z')
	var held int
	for _, m := range p.up.received() {
		if m.kind == "Query" && m.text == "BEGIN" {
			held = m.conn
		}
	}
	if held != first {
		t.Skipf("b got connection %d, not %d where s1 was prepared (pool order)", held, first)
	}
	a.send(&pgproto3.Bind{PreparedStatement: "s1", Parameters: [][]byte{[]byte("1")}}, &pgproto3.Execute{}, &pgproto3.Sync{})
	if got := strings.Join(a.until('Z'), " | "); got != "2 | D 1 | C SELECT 1 | Z I" {
		t.Fatalf("Bind on the other connection: %s (the injected Parse must not reach the client)", got)
	}
	var injected, bound string
	for _, m := range p.up.received() {
		if m.conn != first && m.kind == "Parse" && strings.Contains(m.text, "orders") {
			injected = m.text
		}
		if m.conn != first && m.kind == "Bind" {
			bound = m.text
		}
	}
	if injected == "" || !strings.HasPrefix(injected, bound+":") || !strings.HasPrefix(bound, "tpx_") {
		t.Fatalf("on the second connection: Parse %q, Bind %q", injected, bound)
	}
	b.send(&pgproto3.Query{String: "COMMIT"})
	b.until('Z')
}

// With a pool of one, a client whose statement finds the connection lent
// waits, and gets it (and its answer) as soon as the holder's transaction
// ends.
func TestSessionPoolWaiterHandOff(t *testing.T) {
	p := newTestProxy(t, PoolConfig{Size: 1, TenantShare: 1, WaitTimeout: 5 * time.Second})
	a := p.connect(t, "7")
	b := p.connect(t, "8")
	a.send(&pgproto3.Query{String: "BEGIN"})
	a.until('Z')
	b.send(&pgproto3.Query{String: "SELECT id FROM orders"})
	waitUntil(t, "b waits for the connection", func() bool {
		_, _, waiting := p.srv.pool.stats()
		return waiting == 1
	})
	a.send(&pgproto3.Query{String: "COMMIT"})
	if got := strings.Join(a.until('Z'), " | "); got != "C COMMIT | Z I" {
		t.Fatalf("COMMIT: %s", got)
	}
	if got := strings.Join(b.until('Z'), " | "); got != "RowDescription | D 1 | C SELECT 1 | Z I" {
		t.Fatalf("the waiting client got %s", got)
	}
	p.up.mu.Lock()
	conns := p.up.conns
	p.up.mu.Unlock()
	if conns != 1 {
		t.Fatalf("%d upstream connections for a pool of one", conns)
	}
}

// A statement still running when its client sends the next one (a
// pipelined simple Query) is answered first; the second follows on the
// same connection once the first released it.
func TestSessionQueryBehindRunningStatement(t *testing.T) {
	p := newTestProxy(t, PoolConfig{Size: 2})
	p.up.hold = make(chan struct{})
	c := p.connect(t, "7")
	c.send(&pgproto3.Query{String: "SELECT id FROM orders WHERE total = 1 /* hold */"}, &pgproto3.Query{String: "SELECT id FROM orders"})
	time.Sleep(20 * time.Millisecond)
	close(p.up.hold)
	first, second := strings.Join(c.until('Z'), " | "), strings.Join(c.until('Z'), " | ")
	if first != "RowDescription | D 1 | C SELECT 1 | Z I" || second != first {
		t.Fatalf("first %s; second %s", first, second)
	}
}

// connectTCP is connect over a loopback TCP connection, which (unlike a
// net.Pipe) the parker can watch.
func (p *testProxy) connectTCP(t *testing.T, tenant string) *client {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	clientSide, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	proxySide, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	p.srv.track(proxySide)
	p.srv.wg.Add(1)
	go p.srv.serveConn(p.srv.stopCtx, proxySide)
	return p.handshake(t, clientSide, tenant)
}

// An idle session parks: its goroutine goes, a message brings it back (in
// a new one) and is answered, and shutdown ends a parked session with
// FATAL 57P01 as it does an idle one.
func TestSessionParksWhenIdle(t *testing.T) {
	p := newTestProxy(t, PoolConfig{Size: 2})
	if p.srv.parker == nil {
		t.Skip("no parker on this system")
	}
	c := p.connectTCP(t, "7")
	for round := range 2 {
		waitUntil(t, "the idle session parks", func() bool { return p.srv.parker.count() == 1 })
		c.send(&pgproto3.Query{String: "SELECT id FROM orders"})
		if got := strings.Join(c.until('Z'), " | "); got != "RowDescription | D 1 | C SELECT 1 | Z I" {
			t.Fatalf("round %d, after parking: %s", round, got)
		}
	}
	// A transaction open: no parking while it lasts.
	c.send(&pgproto3.Query{String: "BEGIN"})
	c.until('Z')
	time.Sleep(2 * parkAfter)
	if n := p.srv.parker.count(); n != 0 {
		t.Fatalf("%d sessions parked while one holds a transaction", n)
	}
	c.send(&pgproto3.Query{String: "COMMIT"})
	c.until('Z')
	waitUntil(t, "the session parks again", func() bool { return p.srv.parker.count() == 1 })
	done := make(chan struct{})
	go func() { p.srv.Shutdown(5 * time.Second); close(done) }()
	m := c.next()
	if e, ok := m.(*pgproto3.ErrorResponse); !ok || e.Code != "57P01" {
		t.Fatalf("a parked session at shutdown got %#v, want FATAL 57P01", m)
	}
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("shutdown waited for a parked session")
	}
	waitUntil(t, "session.ended is recorded", func() bool {
		return strings.HasSuffix(strings.Join(p.audit.kinds(), " "), "session.ended")
	})
}
