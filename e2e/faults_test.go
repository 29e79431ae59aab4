package e2e_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/tenantproxy/tenantproxy/catalog"
	"github.com/tenantproxy/tenantproxy/internal/pgtest"
)

// TestUpstreamRestartUnderLoad: Postgres restarts the hard way (every
// backend killed at once, as pg_ctl restart -m immediate) while clients
// are busy. Clients caught in flight get an error; clients connecting once
// Postgres is back are served at once; the proxy keeps no dead connection
// and no goroutine of the old ones.
func TestUpstreamRestartUnderLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("restarts a Postgres cluster")
	}
	pg, err := pgtest.StartCluster()
	if err != nil {
		t.Skipf("no cluster of its own to restart: %v", err)
	}
	t.Cleanup(pg.Stop)
	metricsAddr := freeAddr(t)
	e := newEnv(t, envOptions{upstream: pg.DSN, extraArgs: []string{"--metrics-listen", metricsAddr, "--pool-size", "8"}})
	ctx := context.Background()
	baseline := goroutines(t, metricsAddr)

	stop := make(chan struct{})
	var served, failed atomic.Int64
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tenant := fmt.Sprint(i%2 + 1)
			for {
				select {
				case <-stop:
					return
				default:
				}
				c, err := pgx.Connect(ctx, e.connString(e.token(t, tenant)))
				if err != nil {
					failed.Add(1)
					time.Sleep(50 * time.Millisecond)
					continue
				}
				for range 50 {
					var n int
					if err := c.QueryRow(ctx, "SELECT count(*) FROM orders WHERE total > $1", 0).Scan(&n); err != nil {
						failed.Add(1)
						break
					}
					served.Add(1)
				}
				c.Close(ctx)
			}
		}()
	}
	// The test cluster runs without fsync: make what is set up durable
	// before killing it.
	if _, err := e.direct(t).Exec(ctx, "CHECKPOINT"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second)
	before := served.Load()
	if err := pg.Restart(time.Second); err != nil {
		t.Fatal(err)
	}
	back := time.Now()
	// New clients are served as soon as Postgres is back.
	eventually(t, 10*time.Second, "a new client to be served after the restart", func() error {
		c, err := pgx.Connect(ctx, e.connString(e.token(t, "1")))
		if err != nil {
			return err
		}
		defer c.Close(ctx)
		var names string
		if err := c.QueryRow(ctx, "SELECT string_agg(name, ',' ORDER BY id) FROM customers").Scan(&names); err != nil {
			return err
		}
		if names != "alice,bob" {
			return fmt.Errorf("tenant 1 sees %q", names)
		}
		return nil
	})
	t.Logf("a new client was served %s after Postgres came back", time.Since(back).Round(time.Millisecond))
	time.Sleep(time.Second)
	close(stop)
	wg.Wait()
	if served.Load() <= before {
		t.Fatalf("nothing was served after the restart (%d before, %d in all)", before, served.Load())
	}
	if failed.Load() == 0 {
		t.Log("no client was caught in flight by the restart")
	}
	eventually(t, 15*time.Second, "goroutines back to the baseline", func() error {
		if n := goroutines(t, metricsAddr); n > baseline+5 {
			return fmt.Errorf("%d goroutines, %d before", n, baseline)
		}
		return nil
	})
	if !strings.Contains(e.logs.String(), "upstream connection lost") && failed.Load() > 0 {
		t.Log("clients failed without the proxy logging a lost upstream connection")
	}
	t.Logf("statements served: %d (%d before the restart); failed operations: %d", served.Load(), before, failed.Load())
}

// TestUpstreamUnreachableAtStart: a proxy started while Postgres is down
// retries with a growing pause, saying so in its log, and serves once
// Postgres is up; it does not exit.
func TestUpstreamUnreachableAtStart(t *testing.T) {
	if testing.Short() {
		t.Skip("restarts a Postgres cluster")
	}
	pg, err := pgtest.StartCluster()
	if err != nil {
		t.Skipf("no cluster of its own to restart: %v", err)
	}
	t.Cleanup(pg.Stop)
	e := newEnv(t, envOptions{upstream: pg.DSN})
	// The test cluster runs without fsync: make what is set up durable
	// before killing it.
	if _, err := e.direct(t).Exec(context.Background(), "CHECKPOINT"); err != nil {
		t.Fatal(err)
	}
	restarted := make(chan error, 1)
	go func() { restarted <- pg.Restart(3 * time.Second) }()
	time.Sleep(300 * time.Millisecond) // Postgres is down now
	e.start(t, "")                     // returns once the proxy listens
	if err := <-restarted; err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(e.logs.String(), "cannot reach the upstream database to load the catalog; retrying") {
		t.Fatalf("the proxy did not say it was retrying:\n%s", e.logs.String())
	}
	c := e.connect(t, "2")
	wantRows(t, column(t, c, "SELECT string_agg(name, ',' ORDER BY id) FROM customers"), "carol,dave")
}

// TestSIGHUPRotatesJWTKeys: a new key file takes effect on SIGHUP for new
// connections; tokens of the old key are refused from then on, and the
// sessions already open keep working.
func TestSIGHUPRotatesJWTKeys(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	old := e.connect(t, "1")
	oldSecret := e.secret
	newSecret := []byte("rotated-secret-0123456789-abcdefghijklmnop")
	if err := os.WriteFile(e.keyFile, newSecret, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := e.proxy.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	e.secret = newSecret
	eventually(t, 5*time.Second, "the new key to be accepted", func() error {
		c, err := e.dial(t, "1")
		if err != nil {
			return err
		}
		return c.Close(ctx)
	})
	e.secret = oldSecret
	if _, err := e.dial(t, "1"); pgCode(err) != "28P01" {
		t.Fatalf("a token of the old key after the rotation: %v, want 28P01", err)
	}
	wantRows(t, column(t, old, "SELECT count(*)::text FROM orders"), "3")
}

// TestCatalogConnectionDrops: when the catalog watcher's connection is
// killed, the proxy keeps serving with the last catalog, reconnects, and
// picks up changes made afterwards.
func TestCatalogConnectionDrops(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	direct := e.direct(t)
	if _, err := direct.Exec(ctx, `CREATE TABLE notes (id int PRIMARY KEY, tenant_id int NOT NULL, body text);
		INSERT INTO notes VALUES (1, 1, 'a'), (2, 2, 'b')`); err != nil {
		t.Fatal(err)
	}
	c := e.connect(t, "1")
	var killed int
	if err := direct.QueryRow(ctx, "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = $1",
		catalog.WatcherApplicationName).Scan(&killed); err != nil || killed != 1 {
		t.Fatalf("terminated %d watcher backends (%v)", killed, err)
	}
	// The last good catalog keeps serving.
	wantRows(t, column(t, c, "SELECT string_agg(name, ',' ORDER BY id) FROM customers"), "alice,bob")
	e.cli(t, "catalog", "add-table", "notes", "--tenant-column", "tenant_id")
	eventually(t, 15*time.Second, "the change made after the drop to be enforced", func() error {
		var n int
		if err := c.QueryRow(ctx, "SELECT count(*) FROM notes").Scan(&n); err != nil {
			return err
		}
		if n != 1 {
			return fmt.Errorf("tenant 1 sees %d notes", n)
		}
		return nil
	})
}
