package proxy

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
)

// Pool modes.
const (
	// PoolTransaction lends an upstream connection to a client for one
	// transaction (or one extended-protocol exchange up to Sync outside a
	// transaction).
	PoolTransaction = "transaction"
	// PoolSession gives every client its own upstream connection.
	PoolSession = "session"
)

// trackedSettings are the session settings a client may change (startup
// parameters and SET) that live on an upstream connection. In transaction
// mode each client's values are read back after it changes one and applied
// to whichever connection serves it next.
var trackedSettings = []string{
	"application_name", "client_encoding", "datestyle", "intervalstyle", "timezone", "extra_float_digits",
	"statement_timeout", "lock_timeout", "idle_in_transaction_session_timeout", "client_min_messages",
	"bytea_output", "standard_conforming_strings",
	"default_transaction_isolation", "default_transaction_read_only", "default_transaction_deferrable",
}

// readbackSQL reads every tracked setting in one row.
var readbackSQL = func() string {
	cols := make([]string, len(trackedSettings))
	for i, name := range trackedSettings {
		cols[i] = "pg_catalog.current_setting('" + name + "')"
	}
	return "SELECT " + strings.Join(cols, ", ")
}()

// maxServerStatements is how many prepared statements an upstream
// connection may hold before it is cleared (DEALLOCATE ALL) when next lent;
// clients' statements are prepared again on demand.
const maxServerStatements = 256

// serverConn is one upstream connection.
type serverConn struct {
	conn   net.Conn
	fe     *pgproto3.Frontend
	pid    uint32
	secret []byte
	pool   *pool // nil for a session-mode connection
	// tenantKey is the tenants of the client it is lent to (pool.held).
	tenantKey string
	created   time.Time
	target    cancelTarget // where its cancel requests go

	// The rest belongs to whoever holds the connection.
	params    map[string]string // ParameterStatus values as last reported
	settings  map[string]string // tracked settings' values (nil: unknown)
	prepared  map[string]bool   // protocol statements it holds, by server name
	unnamed   string            // key of the statement in its unnamed slot, "" if unknown
	idleSince time.Time

	owner atomic.Pointer[session] // whose client the reader flushes before blocking
}

func newServerConn(hc *pgconn.HijackedConn, p *pool) *serverConn {
	sc := &serverConn{conn: hc.Conn, pid: hc.PID, secret: hc.SecretKey, pool: p, created: time.Now(),
		params: maps.Clone(hc.ParameterStatuses), prepared: map[string]bool{}}
	sc.fe = pgproto3.NewFrontend(flushReader{r: hc.Conn, flush: sc.flushOwner}, hc.Conn)
	sc.fe.SetMaxBodyLen(0)
	sc.target = cancelTarget{network: hc.Conn.RemoteAddr().Network(), address: hc.Conn.RemoteAddr().String(), upPID: sc.pid, upSecret: sc.secret}
	return sc
}

// flushOwner flushes the holding client's pending output before the
// connection's reader blocks.
func (sc *serverConn) flushOwner() error {
	if s := sc.owner.Load(); s != nil {
		return s.flushClient()
	}
	return nil
}

func (sc *serverConn) cancelTarget() cancelTarget { return sc.target }

// exec runs a simple query on a connection nobody is relaying and returns
// the first row of its last result. ParameterStatus messages update params.
func (sc *serverConn) exec(sql string, timeout time.Duration) ([]string, error) {
	_ = sc.conn.SetDeadline(time.Now().Add(timeout))
	defer sc.conn.SetDeadline(time.Time{})
	sc.fe.Send(&pgproto3.Query{String: sql})
	sc.unnamed = "" // a simple Query drops the unnamed statement
	if err := sc.fe.Flush(); err != nil {
		return nil, err
	}
	var row []string
	var pgErr error
	for {
		msg, err := sc.fe.Receive()
		if err != nil {
			return nil, err
		}
		switch m := msg.(type) {
		case *pgproto3.ParameterStatus:
			sc.params[m.Name] = m.Value
		case *pgproto3.RowDescription:
			row = nil
		case *pgproto3.DataRow:
			if row == nil {
				row = make([]string, len(m.Values))
				for i, v := range m.Values {
					row[i] = string(v)
				}
			}
		case *pgproto3.ErrorResponse:
			pgErr = pgconn.ErrorResponseToPgError(m)
		case *pgproto3.ReadyForQuery:
			if m.TxStatus != 'I' && pgErr == nil {
				pgErr = fmt.Errorf("connection left in transaction state %q", m.TxStatus)
			}
			return row, pgErr
		}
	}
}

