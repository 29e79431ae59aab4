package proxy

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"os"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/tenantproxy/tenantproxy/auth"
	"github.com/tenantproxy/tenantproxy/rewrite"
)

// session is one client connection and the upstream connection it holds.
// The session goroutine reads client messages and writes upstream; the relay
// goroutine reads upstream and writes to the client.
type session struct {
	srv    *Server
	log    *slog.Logger
	ctx    context.Context
	id     string
	conn   net.Conn // the client, TLS-wrapped after an SSLRequest
	client string   // its address, as events record it
	tls    bool
	// be talks to the client: hs, the startup phase's pgproto3.Backend,
	// until the password arrives; a clientWire from then on.
	be interface {
		Receive() (pgproto3.FrontendMessage, error)
		Send(pgproto3.BackendMessage)
		Flush() error
	}
	hs *pgproto3.Backend

	identity    *auth.Identity
	scope       rewrite.Scope
	database    string
	application string
	// channelPrefix starts the upstream name of every LISTEN/NOTIFY
	// channel of the session's tenant (rewrite.ChannelPrefix); empty when
	// the token has no single tenant, which may not LISTEN.
	channelPrefix string

	keyPID    uint32 // the BackendKeyData process id this client was given
	keySecret []byte

	// The upstream connection the session holds. In session mode it is
	// its own from start to end; in transaction mode it is lent by the
	// pool for a transaction and given back when upstream is idle and
	// has answered everything (lease.go). leaseMu guards these fields
	// and the counters the release decision reads.
	leaseMu   sync.Mutex
	up        *serverConn
	fe        *pgproto3.Frontend // up's, for sending (session goroutine)
	relayDone chan error         // the relay of up ends
	pooled    bool               // transaction mode
	// inline: the connection was just lent for a simple Query whose
	// answer the session goroutine relays itself (roundTripInline).
	inline   bool
	unsynced bool // extended-protocol messages sent since the last Sync
	// settings are the client's values of the tracked settings
	// (transaction mode), applied to every connection that serves it;
	// settingsDirty says a SET ran and they must be read back.
	settings map[string]string
	// startSettings are the settings the client started with (its
	// startup parameters over the defaults): what RESET ALL and DISCARD
	// ALL return it to in transaction mode.
	startSettings map[string]string
	settingsDirty bool
	stmtGen       int       // numbers server-side statement names
	skipToSync    bool      // an extended message failed here: drop the rest until Sync
	ready         int       // ReadyForQuery messages relayed (relay goroutine)
	txStatus      byte      // of the last ReadyForQuery relayed (under leaseMu)
	lastReady     time.Time // when it was relayed (under leaseMu)
	counted       bool      // counts against MaxClientConn
	// writeTimedOut: the client did not read its results for
	// ClientWriteTimeout (deadlineWriter).
	writeTimedOut atomic.Bool
	// authenticated counts the session out of the connections still
	// authenticating (unauth.go); idempotent.
	authenticated func()
	// tenantsAdmitted count against MaxTenantConn until the session ends.
	tenantsAdmitted []string

	writeMu sync.Mutex  // guards be.Send and be.Flush once the relay runs
	closing atomic.Bool // set once the session is ending on purpose

	// refusals maps a sentinel's nonce to the error the client must see in its
	// place (see refuse). Entries are keyed by the round they were sent in.
	refusalMu sync.Mutex
	refusals  map[string]refusal
	rounds    int // Sync/Query/FunctionCall messages sent upstream (session goroutine, under leaseMu)

	book *book // prepared statements and cursors, and what defined them

	// shadow: send statements as the client wrote them and only audit
	// what enforce mode would have done (shadow.go).
	shadow bool

	// The session's life after startup: when it started serving, what watches ctx, and where it is parked (park_linux.go).
	started   time.Time
	stopWatch func() bool
	serving   bool
	parkKey   uint64
	parkFD    int
	// deadlineSet: a read deadline may be set on the client connection
	// to park the session when it stays idle (receive; the relay, when it
	// gives the connection back).
	deadlineSet atomic.Bool

	statements, rejected int64 // totals for session.ended (session goroutine only)
	statementSeq         int64
	results              *results

	copyIn     *copyFilter // the rows of a COPY FROM STDIN being checked
	copyFailed bool        // a refused COPY: drop the client's remaining copy data
}

