package proxy

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/tenantproxy/tenantproxy/audit"
	"github.com/tenantproxy/tenantproxy/auth"
	"github.com/tenantproxy/tenantproxy/catalog"
	"github.com/tenantproxy/tenantproxy/rewrite"
)

// CatalogSource hands out the current catalog snapshot. Sessions ask for it
// once per statement; implementations swap snapshots atomically.
type CatalogSource interface {
	Snapshot() *catalog.Snapshot
}

// AuditWriter records audit events (audit.Queue in production). Append
// and Durable are for events of what is about to happen: an error means it
// must not (the statement or session is refused). Record is for what
// already happened and is never refused.
type AuditWriter interface {
	Append(audit.Event) (audit.Ticket, error)
	Durable(audit.Ticket) error
	Record(audit.Event)
}

// StatementRewriter scopes a statement string for a session's scope under
// a catalog snapshot (rewrite.Rewriter and rewrite.Cache).
type StatementRewriter interface {
	Rewrite(sql string, scope rewrite.Scope, snap *catalog.Snapshot) (*rewrite.Result, error)
}

// Config is everything a Server needs. Zero durations and sizes take the
// documented defaults.
type Config struct {
	// Upstream is the proxy's own connection to Postgres; each session gets
	// a copy with the client's harmless startup parameters added.
	Upstream *pgconn.Config
	// TLS, when set, is offered to clients that send SSLRequest.
	TLS *tls.Config
	// AllowPlaintextPassword accepts a token over a non-TLS connection on a
	// non-loopback listener.
	AllowPlaintextPassword bool
	// MaxMessageSize caps one client message (default 64 MiB).
	MaxMessageSize int
	// StartupTimeout bounds the handshake, TLS and authentication (default 10s).
	StartupTimeout time.Duration
	Verifier       *auth.Verifier
	// Rewriter scopes statements: a *rewrite.Rewriter, or a *rewrite.Cache
	// in front of one.
	Rewriter StatementRewriter
	Catalog  CatalogSource
	Audit    AuditWriter
	// AuditRedact replaces literals in audited SQL with placeholders.
	AuditRedact bool
	// AuditExecutions records every execution of a prepared statement,
	// not only its totals when it ends.
	AuditExecutions bool
	Logger          *slog.Logger
	// Metrics, when set, records connections, decisions and latencies.
	Metrics *Metrics
	// Mode is ModeEnforce (the default) or ModeShadow, which sends every
	// statement as the client wrote it and only audits what enforce
	// mode would have done. Shadow mode needs PoolSession.
	Mode string
	// PoolMode is PoolTransaction (the default) or PoolSession.
	PoolMode string
	// Pool sizes transaction mode's upstream connections.
	Pool PoolConfig
	// MaxClientConn caps the authenticated client connections (default
	// 10000).
	MaxClientConn int
	// MaxUnauthenticatedConn caps the connections that have not finished
	// authenticating, counted apart (default 100): past it, the oldest
	// of them is closed to make room.
	MaxUnauthenticatedConn int
	// MaxTenantConn caps the client connections per tenant (0: no cap).
	MaxTenantConn int
	// TenantSchema is the --tenant-schema pattern under schema-per-tenant
	// isolation (empty: row isolation). A token must name exactly one
	// tenant, refused at connect otherwise. The rewriter has the same
	// pattern in its Config.
	TenantSchema string
	// TokenExpiryGrace is how long past its token's exp a session may go
	// on; its next statement after that ends it.
	TokenExpiryGrace time.Duration
	// ShutdownTimeout is how long Serve, once ctx ends, lets sessions
	// finish their transactions before it closes them (default 30s).
	ShutdownTimeout time.Duration
	// ClientIdleTimeout ends a session whose client sends nothing this
	// long outside a transaction; IdleInTransactionTimeout one that
	// leaves a transaction open and silent this long (0: never).
	ClientIdleTimeout, IdleInTransactionTimeout time.Duration
	// ClientWriteTimeout ends a session whose client does not read what
	// is sent to it for this long (0: never); its upstream connection is
	// closed, which ends its statement and frees its pool slot.
	ClientWriteTimeout time.Duration
}