// readSettings reads the tracked settings' current values.
func (sc *serverConn) readSettings(timeout time.Duration) (map[string]string, error) {
	row, err := sc.exec(readbackSQL, timeout)
	if err != nil {
		return nil, err
	}
	if len(row) != len(trackedSettings) {
		return nil, errors.New("reading the session settings returned no row")
	}
	out := make(map[string]string, len(row))
	for i, name := range trackedSettings {
		out[name] = row[i]
	}
	return internSettings(out), nil
}

// Settings maps are never changed in place, only replaced, so sessions
// with the same values (nearly all of them) share one map.
var settingsIntern struct {
	sync.Mutex
	m map[string]map[string]string
}

// internSettings returns the shared map equal to vals (vals itself the
// first time, up to 4096 distinct ones).
func internSettings(vals map[string]string) map[string]string {
	var b strings.Builder
	for _, name := range trackedSettings {
		b.WriteString(vals[name])
		b.WriteByte(0)
	}
	key := b.String()
	settingsIntern.Lock()
	defer settingsIntern.Unlock()
	if m, ok := settingsIntern.m[key]; ok && len(m) == len(vals) {
		return m
	}
	if settingsIntern.m == nil {
		settingsIntern.m = map[string]map[string]string{}
	}
	if len(settingsIntern.m) < 4096 {
		settingsIntern.m[key] = vals
	}
	return vals
}