// refusal is an error waiting for its sentinel to come back from upstream.
type refusal struct {
	resp  *pgproto3.ErrorResponse
	round int
}

func newSession(srv *Server, conn net.Conn) *session {
	s := &session{
		srv:      srv,
		conn:     conn,
		id:       randomHex(8),
		refusals: map[string]refusal{},
		book:     newBook(),
		results:  newResults(),
		pooled:   srv.pool != nil,
		shadow:   srv.cfg.Mode == ModeShadow,
	}
	s.authenticated = noop
	s.client = conn.RemoteAddr().String()
	s.log = srv.log.With("session", s.id, "client", s.client)
	s.hs = s.newBackend(conn)
	s.be = s.hs
	return s
}

// newBackend reads the client through a reader that flushes pending upstream
// writes before it blocks, so messages are batched per round trip.
func (s *session) newBackend(conn net.Conn) *pgproto3.Backend {
	be := pgproto3.NewBackend(flushReader{r: conn, flush: s.flushUpstream}, &deadlineWriter{conn: conn, timeout: s.srv.cfg.ClientWriteTimeout, failed: &s.writeTimedOut})
	be.SetMaxBodyLen(s.srv.cfg.MaxMessageSize)
	return be
}

func (s *session) flushUpstream() error {
	s.leaseMu.Lock()
	defer s.leaseMu.Unlock()
	if s.fe == nil {
		return nil
	}
	return s.fe.Flush()
}

func (s *session) flushClient() error {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	return s.be.Flush()
}

// deadlineWriter gives every write to the client a deadline of its own, so
// a client that stops reading its results cannot hold its upstream
// connection (and the pool slot) for ever.
type deadlineWriter struct {
	conn    net.Conn
	timeout time.Duration
	failed  *atomic.Bool
}

func (w *deadlineWriter) Write(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil // pgproto3 flushes empty buffers: no syscall for those
	}
	if w.timeout > 0 {
		_ = w.conn.SetWriteDeadline(time.Now().Add(w.timeout))
	}
	n, err := w.conn.Write(p)
	if err != nil && errors.Is(err, os.ErrDeadlineExceeded) {
		w.failed.Store(true)
	}
	return n, err
}

// flushReader calls flush before every read of the underlying connection.
type flushReader struct {
	r     io.Reader
	flush func() error
}

func (f flushReader) Read(p []byte) (int, error) {
	if err := f.flush(); err != nil {
		return 0, err
	}
	return f.r.Read(p)
}

// run serves the session until the client leaves, the upstream goes away or
// ctx ends. A session idle between transactions parks (park_linux.go):
// run returns, and serve goes on in another goroutine when the client
// sends something; finish ends the session wherever that happens.
func (s *session) run(ctx context.Context) {
	// The server's context: a session needs no cancel of its own (its
	// AfterFunc below ends it with the server), which saves an idle
	// client a context and its registration.
	s.ctx = ctx
	if err := s.audit(event{Kind: "session.accepted"}); err != nil {
		// No session runs unaudited: refused before it starts.
		s.fatal(errAuditSession(err))
		s.endStartup()
		return
	}
	_ = s.conn.SetDeadline(time.Now().Add(s.srv.cfg.StartupTimeout))
	s.authenticated = s.srv.unauth.enter(s.conn)
	err := s.startup()
	s.authenticated() // refused or gone before authenticating
	s.authenticated = noop
	if err != nil {
		if !errors.Is(err, errClientGone) {
			s.fatal(err)
		}
		if s.counted {
			s.srv.clients.Add(-1)
		}
		s.endStartup()
		return
	}
	_ = s.conn.SetDeadline(time.Time{})
	s.srv.cfg.Metrics.clientConnected(1)
	s.started = time.Now()
	// No goroutine waits for ctx: an idle client costs as little as can be.
	s.stopWatch = context.AfterFunc(s.ctx, func() {
		s.srv.parker.wake(s) // a parked session must see its connection go
		s.conn.Close()
		s.leaseMu.Lock()
		if s.up != nil {
			s.up.conn.Close()
		}
		s.leaseMu.Unlock()
	})
	s.serving = true
	s.serve()
}

