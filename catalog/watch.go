package catalog

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Watcher keeps the current catalog of one database: it LISTENs on
// NotifyChannel, reloads on every notification and on Reload, and swaps
// the new snapshot in atomically. A catalog that fails to load or validate
// never replaces the last good one. A dropped connection is re-established
// (with backoff) and the catalog re-read, so no change is missed.
type Watcher struct {
	dsn    string
	log    *slog.Logger
	cur    atomic.Pointer[Snapshot]
	reload chan struct{}
	// OnSwap, when set before Run, is called after each swap with the
	// changes recorded between the two versions.
	OnSwap func(old, new *Snapshot, changes []Change)
}

// WatcherApplicationName is the application_name of the watcher's
// connection, as pg_stat_activity shows it.
const WatcherApplicationName = "tenantproxy catalog"

// NewWatcher loads the catalog once; an error here means the proxy cannot
// start.
//
// An upstream that cannot be reached (refused, timed out, starting up) is
// retried with a growing pause, logged each time, until ctx ends; an
// upstream that answers with an error (authentication, no such database)
// fails at once.
func NewWatcher(ctx context.Context, dsn string, log *slog.Logger) (*Watcher, error) {
	w := &Watcher{dsn: dsn, log: log, reload: make(chan struct{}, 1)}
	var conn *pgx.Conn
	for pause := time.Second; ; pause = min(2*pause, 30*time.Second) {
		var err error
		if conn, err = w.connect(ctx); err == nil {
			break
		}
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code != "57P03" { // 57P03: starting up
			return nil, err
		}
		log.Warn("cannot reach the upstream database to load the catalog; retrying", "in", pause, "err", err)
		select {
		case <-ctx.Done():
			return nil, err
		case <-time.After(pause):
		}
	}
	defer conn.Close(context.Background())
	snap, err := Load(ctx, conn)
	if err != nil {
		return nil, err
	}
	w.cur.Store(snap)
	return w, nil
}

// Snapshot returns the current snapshot.
func (w *Watcher) Snapshot() *Snapshot { return w.cur.Load() }

// Reload asks Run to re-read the catalog now (SIGHUP).
func (w *Watcher) Reload() {
	select {
	case w.reload <- struct{}{}:
	default: // one is already pending
	}
}

func (w *Watcher) connect(ctx context.Context) (*pgx.Conn, error) {
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	cfg, err := pgx.ParseConfig(w.dsn)
	if err != nil {
		return nil, fmt.Errorf("the upstream database's address: %w", err)
	}
	if cfg.RuntimeParams["application_name"] == "" {
		cfg.RuntimeParams["application_name"] = WatcherApplicationName
	}
	conn, err := pgx.ConnectConfig(cctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connect to the upstream database to read the catalog: %w", err)
	}
	return conn, nil
}

// Run watches until ctx ends.
func (w *Watcher) Run(ctx context.Context) {
	backoff := time.Second
	for ctx.Err() == nil {
		started := time.Now()
		err := w.session(ctx)
		if ctx.Err() != nil {
			return
		}
		if errors.Is(err, errReload) {
			continue
		}
		if time.Since(started) > time.Minute {
			backoff = time.Second // it was healthy: retry soon
		}
		w.log.Warn("catalog watch interrupted; reconnecting", "err", err, "retry_in", backoff)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 30*time.Second)
	}
}

// session is one connection's life: LISTEN, catch up, then reload on each
// notification or Reload until the connection fails.
func (w *Watcher) session(ctx context.Context) error {
	conn, err := w.connect(ctx)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "LISTEN "+NotifyChannel); err != nil {
		return err
	}
	w.load(ctx, conn, "reconnected") // changes made while disconnected
	for {
		wctx, cancel := context.WithCancel(ctx)
		requested := make(chan struct{})
		go func() {
			select {
			case <-w.reload:
				close(requested)
				cancel()
			case <-wctx.Done():
			}
		}()
		_, err := conn.WaitForNotification(wctx)
		cancel()
		select {
		case <-requested:
			// An interrupted wait may leave the connection unusable;
			// reload on a fresh one.
			return w.reloadFresh(ctx)
		default:
		}
		if err != nil {
			return err
		}
		w.load(ctx, conn, "notified")
	}
}

// reloadFresh reloads over a new connection and ends the session, so Run
// reconnects and LISTENs again without delay.
func (w *Watcher) reloadFresh(ctx context.Context) error {
	conn, err := w.connect(ctx)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	w.load(ctx, conn, "requested")
	return errReload
}

var errReload = errors.New("reload requested")

// load reads the catalog and swaps it in when it is valid and newer.
func (w *Watcher) load(ctx context.Context, conn *pgx.Conn, why string) {
	lctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	snap, err := Load(lctx, conn)
	old := w.cur.Load()
	if err != nil {
		w.log.Error("catalog reload failed; still serving the last good catalog", "why", why, "err", err, "serving_version", old.Version())
		return
	}
	if snap.Version() == old.Version() && why != "requested" {
		return
	}
	w.cur.Store(snap)
	w.log.Info("catalog reloaded", "why", why, "version", snap.Version(), "previous_version", old.Version(), "tables", len(snap.Tables()))
	if w.OnSwap != nil {
		changes, err := ChangesSince(lctx, conn, old.Version())
		if err != nil {
			w.log.Warn("reading the catalog change log", "err", err)
		}
		w.OnSwap(old, snap, changes)
	}
}

// Change is one entry of the catalog's change log.
type Change struct {
	At      time.Time
	By      string
	Action  string
	Version int64
	Detail  string // the change's record, as JSON
}

// ChangesSince returns the logged changes that produced versions after v.
func ChangesSince(ctx context.Context, conn *pgx.Conn, v int64) ([]Change, error) {
	rows, err := conn.Query(ctx, `SELECT at, by, action, coalesce((detail->>'version')::bigint, 0), detail::text
		FROM tenantproxy.changes WHERE coalesce((detail->>'version')::bigint, 0) > $1 ORDER BY id`, v)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Change, error) {
		var c Change
		return c, r.Scan(&c.At, &c.By, &c.Action, &c.Version, &c.Detail)
	})
}
