package e2e_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	_ "github.com/jackc/pgx/v5/stdlib" // the database/sql driver "pgx"
	_ "github.com/lib/pq"              // the database/sql driver "postgres"
)

// scenarioChecks counts the steps a Go scenario passed, as the scripts'
// "ok" lines do.
type scenarioChecks struct {
	t     *testing.T
	name  string
	steps int
}

func (s *scenarioChecks) check(ok bool, step string, detail ...any) {
	s.t.Helper()
	if !ok {
		s.t.Fatalf("%s: FAIL %s: %v", s.name, step, detail)
	}
	s.steps++
}

// goScenarioEnv returns the scenario's variables for tenant as values.
func (e *env) goScenarioEnv(t *testing.T, name, tenant string) (tag, url string, tenantID int, otherID int64) {
	tag, vars := e.scenarioEnv(t, name, tenant)
	tenantID, _ = strconv.Atoi(tenant)
	otherID, _ = strconv.ParseInt(envValue(vars, "TP_OTHER_ID"), 10, 64)
	return tag, envValue(vars, "DATABASE_URL"), tenantID, otherID
}

// pgxScenario runs the scenario with pgx v5 in one query exec mode, plus a
// Batch and a CopyFrom.
func (e *env) pgxScenario(t *testing.T, name, tenant string, mode pgx.QueryExecMode) {
	tag, url, tenantID, other := e.goScenarioEnv(t, name, tenant)
	ctx := context.Background()
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		t.Fatal(err)
	}
	cfg.DefaultQueryExecMode = mode
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer conn.Close(ctx)
	s := &scenarioChecks{t: t, name: name}
	var cols []string
	rows, _ := conn.Query(ctx, "SELECT column_name::text FROM information_schema.columns WHERE table_schema = 'public' AND table_name = $1 ORDER BY ordinal_position", "accounts")
	cols, err = pgx.CollectRows(rows, pgx.RowTo[string])
	s.check(err == nil && strings.Join(cols, ",") == "id,tenant_id,name,created_at", "introspect", cols, err)

	var aid, nid int64
	var gotTenant int
	err = conn.QueryRow(ctx, "INSERT INTO accounts (name) VALUES ($1) RETURNING id, tenant_id", tag).Scan(&aid, &gotTenant)
	s.check(err == nil && gotTenant == tenantID, "insert fills the tenant", gotTenant, err)
	err = conn.QueryRow(ctx, "INSERT INTO notes (account_id, body) VALUES ($1, $2) RETURNING id", aid, "hello").Scan(&nid)
	s.check(err == nil, "insert note", err)

	var gotName, gotBody string
	err = conn.QueryRow(ctx, "SELECT a.name, n.body FROM accounts a JOIN notes n ON n.account_id = a.id WHERE a.id = $1", aid).Scan(&gotName, &gotBody)
	s.check(err == nil && gotName == tag && gotBody == "hello", "join reads back", gotName, gotBody, err)

	ct, err := conn.Exec(ctx, "UPDATE notes SET stars = stars + 1 WHERE id = $1", nid)
	s.check(err == nil && ct.RowsAffected() == 1, "update", ct, err)

	tx, err := conn.Begin(ctx)
	s.check(err == nil, "begin", err)
	_, err = tx.Exec(ctx, "INSERT INTO accounts (name) VALUES ($1)", tag+"-rollback")
	s.check(err == nil, "insert in transaction", err)
	_, err = tx.Exec(ctx, "SELECT * FROM secrets")
	s.check(sqlState(err) == "42501", "refusal inside a transaction", err)
	s.check(conn.PgConn().TxStatus() == 'E', "transaction status after refusal", string(conn.PgConn().TxStatus()))
	s.check(tx.Rollback(ctx) == nil, "rollback")
	var n int
	err = conn.QueryRow(ctx, "SELECT count(*) FROM accounts WHERE name = $1", tag+"-rollback").Scan(&n)
	s.check(err == nil && n == 0, "rolled back", n, err)

	for i := 1; i <= 3; i++ {
		err = conn.QueryRow(ctx, "SELECT name FROM accounts WHERE id = $1", aid).Scan(&gotName)
		s.check(err == nil && gotName == tag, fmt.Sprintf("parameterised query, run %d", i), gotName, err)
	}

	b := &pgx.Batch{}
	b.Queue("SELECT count(*) FROM notes WHERE account_id = $1", aid)
	b.Queue("UPDATE accounts SET name = $1 WHERE id = $2", "stolen", other)
	b.Queue("SELECT name FROM accounts WHERE id = $1", aid)
	br := conn.SendBatch(ctx, b)
	var count int
	err = br.QueryRow().Scan(&count)
	s.check(err == nil && count == 1, "batch: count", count, err)
	ct, err = br.Exec()
	s.check(err == nil && ct.RowsAffected() == 0, "batch: other tenant's row is not updated", ct, err)
	err = br.QueryRow().Scan(&gotName)
	s.check(err == nil && gotName == tag, "batch: read", gotName, err)
	s.check(br.Close() == nil, "batch: close")

	copied, err := conn.CopyFrom(ctx, pgx.Identifier{"notes"}, []string{"account_id", "body"},
		pgx.CopyFromRows([][]any{{aid, "copied 1"}, {aid, "copied 2"}}))
	s.check(err == nil && copied == 2, "copy from", copied, err)
	var tenants []int
	rows, _ = conn.Query(ctx, "SELECT DISTINCT tenant_id FROM notes WHERE body LIKE 'copied%'")
	tenants, err = pgx.CollectRows(rows, pgx.RowTo[int])
	s.check(err == nil && len(tenants) == 1 && tenants[0] == tenantID, "copied rows are the tenant's", tenants, err)
	_, err = conn.Exec(ctx, "DELETE FROM notes WHERE body LIKE 'copied%'")
	s.check(err == nil, "delete copied rows", err)

	rows, _ = conn.Query(ctx, "SELECT id FROM accounts WHERE id = $1", other)
	ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	s.check(err == nil && len(ids) == 0, "other tenant's row is not seen", ids, err)
	ct, err = conn.Exec(ctx, "DELETE FROM notes WHERE account_id = $1", other)
	s.check(err == nil && ct.RowsAffected() == 0, "other tenant's notes are not deleted", ct, err)
	rows, _ = conn.Query(ctx, "SELECT DISTINCT tenant_id FROM accounts")
	tenants, err = pgx.CollectRows(rows, pgx.RowTo[int])
	s.check(err == nil && len(tenants) == 1 && tenants[0] == tenantID, "only its own tenant", tenants, err)

	ct, err = conn.Exec(ctx, "DELETE FROM notes WHERE id = $1", nid)
	s.check(err == nil && ct.RowsAffected() == 1, "delete", ct, err)

	_, err = conn.Exec(ctx, "SELECT * FROM secrets")
	var pgErr *pgconn.PgError
	s.check(errors.As(err, &pgErr) && pgErr.Code == "42501" && strings.HasPrefix(pgErr.Message, "tenantproxy:"), "uncatalogued table refused", err)
	err = conn.QueryRow(ctx, "SELECT 1").Scan(&n)
	s.check(err == nil && n == 1, "session usable after refusal", err)
	e.checkScenarioEffects(t, name, tenant, tag)
}