// serve reads client messages until the session ends (then finish) or
// parks. It recovers from a panic: one bad session never takes the proxy
// down.
func (s *session) serve() {
	var err error
	parked := false
	defer func() {
		if r := recover(); r != nil {
			s.log.Error("session panicked; connection closed", "panic", r, "stack", string(debug.Stack()))
			err, parked = fmt.Errorf("session panicked: %v", r), false
		}
		if !parked {
			s.finish(err)
		}
	}()
	parked, err = s.serveClient()
}

// resume carries on a parked session (the parker's wake-up).
func (s *session) resume() { s.serve() }

// endStartup releases what a session that never got to serve holds.
func (s *session) endStartup() {
	s.srv.leaveTenants(s.tenantsAdmitted)
	s.srv.sessionDone(s.conn)
}

// finish ends a session that served: what it holds upstream, its audit
// totals, its place in the server's counts.
func (s *session) finish(clientErr error) {
	s.closing.Store(true)
	s.srv.clients.Add(-1)
	s.counted = false
	// A connection still held (mid-transaction, or awaiting answers) is
	// ended: an open transaction is rolled back, and it is never lent
	// again.
	s.leaseMu.Lock()
	sc, done := s.up, s.relayDone
	s.up, s.fe = nil, nil
	if sc != nil {
		sc.fe.Send(&pgproto3.Terminate{})
		_ = sc.fe.Flush()
		_ = sc.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	}
	s.leaseMu.Unlock()
	var upErr error
	if sc != nil {
		upErr = <-done
	}
	s.log.Debug("session ended", "client_err", clientErr, "upstream_err", upErr)
	for id, t := range s.results.takeAll() {
		s.statementEnded(id, t)
	}
	s.record(event{Kind: "session.ended", DurationMS: float64(time.Since(s.started).Microseconds()) / 1000,
		Statements: s.statements, Rejected: s.rejected})
	s.stopWatch()
	s.srv.cfg.Metrics.clientConnected(-1)
	s.srv.cancels.unregister(s.keyPID)
	s.endStartup()
}

// startup authenticates the client and opens its upstream connection.
func (s *session) startup() error {
	start, err := s.handshake()
	if err != nil || start == nil {
		if err == nil {
			err = errClientGone // a cancel request: nothing more to say
		}
		return err
	}
	params, err := startupParams(start.Parameters)
	if err != nil {
		return err
	}
	s.database = start.Parameters["database"]
	s.application = params["application_name"]
	upDB := s.srv.cfg.Upstream.Database
	if s.database != "" && s.database != upDB {
		return newClientError(codeInvalidCatalogName, fmt.Sprintf("connect to database %q", upDB), "database %q is not served by this proxy", s.database)
	}
	if !s.tls && !s.srv.cfg.AllowPlaintextPassword && !isLoopback(s.conn.LocalAddr()) {
		return newClientError(codeInvalidAuthSpec, "connect with sslmode=require", "a token may only be sent over TLS on this listener")
	}
	s.be.Send(&pgproto3.AuthenticationCleartextPassword{})
	if err := s.be.Flush(); err != nil {
		return errClientGone
	}
	if err := s.hs.SetAuthType(pgproto3.AuthTypeCleartextPassword); err != nil {
		return err
	}
	msg, err := s.hs.Receive()
	if err != nil {
		return errClientGone
	}
	// The client now waits for the proxy's answer: from here on it is
	// spoken to through a clientWire, and the startup buffers go.
	s.be = newClientWire(flushReader{r: s.conn, flush: s.flushUpstream},
		&deadlineWriter{conn: s.conn, timeout: s.srv.cfg.ClientWriteTimeout, failed: &s.writeTimedOut}, s.srv.cfg.MaxMessageSize)
	s.hs = nil
	pw, ok := msg.(*pgproto3.PasswordMessage)
	if !ok {
		return newClientError(codeProtocolViolation, "", "expected a password message, got %T", msg)
	}
	id, err := s.srv.verifier.Load().Verify(pw.Password)
	if err != nil {
		s.record(event{Kind: "auth.failed", Reason: err.Error()})
		return err
	}
	if pattern := s.srv.cfg.TenantSchema; pattern != "" && !id.Unscoped {
		if _, err := rewrite.TenantSchemaName(pattern, id.Tenants); err != nil {
			err = newClientError(codeInvalidAuthSpec, "use a token that names exactly one tenant", "%v", err)
			s.record(event{Kind: "auth.failed", Reason: err.Error()})
			return err
		}
	}
	if err := s.srv.admitTenants(id.Tenants); err != nil {
		s.record(event{Kind: "auth.failed", Reason: err.Error()})
		return err
	}
	s.tenantsAdmitted = id.Tenants
	s.identity = id
	s.authenticated() // no longer one of those --max-unauthenticated-conn may close
	// Only authenticated clients count against --max-client-conn.
	if n := s.srv.clients.Add(1); n > int64(s.srv.cfg.MaxClientConn) {
		s.srv.clients.Add(-1)
		return newClientError(codeTooManyConnections, "retry later, or raise --max-client-conn",
			"too many client connections (the proxy's limit is %d)", s.srv.cfg.MaxClientConn)
	}
	s.counted = true
	if id.ReadOnly {
		// The second line: every upstream transaction of the session is
		// read-only, whatever the rewriter let through.
		params["default_transaction_read_only"] = "on"
	}
	s.scope = sessionScope(id)
	if len(id.Tenants) == 1 && id.Tenants[0] != "" {
		s.channelPrefix = rewrite.ChannelPrefix(id.Tenants[0])
	}
	s.log = s.log.With("sub", id.Subject, "tenants", id.Tenants)
	if err := s.audit(event{Kind: "auth.succeeded"}); err != nil {
		return errAuditSession(err)
	}

	var status map[string]string
	if s.pooled {
		status, err = s.startPooled(params)
	} else {
		status, err = s.startDedicated(params)
	}
	if err != nil {
		return err
	}
	s.be.Send(&pgproto3.AuthenticationOk{})
	for _, k := range slices.Sorted(maps.Keys(status)) {
		s.be.Send(&pgproto3.ParameterStatus{Name: k, Value: status[k]})
	}
	s.be.Send(&pgproto3.BackendKeyData{ProcessID: s.keyPID, SecretKey: s.keySecret})
	s.be.Send(&pgproto3.ReadyForQuery{TxStatus: 'I'})
	if err := s.be.Flush(); err != nil {
		if s.up != nil {
			s.dropConn(s.up)
			s.up, s.fe = nil, nil
		}
		return errClientGone
	}
	if s.up != nil {
		s.startRelay()
	}
	return nil
}

