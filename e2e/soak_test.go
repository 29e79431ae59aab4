package e2e_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/tenantproxy/tenantproxy/catalog"
)

const soakSchema = `
CREATE TABLE soak (id bigserial PRIMARY KEY, tenant_id int NOT NULL, client int NOT NULL, seq int NOT NULL, note text NOT NULL);
CREATE INDEX ON soak (tenant_id, client, seq);
`

var soakTables = []catalog.Table{{Schema: "public", Name: "soak", Kind: catalog.TenantBound, TenantColumn: "tenant_id"}}

// soakSetting reads an integer or duration setting of the soak.
func soakSetting(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// TestSoak: many clients spread over 50 tenants read, write and run
// transactions (committed and rolled back) through one proxy in
// transaction mode for a while. Every row a client sees is its tenant's,
// every write it committed is there afterwards with its tenant, nothing it
// rolled back is, and nothing fails. TENANTPROXY_SOAK_SECONDS (10) and
// TENANTPROXY_SOAK_CLIENTS (1000) size it; make soak runs 60 seconds.
func TestSoak(t *testing.T) {
	seconds := soakSetting("TENANTPROXY_SOAK_SECONDS", 10)
	clients := soakSetting("TENANTPROXY_SOAK_CLIENTS", 1000)
	const tenants = 50
	metricsAddr := freeAddr(t)
	e := newEnv(t, envOptions{schema: soakSchema, tables: soakTables, extraArgs: []string{"--metrics-listen", metricsAddr, "--log-level", "warn"}})
	ctx := context.Background()
	baseline := goroutines(t, metricsAddr)

	conns := make([]*pgx.Conn, clients)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 50)
	for i := range conns {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			c, err := pgx.Connect(ctx, e.connString(e.token(t, strconv.Itoa(i%tenants+1))))
			if err != nil {
				t.Errorf("client %d: %v", i, err)
				return
			}
			conns[i] = c
		}()
	}
	wg.Wait()
	if t.Failed() {
		return
	}

	type outcome struct {
		committed, rolledBack []int // seqs
		ops, seen             int
	}
	results := make([]outcome, clients)
	var failures atomic.Int64
	deadline := time.Now().Add(time.Duration(seconds) * time.Second)
	for i, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tenant := i%tenants + 1
			rng := rand.New(rand.NewPCG(uint64(i), 7))
			res := &results[i]
			fail := func(format string, args ...any) {
				if failures.Add(1) <= 20 {
					t.Errorf("client %d (tenant %d): %s", i, tenant, fmt.Sprintf(format, args...))
				}
			}
			seq := 0
			for time.Now().Before(deadline) {
				res.ops++
				switch rng.IntN(5) {
				case 0: // read
					rows, err := c.Query(ctx, "SELECT tenant_id FROM soak ORDER BY id DESC LIMIT 20")
					if err != nil {
						fail("read: %v", err)
						continue
					}
					for rows.Next() {
						var tid int
						if err := rows.Scan(&tid); err != nil || tid != tenant {
							fail("saw a row of tenant %d (%v)", tid, err)
						}
						res.seen++
					}
					if rows.Err() != nil {
						fail("read: %v", rows.Err())
					}
				case 1: // read on the simple protocol, constants in the text
					var n int
					q := fmt.Sprintf("SELECT count(*) FROM soak WHERE tenant_id <> %d AND client >= %d", tenant, rng.IntN(10))
					if err := c.QueryRow(ctx, q, pgx.QueryExecModeSimpleProtocol).Scan(&n); err != nil || n != 0 {
						fail("%s: %d rows of other tenants (%v)", q, n, err)
					}
				case 2: // autocommit insert
					seq++
					var tid int
					if err := c.QueryRow(ctx, "INSERT INTO soak (client, seq, note) VALUES ($1, $2, 'insert') RETURNING tenant_id", i, seq).Scan(&tid); err != nil || tid != tenant {
						fail("insert: tenant %d (%v)", tid, err)
						continue
					}
					res.committed = append(res.committed, seq)
				case 3: // a transaction that commits
					seq++
					err := pgx.BeginFunc(ctx, c, func(tx pgx.Tx) error {
						if _, err := tx.Exec(ctx, "INSERT INTO soak (client, seq, note) VALUES ($1, $2, 'tx')", i, seq); err != nil {
							return err
						}
						if _, err := tx.Exec(ctx, "UPDATE soak SET note = 'tx updated' WHERE client = $1 AND seq = $2", i, seq); err != nil {
							return err
						}
						var others int
						if err := tx.QueryRow(ctx, "SELECT count(*) FROM soak WHERE tenant_id <> $1", tenant).Scan(&others); err != nil {
							return err
						}
						if others != 0 {
							return fmt.Errorf("%d rows of other tenants inside a transaction", others)
						}
						return nil
					})
					if err != nil {
						fail("transaction: %v", err)
						continue
					}
					res.committed = append(res.committed, seq)
				case 4: // a transaction that rolls back
					seq++
					tx, err := c.Begin(ctx)
					if err == nil {
						_, err = tx.Exec(ctx, "INSERT INTO soak (client, seq, note) VALUES ($1, $2, 'rolled back')", i, seq)
						if rerr := tx.Rollback(ctx); err == nil {
							err = rerr
						}
					}
					if err != nil {
						fail("rollback: %v", err)
						continue
					}
					res.rolledBack = append(res.rolledBack, seq)
				}
			}
		}()
	}
	wg.Wait()
	for _, c := range conns {
		c.Close(ctx)
	}

	// Every committed write is there, with its tenant; nothing rolled back is.
	direct := e.direct(t)
	rows, err := direct.Query(ctx, "SELECT tenant_id, client, seq, note FROM soak")
	if err != nil {
		t.Fatal(err)
	}
	found := map[[2]int]bool{}
	for rows.Next() {
		var tid, client, seq int
		var note string
		if err := rows.Scan(&tid, &client, &seq, &note); err != nil {
			t.Fatal(err)
		}
		if tid != client%tenants+1 {
			t.Errorf("row of client %d seq %d has tenant %d, want %d", client, seq, tid, client%tenants+1)
		}
		if note == "rolled back" {
			t.Errorf("a rolled-back insert is there: client %d seq %d", client, seq)
		}
		found[[2]int{client, seq}] = true
	}
	ops, committed, seen := 0, 0, 0
	for i, r := range results {
		ops += r.ops
		seen += r.seen
		for _, s := range r.committed {
			committed++
			if !found[[2]int{i, s}] {
				t.Errorf("client %d's committed write %d is missing", i, s)
			}
		}
	}
	if len(found) != committed {
		t.Errorf("%d rows in the table, %d committed writes", len(found), committed)
	}
	if n := failures.Load(); n > 0 {
		t.Errorf("%d operations failed", n)
	}
	eventually(t, 15*time.Second, "goroutines back to the baseline", func() error {
		if n := goroutines(t, metricsAddr); n > baseline+5 {
			return fmt.Errorf("%d goroutines, %d before", n, baseline)
		}
		return nil
	})
	fmt.Printf("soak: %d clients x %d tenants for %ds: %d operations (%.0f/s), %d committed writes checked, %d rows read, all the readers' own\n",
		clients, tenants, seconds, ops, float64(ops)/float64(seconds), committed, seen)
}