// stdlibScenario runs the scenario through database/sql with a driver:
// pgx's ("pgx") or lib/pq ("postgres").
func (e *env) stdlibScenario(t *testing.T, name, tenant, driver string) {
	tag, url, tenantID, other := e.goScenarioEnv(t, name, tenant)
	ctx := context.Background()
	db, err := sql.Open(driver, url)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	db.SetMaxOpenConns(2)
	s := &scenarioChecks{t: t, name: name}
	s.check(db.PingContext(ctx) == nil, "connect")

	var cols int
	err = db.QueryRowContext(ctx, "SELECT count(*) FROM information_schema.columns WHERE table_schema = 'public' AND table_name = $1", "accounts").Scan(&cols)
	s.check(err == nil && cols == 4, "introspect", cols, err)

	var aid, nid int64
	var gotTenant int
	err = db.QueryRowContext(ctx, "INSERT INTO accounts (name) VALUES ($1) RETURNING id, tenant_id", tag).Scan(&aid, &gotTenant)
	s.check(err == nil && gotTenant == tenantID, "insert fills the tenant", gotTenant, err)
	err = db.QueryRowContext(ctx, "INSERT INTO notes (account_id, body) VALUES ($1, $2) RETURNING id", aid, "hello").Scan(&nid)
	s.check(err == nil, "insert note", err)

	var gotName, gotBody string
	err = db.QueryRowContext(ctx, "SELECT a.name, n.body FROM accounts a JOIN notes n ON n.account_id = a.id WHERE a.id = $1", aid).Scan(&gotName, &gotBody)
	s.check(err == nil && gotName == tag && gotBody == "hello", "join reads back", gotName, gotBody, err)

	res, err := db.ExecContext(ctx, "UPDATE notes SET stars = stars + 1 WHERE id = $1", nid)
	s.check(err == nil && rowsAffected(res) == 1, "update", err)

	tx, err := db.BeginTx(ctx, nil)
	s.check(err == nil, "begin", err)
	_, err = tx.ExecContext(ctx, "INSERT INTO accounts (name) VALUES ($1)", tag+"-rollback")
	s.check(err == nil, "insert in transaction", err)
	s.check(tx.Rollback() == nil, "rollback")
	var n int
	err = db.QueryRowContext(ctx, "SELECT count(*) FROM accounts WHERE name = $1", tag+"-rollback").Scan(&n)
	s.check(err == nil && n == 0, "rolled back", n, err)

	stmt, err := db.PrepareContext(ctx, "SELECT name FROM accounts WHERE id = $1")
	s.check(err == nil, "prepare", err)
	for i := 1; i <= 3; i++ {
		err = stmt.QueryRowContext(ctx, aid).Scan(&gotName)
		s.check(err == nil && gotName == tag, fmt.Sprintf("prepared query, run %d", i), gotName, err)
	}
	err = stmt.QueryRowContext(ctx, other).Scan(&gotName)
	s.check(errors.Is(err, sql.ErrNoRows), "other tenant's row is not seen", err)
	stmt.Close()

	res, err = db.ExecContext(ctx, "UPDATE accounts SET name = 'stolen' WHERE id = $1", other)
	s.check(err == nil && rowsAffected(res) == 0, "other tenant's row is not updated", err)
	res, err = db.ExecContext(ctx, "DELETE FROM notes WHERE account_id = $1", other)
	s.check(err == nil && rowsAffected(res) == 0, "other tenant's notes are not deleted", err)
	var distinct []int
	rows, err := db.QueryContext(ctx, "SELECT DISTINCT tenant_id FROM accounts")
	s.check(err == nil, "read tenants", err)
	for rows.Next() {
		var v int
		_ = rows.Scan(&v)
		distinct = append(distinct, v)
	}
	rows.Close()
	s.check(len(distinct) == 1 && distinct[0] == tenantID, "only its own tenant", distinct)

	res, err = db.ExecContext(ctx, "DELETE FROM notes WHERE id = $1", nid)
	s.check(err == nil && rowsAffected(res) == 1, "delete", err)

	_, err = db.ExecContext(ctx, "SELECT * FROM secrets")
	s.check(sqlState(err) == "42501", "uncatalogued table refused", err)
	err = db.QueryRowContext(ctx, "SELECT 1").Scan(&n)
	s.check(err == nil && n == 1, "session usable after refusal", err)
	e.checkScenarioEffects(t, name, tenant, tag)
}

func rowsAffected(r sql.Result) int64 {
	n, err := r.RowsAffected()
	if err != nil {
		return -1
	}
	return n
}