// startDedicated opens the session's own upstream connection (session
// mode), with the client's startup parameters.
func (s *session) startDedicated(params map[string]string) (map[string]string, error) {
	hc, err := s.connectUpstream(params)
	if err != nil {
		return nil, upstreamConnectError(s.log, err)
	}
	sc := newServerConn(hc, nil)
	s.srv.cfg.Metrics.serverConnected(1)
	s.keyPID, s.keySecret = s.srv.cancels.register(sc.cancelTarget())
	s.up, s.fe = sc, sc.fe // relayed once the client has its startup messages
	return sc.params, nil
}

// upstreamConnectError is what the client sees when no upstream connection
// could be opened: Postgres's own error, or a connection failure.
func upstreamConnectError(log *slog.Logger, err error) error {
	log.Warn("upstream connection failed", "err", err)
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return err
	}
	return newClientError(codeConnectionFailure, "check that the database is up; the proxy's log has details", "cannot connect to the database")
}

// connectUpstream opens and authenticates the session's upstream connection
// with the proxy's credentials, then takes over its socket.
func (s *session) connectUpstream(params map[string]string) (*pgconn.HijackedConn, error) {
	cfg := s.srv.cfg.Upstream.Copy()
	if cfg.RuntimeParams == nil {
		cfg.RuntimeParams = map[string]string{}
	}
	maps.Copy(cfg.RuntimeParams, params)
	ctx, cancel := context.WithTimeout(s.ctx, s.srv.cfg.StartupTimeout)
	defer cancel()
	pc, err := pgconn.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, err
	}
	if err := pc.SyncConn(ctx); err != nil {
		pc.Close(ctx)
		return nil, err
	}
	hc, err := pc.Hijack()
	if err != nil {
		pc.Close(ctx)
		return nil, err
	}
	if hc.Frontend.ReadBufferLen() > 0 {
		hc.Conn.Close()
		return nil, errors.New("upstream sent unexpected data after startup")
	}
	return hc, nil
}