// alive reports whether an idle connection is still open and silent: a
// server that went away has closed it or sent a FATAL error.
func (sc *serverConn) alive() bool {
	sys, ok := sc.conn.(syscall.Conn)
	if !ok {
		return true
	}
	rc, err := sys.SyscallConn()
	if err != nil {
		return false
	}
	alive := true
	var buf [1]byte
	err = rc.Read(func(fd uintptr) bool {
		n, _, err := syscall.Recvfrom(int(fd), buf[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		alive = n < 0 && (err == syscall.EAGAIN || err == syscall.EWOULDBLOCK)
		return true
	})
	return err == nil && alive
}

// PoolConfig sizes transaction pooling.
type PoolConfig struct {
	// Size caps the upstream connections (default 20).
	Size int
	// WaitTimeout bounds how long a client waits for a connection before
	// its statement fails (default 10s).
	WaitTimeout time.Duration
	// IdleTimeout closes connections idle this long (0: never).
	IdleTimeout time.Duration
	// Lifetime closes connections this old when they are next idle (0:
	// never).
	Lifetime time.Duration
	// TenantShare caps the connections the clients of one tenant hold at
	// once, so one tenant cannot take the whole pool (default: three
	// quarters of Size, at least 1).
	TenantShare int
}

// aliveCheckAfter is how long a connection must have been idle before it
// is checked for a server that went away.
const aliveCheckAfter = time.Second

// errPoolTimeout is returned when no connection became free in time.
var errPoolTimeout = errors.New("pool wait timed out")

// pool holds the upstream connections of transaction mode.
type pool struct {
	cfg     PoolConfig
	dial    func(ctx context.Context) (*serverConn, error)
	metrics *Metrics

	mu      sync.Mutex
	idle    []*serverConn // most recently used last
	open    int           // idle, lent and being dialled
	waiters []poolWaiter
	// held counts the connections lent (or being dialled) per tenant key.
	held   map[string]int
	closed bool
	stop   chan struct{}
}

func newPool(cfg PoolConfig, m *Metrics, dial func(ctx context.Context) (*serverConn, error)) *pool {
	if cfg.Size <= 0 {
		cfg.Size = 20
	}
	if cfg.WaitTimeout <= 0 {
		cfg.WaitTimeout = 10 * time.Second
	}
	if cfg.TenantShare <= 0 {
		cfg.TenantShare = max(1, cfg.Size*3/4)
	}
	p := &pool{cfg: cfg, dial: dial, metrics: m, stop: make(chan struct{}), held: map[string]int{}}
	go p.reap()
	return p
}

// poolWaiter is a client waiting for a connection, for its tenant key.
type poolWaiter struct {
	ch  chan *serverConn
	key string
}

// acquire lends a connection for a tenant key, dialling one when the pool
// is not full and waiting at most WaitTimeout otherwise. A key that holds
// its share of the pool waits for one of its own connections, whatever is
// idle: the other tenants keep the rest.
func (p *pool) acquire(ctx context.Context, key string) (*serverConn, error) {
	start := time.Now()
	p.mu.Lock()
	under := p.held[key] < p.cfg.TenantShare
	for under && len(p.idle) > 0 {
		sc := p.idle[len(p.idle)-1]
		p.idle = p.idle[:len(p.idle)-1]
		// A connection idle for a while is checked before it is lent
		// (one system call); one given back a moment ago is not.
		now := time.Now()
		if p.expired(sc, now) || now.Sub(sc.idleSince) > aliveCheckAfter && !sc.alive() {
			p.open--
			p.mu.Unlock()
			p.discard(sc)
			p.mu.Lock()
			continue
		}
		p.lend(sc, key)
		p.mu.Unlock()
		p.metrics.poolWait(time.Since(start), false)
		return sc, nil
	}
	if p.closed {
		p.mu.Unlock()
		return nil, errors.New("the proxy is shutting down")
	}
	if under && p.open < p.cfg.Size {
		p.open++
		p.held[key]++
		p.mu.Unlock()
		return p.dialCounted(ctx, start, key)
	}
	ch := make(chan *serverConn, 1)
	p.waiters = append(p.waiters, poolWaiter{ch: ch, key: key})
	p.mu.Unlock()
	timer := time.NewTimer(p.cfg.WaitTimeout)
	defer timer.Stop()
	var err error
	select {
	case sc := <-ch:
		return p.handed(ctx, sc, start, key)
	case <-timer.C:
		err = errPoolTimeout
	case <-ctx.Done():
		err = ctx.Err()
	}
	p.mu.Lock()
	for i, w := range p.waiters {
		if w.ch == ch {
			p.waiters = append(p.waiters[:i], p.waiters[i+1:]...)
			p.mu.Unlock()
			p.metrics.poolWait(time.Since(start), errors.Is(err, errPoolTimeout))
			return nil, err
		}
	}
	p.mu.Unlock()
	// A connection was handed over as the wait ended: take it.
	return p.handed(ctx, <-ch, start, key)
}

// lend counts sc as held for key (p.mu held).
func (p *pool) lend(sc *serverConn, key string) {
	sc.tenantKey = key
	p.held[key]++
}

// unlend counts sc's key out (p.mu held).
func (p *pool) unlend(sc *serverConn) {
	if p.held[sc.tenantKey] <= 1 {
		delete(p.held, sc.tenantKey)
	} else {
		p.held[sc.tenantKey]--
	}
	sc.tenantKey = ""
}

// nextWaiter removes and returns the first waiter whose key is under its
// share, counted as holding what it is about to get (p.mu held).
func (p *pool) nextWaiter() (poolWaiter, bool) {
	for i, w := range p.waiters {
		if p.held[w.key] < p.cfg.TenantShare {
			p.waiters = append(p.waiters[:i], p.waiters[i+1:]...)
			p.held[w.key]++
			return w, true
		}
	}
	return poolWaiter{}, false
}

// handed takes what a releasing client passed on: a connection, or (nil) a
// free slot to dial into.
// The key is already counted as holding it (nextWaiter).
func (p *pool) handed(ctx context.Context, sc *serverConn, start time.Time, key string) (*serverConn, error) {
	if sc == nil {
		return p.dialCounted(ctx, start, key)
	}
	sc.tenantKey = key
	p.metrics.poolWait(time.Since(start), false)
	return sc, nil
}

// dialCounted dials into a slot already counted for key.
func (p *pool) dialCounted(ctx context.Context, start time.Time, key string) (*serverConn, error) {
	sc, err := p.dial(ctx)
	if err != nil {
		p.mu.Lock()
		p.open--
		p.unlend(&serverConn{tenantKey: key})
		p.passSlot()
		p.mu.Unlock()
		return nil, err
	}
	sc.tenantKey = key
	p.metrics.serverConnected(1)
	p.metrics.poolWait(time.Since(start), false)
	return sc, nil
}

// passSlot gives a freed slot to the first waiter under its share, which
// dials (p.mu held).
func (p *pool) passSlot() {
	if p.closed {
		return
	}
	if w, ok := p.nextWaiter(); ok {
		p.open++
		w.ch <- nil
	}
}

// purge closes every idle connection: one lent connection failed, and when
// the server restarted the idle ones are dead too. New ones are dialled
// as clients need them.
func (p *pool) purge() {
	p.mu.Lock()
	idle := p.idle
	p.idle = nil
	p.open -= len(idle)
	for range idle {
		p.passSlot()
	}
	p.mu.Unlock()
	for _, sc := range idle {
		p.discard(sc)
	}
}

// release takes a connection back. One that is not clean (reusable false),
// too old, or returned after Close is closed instead.
func (p *pool) release(sc *serverConn, reusable bool) {
	sc.owner.Store(nil)
	p.mu.Lock()
	p.unlend(sc)
	if !reusable || p.closed || p.expired(sc, time.Now()) {
		p.open--
		p.passSlot()
		p.mu.Unlock()
		p.discard(sc)
		return
	}
	if w, ok := p.nextWaiter(); ok {
		p.mu.Unlock()
		w.ch <- sc
		return
	}
	sc.idleSince = time.Now()
	p.idle = append(p.idle, sc)
	p.mu.Unlock()
}

func (p *pool) expired(sc *serverConn, now time.Time) bool {
	return p.cfg.Lifetime > 0 && now.Sub(sc.created) > p.cfg.Lifetime
}

// discard closes a connection, ending its session with Terminate.
func (p *pool) discard(sc *serverConn) {
	_ = sc.conn.SetWriteDeadline(time.Now().Add(time.Second))
	sc.fe.Send(&pgproto3.Terminate{})
	_ = sc.fe.Flush()
	sc.conn.Close()
	p.metrics.serverConnected(-1)
}

// reap closes connections idle longer than IdleTimeout or older than
// Lifetime.
func (p *pool) reap() {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-p.stop:
			return
		case <-tick.C:
		}
		now := time.Now()
		var old []*serverConn
		p.mu.Lock()
		kept := p.idle[:0]
		for _, sc := range p.idle {
			if p.expired(sc, now) || p.cfg.IdleTimeout > 0 && now.Sub(sc.idleSince) > p.cfg.IdleTimeout {
				old = append(old, sc)
				p.open--
				continue
			}
			kept = append(kept, sc)
		}
		p.idle = kept
		p.mu.Unlock()
		for _, sc := range old {
			p.discard(sc)
		}
	}
}

// close closes the idle connections; lent ones are closed as they return.
func (p *pool) close() {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.closed = true
	idle := p.idle
	p.idle = nil
	p.open -= len(idle)
	close(p.stop)
	p.mu.Unlock()
	for _, sc := range idle {
		p.discard(sc)
	}
}

// stats returns the open and idle connection counts.
func (p *pool) stats() (open, idle, waiting int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.open, len(p.idle), len(p.waiters)
}