// Server accepts client connections and runs a session for each.
type Server struct {
	cfg     Config
	log     *slog.Logger
	cancels cancelRegistry
	pool    *pool // transaction mode's connections; nil in session mode
	// parker holds idle sessions without their goroutines (transaction
	// mode; nil when sessions cannot park).
	parker  *parker
	clients atomic.Int64
	// unauth are the connections still authenticating (unauth.go).
	unauth *unauthSet

	tenantMu    sync.Mutex
	tenantConns map[string]int // client connections per tenant

	draining atomic.Bool // shutting down: sessions end once idle
	verifier atomic.Pointer[auth.Verifier]
	// stop ends every session at once (Close); a signal only drains.
	stopCtx context.Context
	stop    context.CancelFunc

	mu       sync.Mutex
	conns    map[net.Conn]struct{}
	wg       sync.WaitGroup
	closed   bool
	listener net.Listener
}

// NewServer checks cfg and returns a Server.
func NewServer(cfg Config) (*Server, error) {
	if cfg.Upstream == nil || cfg.Verifier == nil || cfg.Rewriter == nil || cfg.Catalog == nil || cfg.Audit == nil {
		return nil, errors.New("proxy: Upstream, Verifier, Rewriter, Catalog and Audit are required")
	}
	if cfg.MaxMessageSize <= 0 {
		cfg.MaxMessageSize = 64 << 20
	}
	if cfg.StartupTimeout <= 0 {
		cfg.StartupTimeout = 10 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.MaxClientConn <= 0 {
		cfg.MaxClientConn = 10000
	}
	if cfg.MaxUnauthenticatedConn <= 0 {
		cfg.MaxUnauthenticatedConn = 100
	}
	if err := checkMode(cfg); err != nil {
		return nil, err
	}
	if cfg.Mode == "" {
		cfg.Mode = ModeEnforce
	}
	cfg.Metrics.setMode(cfg.Mode)
	srv := &Server{cfg: cfg, log: cfg.Logger, conns: map[net.Conn]struct{}{}, cancels: newCancelRegistry(), tenantConns: map[string]int{},
		unauth: newUnauthSet(cfg.MaxUnauthenticatedConn)}
	srv.stopCtx, srv.stop = context.WithCancel(context.Background())
	srv.verifier.Store(cfg.Verifier)
	switch cfg.PoolMode {
	case "", PoolTransaction:
		srv.pool = newPool(cfg.Pool, cfg.Metrics, srv.dialPooled)
		cfg.Metrics.poolGauges(srv.pool)
		srv.parker = newParker(cfg.Logger)
	case PoolSession:
	default:
		return nil, fmt.Errorf("proxy: pool mode %q: use %s or %s", cfg.PoolMode, PoolTransaction, PoolSession)
	}
	return srv, nil
}

// SetVerifier replaces the token verifier (new keys after SIGHUP): new
// connections use it; established sessions keep going.
func (s *Server) SetVerifier(v *auth.Verifier) {
	if v != nil {
		s.verifier.Store(v)
	}
}

// dialPooled opens a pool connection with the proxy's own settings and
// reads the tracked settings' starting values.
func (s *Server) dialPooled(ctx context.Context) (*serverConn, error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.StartupTimeout)
	defer cancel()
	pc, err := pgconn.ConnectConfig(ctx, s.cfg.Upstream)
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
	sc := newServerConn(hc, s.pool)
	if sc.settings, err = sc.readSettings(s.cfg.StartupTimeout); err != nil {
		sc.conn.Close()
		return nil, err
	}
	return sc, nil
}