// serveClient reads client messages until Terminate or an error, or
// until the session parks.
func (s *session) serveClient() (parked bool, err error) {
	for {
		msg, err := s.receive()
		if errors.Is(err, errPark) {
			if s.srv.parker.park(s) {
				return true, nil // resumed by the parker, in another goroutine
			}
			continue
		}
		if err != nil {
			var idle *idleTimeout
			if errors.As(err, &idle) {
				s.fatal(idle.err)
				return false, err
			}
			var tooBig *pgproto3.ExceededMaxBodyLenErr
			switch {
			case errors.As(err, &tooBig):
				s.fatal(newClientError(codeProgramLimitReached, "send smaller statements or raise --max-message-size",
					"message of %d bytes exceeds the limit of %d bytes", tooBig.ActualBodyLen, tooBig.MaxExpectedBodyLen))
			case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, net.ErrClosed):
			default:
				s.fatal(newClientError(codeProtocolViolation, "", "invalid message from client: %v", err))
			}
			return false, err
		}
		switch msg.(type) {
		case *pgproto3.CopyData, *pgproto3.CopyDone, *pgproto3.CopyFail:
		default:
			s.copyIn, s.copyFailed = nil, false // the COPY is over
		}
		switch msg.(type) {
		case *pgproto3.Terminate:
			return false, nil
		case *pgproto3.Query, *pgproto3.Parse, *pgproto3.Bind, *pgproto3.Close, *pgproto3.Sync, *pgproto3.Execute,
			*pgproto3.Describe, *pgproto3.Flush, *pgproto3.CopyData, *pgproto3.CopyDone, *pgproto3.CopyFail, *pgproto3.FunctionCall:
		default:
			err := newClientError(codeProtocolViolation, "", "unexpected message %T", msg)
			s.fatal(err)
			return false, err
		}
		if s.skipToSync {
			// An extended-protocol message failed before it reached
			// upstream: like Postgres, drop the rest until Sync.
			if _, ok := msg.(*pgproto3.Sync); ok {
				s.skipToSync = false
				s.answerLocally(nil, true)
			}
			continue
		}
		if err := s.tokenExpired(msg); err != nil {
			s.fatal(err)
			return false, err
		}
		var d *decision // decided before the lock: see decision
		switch m := msg.(type) {
		case *pgproto3.Query:
			d = s.decideQuery(m)
		case *pgproto3.Parse:
			d = s.decideParse(m)
		}
		s.leaseMu.Lock()
		s.handleMessage(msg, d)
		inline := s.inline
		s.inline = false
		s.leaseMu.Unlock()
		if inline {
			if err := s.roundTripInline(); err != nil {
				return false, err
			}
		}
	}
}

// tokenExpired ends a session whose token has expired (plus
// --token-expiry-grace) when it sends its next statement.
func (s *session) tokenExpired(msg pgproto3.FrontendMessage) error {
	switch msg.(type) {
	case *pgproto3.Query, *pgproto3.Parse, *pgproto3.Bind, *pgproto3.Execute, *pgproto3.FunctionCall:
	default:
		return nil
	}
	exp := s.identity.Expiry
	if exp.IsZero() || time.Now().Before(exp.Add(s.srv.cfg.TokenExpiryGrace)) {
		return nil
	}
	s.record(event{Kind: "session.expired", Reason: "token expired at " + exp.UTC().Format(time.RFC3339)})
	return newClientError(auth.CodeInvalidPassword, "reconnect with a new token",
		"the session's token expired at %s", exp.UTC().Format(time.RFC3339))
}

func noop() {}

// errPark: the session is idle and may park.
var errPark = errors.New("idle: park the session")

// parkAfter is how long a session between transactions waits for its
// client's next message before it parks. Parking costs a registration and
// a new goroutine on resuming: a client that is busy never pays it.
const parkAfter = 500 * time.Millisecond

// parkable reports whether the session may park if its client stays
// silent: transaction mode, no connection held, nothing buffered, no COPY,
// a socket the parker can watch.
func (s *session) parkable() bool {
	if s.srv.parker == nil || !s.pooled || s.tls || s.copyIn != nil {
		return false
	}
	w, ok := s.be.(*clientWire)
	if !ok || !w.empty() {
		return false
	}
	s.leaseMu.Lock()
	defer s.leaseMu.Unlock()
	return s.up == nil
}

// idleTimeout ends a session whose client stayed silent too long.
type idleTimeout struct{ err error }

func (e *idleTimeout) Error() string { return e.err.Error() }

// receive reads the next client message. With --client-idle-timeout or
// --idle-in-transaction-timeout set, a client that sends nothing for that
// long while nothing it sent is still running gets an idleTimeout; a
// client waiting for its statement's answer is never timed out.
func (s *session) receive() (pgproto3.FrontendMessage, error) {
	cfg := s.srv.cfg
	if cfg.ClientIdleTimeout <= 0 && cfg.IdleInTransactionTimeout <= 0 && !s.srv.draining.Load() {
		for {
			if s.parkable() {
				// Idle this long, the session parks (park_linux.go).
				_ = s.conn.SetReadDeadline(time.Now().Add(parkAfter))
				s.deadlineSet.Store(true)
			} else if s.deadlineSet.Swap(false) {
				_ = s.conn.SetReadDeadline(time.Time{})
			}
			msg, err := s.be.Receive()
			var ne net.Error
			if err == nil || !errors.As(err, &ne) || !ne.Timeout() {
				return msg, err
			}
			if s.srv.draining.Load() {
				break
			}
			if s.parkable() {
				_ = s.conn.SetReadDeadline(time.Time{})
				s.deadlineSet.Store(false)
				return nil, errPark
			}
			// A deadline with nothing to park for (mid-message, or the
			// connection was lent meanwhile): read on without it.
		}
		// Shutdown woke the read: look at the session below.
	}
	start := time.Now()
	for {
		// Idle means: nothing sent is still unanswered, and that since
		// both the last answer and the start of this read.
		s.leaseMu.Lock()
		waiting := s.up != nil && (s.ready != s.rounds || s.unsynced)
		inTx := s.txStatus != 'I' && s.txStatus != 0
		since := start
		if s.lastReady.After(since) {
			since = s.lastReady
		}
		s.leaseMu.Unlock()
		limit, what, code, flag := cfg.ClientIdleTimeout, "idle-session", codeIdleSessionTimeout, "--client-idle-timeout"
		if inTx {
			limit, what, code, flag = cfg.IdleInTransactionTimeout, "idle-in-transaction", codeIdleInTransactionTimeout, "--idle-in-transaction-timeout"
		}
		now := time.Now()
		switch {
		case s.srv.draining.Load() && !waiting && !inTx:
			return nil, &idleTimeout{newClientError(codeAdminShutdown, "reconnect: another instance of the proxy serves new connections",
				"terminating connection due to administrator command (the proxy is shutting down)")}
		case s.srv.draining.Load():
			_ = s.conn.SetReadDeadline(now.Add(50 * time.Millisecond)) // look again soon
		case limit <= 0:
			_ = s.conn.SetReadDeadline(time.Time{})
		case waiting:
			_ = s.conn.SetReadDeadline(now.Add(limit))
		case now.Sub(since) >= limit:
			return nil, &idleTimeout{newClientError(code, "reconnect; the proxy's "+flag+" ends sessions that stay silent this long",
				"terminating connection due to %s timeout (%s)", what, limit)}
		default:
			_ = s.conn.SetReadDeadline(since.Add(limit))
		}
		msg, err := s.be.Receive()
		if err == nil {
			_ = s.conn.SetReadDeadline(time.Time{})
			return msg, nil
		}
		var ne net.Error
		if !errors.As(err, &ne) || !ne.Timeout() {
			return nil, err
		}
	}
}