// Serve accepts connections on ln until ctx ends or Close is called.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	s.mu.Lock()
	s.listener = ln
	s.mu.Unlock()
	drained := make(chan struct{})
	go func() {
		defer close(drained)
		<-ctx.Done()
		s.Shutdown(s.cfg.ShutdownTimeout)
	}()
	// Serve returns once every session has ended, so that what runs after
	// it (closing the audit stream) sees them all.
	defer func() {
		if ctx.Err() != nil {
			<-drained
		}
	}()
	var delay time.Duration
	for {
		conn, err := ln.Accept()
		if err != nil {
			s.mu.Lock()
			closed := s.closed
			s.mu.Unlock()
			if closed {
				return nil
			}
			if errors.Is(err, net.ErrClosed) {
				return err
			}
			// EMFILE and friends: back off and keep serving.
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			s.log.Warn("accept failed; retrying", "err", err, "in", delay)
			time.Sleep(delay)
			continue
		}
		delay = 0
		if !s.track(conn) {
			conn.Close()
			return nil
		}
		s.wg.Add(1)
		go s.serveConn(s.stopCtx, conn)
	}
}

// Shutdown stops accepting, lets every session finish what it is doing
// (an open transaction, a statement running) for at most timeout, ending
// each with FATAL 57P01 once it is idle, then closes what is left.
func (s *Server) Shutdown(timeout time.Duration) {
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	s.draining.Store(true)
	s.mu.Lock()
	if s.listener != nil {
		s.listener.Close()
	}
	conns := make([]net.Conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	s.log.Info("shutting down: sessions end as they become idle", "sessions", len(conns), "timeout", timeout)
	for _, c := range conns {
		_ = c.SetReadDeadline(time.Now()) // wake readers to look at draining
	}
	s.parker.wakeAll() // and parked sessions
	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(timeout):
		s.log.Warn("shutdown timeout: closing the sessions still open")
	}
	s.Close()
}

// Close stops accepting and closes every client connection.
func (s *Server) Close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	s.stop()
	if s.listener != nil {
		s.listener.Close()
	}
	s.parker.wakeAll()
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
	if s.pool != nil {
		s.pool.close()
	}
}

func (s *Server) track(c net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.conns[c] = struct{}{}
	return true
}

func (s *Server) untrack(c net.Conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
}

// serveConn runs one client connection from handshake to close (the
// session may go on in other goroutines after it parks: session.finish
// ends it). It recovers from a panic during startup; serve recovers from
// any later one, so one bad session never takes the proxy down.
func (s *Server) serveConn(ctx context.Context, conn net.Conn) {
	sess := newSession(s, conn)
	defer func() {
		if r := recover(); r != nil {
			s.log.Error("session panicked; connection closed", "client", conn.RemoteAddr().String(), "panic", r, "stack", string(debug.Stack()))
			if !sess.serving {
				sess.endStartup()
			}
		}
	}()
	sess.run(ctx)
}

// sessionDone closes a session's client connection and stops counting it.
func (s *Server) sessionDone(conn net.Conn) {
	conn.Close()
	s.untrack(conn)
	s.wg.Done()
}

// admitTenants counts a session against each of its tenants' connection
// cap; the error names the tenant that is full.
func (s *Server) admitTenants(tenants []string) error {
	if s.cfg.MaxTenantConn <= 0 {
		return nil
	}
	s.tenantMu.Lock()
	defer s.tenantMu.Unlock()
	for _, t := range tenants {
		if s.tenantConns[t] >= s.cfg.MaxTenantConn {
			return newClientError(codeTooManyTenantConns, "close idle connections of this tenant, or raise --max-tenant-conn",
				"too many connections for tenant %q (the proxy allows %d per tenant)", t, s.cfg.MaxTenantConn)
		}
	}
	for _, t := range tenants {
		s.tenantConns[t]++
	}
	return nil
}

// leaveTenants undoes admitTenants.
func (s *Server) leaveTenants(tenants []string) {
	if s.cfg.MaxTenantConn <= 0 {
		return
	}
	s.tenantMu.Lock()
	defer s.tenantMu.Unlock()
	for _, t := range tenants {
		if s.tenantConns[t]--; s.tenantConns[t] <= 0 {
			delete(s.tenantConns, t)
		}
	}
}