// handleMessage serves one client message (leaseMu held), first taking an
// upstream connection from the pool when the session holds none.
func (s *session) handleMessage(msg pgproto3.FrontendMessage, d *decision) {
	if s.up == nil {
		switch msg.(type) {
		case *pgproto3.Sync:
			// Nothing is pending: Postgres would only say it is ready.
			s.answerLocally(nil, true)
			return
		case *pgproto3.Flush, *pgproto3.CopyData, *pgproto3.CopyDone, *pgproto3.CopyFail:
			return // nothing to flush; copy messages outside a COPY are ignored
		}
		_, s.inline = msg.(*pgproto3.Query)
		if err := s.lease(!s.inline); err != nil {
			s.inline = false
			_, simple := msg.(*pgproto3.Query)
			if d != nil && !d.undecided && d.err == nil && d.auditErr == nil {
				// Audited as about to run; it did not.
				s.record(event{Kind: "statement.completed", StatementID: d.id, SQLState: errorResponse(err, "ERROR").Code, Reason: "not run: " + err.Error()})
			}
			s.answerLocally(err, simple)
			s.skipToSync = !simple
			return
		}
	}
	switch msg.(type) {
	case *pgproto3.Sync:
		s.unsynced = false
	case *pgproto3.Query, *pgproto3.FunctionCall, *pgproto3.CopyData, *pgproto3.CopyDone, *pgproto3.CopyFail:
	default:
		s.unsynced = true
	}
	switch m := msg.(type) {
	case *pgproto3.CopyData:
		s.copyData(m)
	case *pgproto3.CopyDone:
		s.copyDone(m)
	case *pgproto3.Query:
		s.handleQuery(m, d)
	case *pgproto3.Parse:
		s.handleParse(m, d)
	case *pgproto3.Bind:
		s.handleBind(m)
	case *pgproto3.Close:
		s.handleClose(m)
	case *pgproto3.Describe:
		s.handleDescribe(m)
	case *pgproto3.Sync:
		s.fe.Send(m)
		s.rounds++
	case *pgproto3.Execute:
		s.results.expect(s.results.portals[m.Portal], true, s.rounds)
		s.fe.Send(m)
	case *pgproto3.Flush, *pgproto3.CopyFail:
		s.fe.Send(m)
	case *pgproto3.FunctionCall:
		s.handleFunctionCall(m)
	}
}

// answerLocally answers the client without upstream, which is idle: err
// (if any), then ReadyForQuery when ready is set.
func (s *session) answerLocally(err error, ready bool) {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	if err != nil {
		resp := errorResponse(err, "ERROR")
		s.log.Info("statement failed in the proxy", "code", resp.Code, "reason", resp.Message)
		s.be.Send(resp)
	}
	if ready {
		s.be.Send(&pgproto3.ReadyForQuery{TxStatus: 'I'})
	}
	_ = s.be.Flush()
}

// relay copies sc's messages to the client, putting each refusal in place
// of its sentinel error, until the connection is given back to the pool
// or fails. It reports the error that ended it on done.
func (s *session) relay(sc *serverConn, done chan<- error) {
	err := s.relayUntilReleased(sc)
	if err != nil {
		s.relayFailed(sc, err)
	}
	done <- err
}

// relayFailed ends the session's hold on sc after reading it failed.
func (s *session) relayFailed(sc *serverConn, err error) {
	s.leaseMu.Lock()
	if s.up == sc {
		s.up, s.fe = nil, nil
	}
	s.leaseMu.Unlock()
	if s.writeTimedOut.Load() {
		// The client stopped reading: its statement is ended with
		// the upstream connection, which leaves the pool.
		s.log.Warn("the client did not read its results within --client-write-timeout; session ended", "timeout", s.srv.cfg.ClientWriteTimeout)
		s.conn.Close()
	} else if !s.closing.Load() && s.ctx.Err() == nil {
		s.log.Warn("upstream connection lost", "err", err)
		if sc.pool != nil {
			sc.pool.purge() // a restart took the idle ones too
		}
		s.fatal(newClientError(codeConnectionFailure, "reconnect", "lost the connection to the database"))
		s.conn.Close()
	}
	s.dropConn(sc)
}

// relayUntilReleased is relay's loop: nil means sc went back to the pool.
func (s *session) relayUntilReleased(sc *serverConn) (err error) {
	defer func() {
		if r := recover(); r != nil {
			s.log.Error("relay panicked", "panic", r, "stack", string(debug.Stack()))
			err = fmt.Errorf("relay panicked: %v", r)
		}
	}()
	for {
		msg, err := sc.fe.Receive()
		if err != nil {
			return err
		}
		if released, _ := s.relayMessage(sc, msg); released {
			return nil
		}
	}
}

// roundTripInline serves, in the session goroutine, the answer to a simple
// Query that took a connection from the pool (transaction mode): the most
// common round trip, a statement in a transaction of its own, costs no
// relay goroutine. Once the answer shows the round trip does not end
// there (a transaction left open, a COPY waiting for the client's data)
// a relay takes over, as for every other message. A failed read ends the
// session's hold on sc and is returned.
func (s *session) roundTripInline() error {
	sc := s.up
	if err := s.flushUpstream(); err != nil {
		s.relayFailed(sc, err)
		return err
	}
	for {
		msg, err := sc.fe.Receive()
		if err != nil {
			s.relayFailed(sc, err)
			return err
		}
		released, waiting := s.relayMessage(sc, msg)
		if released {
			return nil
		}
		if waiting {
			s.leaseMu.Lock()
			if s.up == sc {
				s.startRelay()
			}
			s.leaseMu.Unlock()
			return nil
		}
	}
}

// relayMessage passes one upstream message to the client (relay goroutine,
// or roundTripInline). released: sc went back to the pool at a
// ReadyForQuery. waiting: upstream now waits for the client (a
// ReadyForQuery that kept the connection, a COPY's request for data).
func (s *session) relayMessage(sc *serverConn, msg pgproto3.BackendMessage) (released, waiting bool) {
	msg, show := s.results.passKeys(msg)
	if !show {
		return false, false // the proxy's statement
	}
	switch m := msg.(type) {
	case *pgproto3.ErrorResponse:
		if r, ok := s.takeRefusal(m); ok {
			msg = r
		} else {
			guardRefusal(m)
		}
	case *pgproto3.ParseComplete:
		if !s.book.parseComplete() {
			return false, false // a Parse the proxy added: the client did not send it
		}
	case *pgproto3.NotificationResponse:
		n, ok := s.notification(sc, m)
		if !ok {
			return false, false
		}
		msg = n
	case *pgproto3.ParameterStatus:
		s.leaseMu.Lock()
		sc.params[m.Name] = m.Value
		s.leaseMu.Unlock()
	case *pgproto3.ReadyForQuery:
		s.leaseMu.Lock()
		s.ready++
		s.txStatus, s.lastReady = m.TxStatus, time.Now()
		s.forgetFailedParses(sc, s.book.ready(s.ready))
		s.leaseMu.Unlock()
		s.expireRefusals(s.ready)
	case *pgproto3.CopyInResponse, *pgproto3.CopyBothResponse:
		waiting = true
	}
	s.completed(s.results.observe(msg, s.ready))
	s.writeMu.Lock()
	s.be.Send(msg)
	s.writeMu.Unlock()
	if m, ok := msg.(*pgproto3.ReadyForQuery); ok {
		if s.pooled && s.release(sc, m.TxStatus) {
			return true, false
		}
		waiting = true
	}
	return false, waiting
}

// notification turns an upstream notification into the one the client
// sees: its channel without the tenant's prefix, and the client's own
// process id (BackendKeyData) when the session's connection sent it. A
// channel outside the session's space never reaches the client: the
// rewriter only LISTENs in it, so such a notification is a fault, logged,
// counted and dropped.
func (s *session) notification(sc *serverConn, m *pgproto3.NotificationResponse) (*pgproto3.NotificationResponse, bool) {
	channel, ok := strings.CutPrefix(m.Channel, s.channelPrefix)
	if !ok || s.channelPrefix == "" {
		s.log.Warn("dropped a notification outside the session's channel space", "channel", m.Channel)
		s.srv.cfg.Metrics.notification("dropped")
		return nil, false
	}
	s.srv.cfg.Metrics.notification("relayed")
	pid := m.PID
	if pid == sc.pid {
		pid = s.keyPID
	}
	return &pgproto3.NotificationResponse{PID: pid, Channel: channel, Payload: m.Payload}, true
}

// fatal sends a FATAL ErrorResponse; the caller then closes the connection.
func (s *session) fatal(err error) {
	resp := errorResponse(err, "FATAL")
	s.log.Info("closing client connection", "code", resp.Code, "reason", resp.Message)
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	_ = s.conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
	s.be.Send(resp)
	_ = s.be.Flush()
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// sessionScope is what a session may see: the tenant claim's values as the
// primary dimension, every other claim of the token for tables bound to it.
func sessionScope(id *auth.Identity) rewrite.Scope {
	values := make(map[string][]string, len(id.Claims)+1)
	for name, v := range id.Claims {
		values[name] = v
	}
	values[""] = id.Tenants
	return rewrite.Scope{Values: values, Unscoped: id.Unscoped, ReadOnly: id.ReadOnly}
}
