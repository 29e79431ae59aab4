package e2e_test

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
)

// A refused statement in the middle of a pipeline fails exactly where
// Postgres would fail it: what came before ran, what follows up to Sync is
// skipped, and the next pipeline works.
func TestRefusalInsideAPipeline(t *testing.T) {
	e := newEnv(t)
	conn := e.connect(t, "1").PgConn()
	ctx := context.Background()

	p := conn.StartPipeline(ctx)
	p.SendQueryParams("SELECT count(*) FROM orders", nil, nil, nil, nil)
	p.SendQueryParams("SELECT * FROM secrets", nil, nil, nil, nil)
	p.SendQueryParams("SELECT count(*) FROM customers", nil, nil, nil, nil)
	p.SendPipelineSync()
	p.SendQueryParams("SELECT count(*) FROM customers", nil, nil, nil, nil)
	p.SendPipelineSync()
	if err := p.Flush(); err != nil {
		t.Fatal(err)
	}

	if got := count(t, nextResult(t, p)); got != "3" {
		t.Fatalf("first statement counted %s", got)
	}
	// The refusal arrives where Postgres would report a failed Parse.
	_, err := p.GetResults()
	wantState(t, err, "42501")
	// Postgres skips the rest up to Sync: pgx reports the sync next.
	if _, ok := nextResult(t, p).(*pgconn.PipelineSync); !ok {
		t.Fatal("the statement after the refusal was not skipped")
	}
	if got := count(t, nextResult(t, p)); got != "2" {
		t.Fatalf("next pipeline counted %s", got)
	}
	if _, ok := nextResult(t, p).(*pgconn.PipelineSync); !ok {
		t.Fatal("missing sync")
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
}

// count reads a one-value result.
func count(t *testing.T, r any) string {
	t.Helper()
	rr, ok := r.(*pgconn.ResultReader)
	if !ok {
		t.Fatalf("want a result, got %T", r)
	}
	res := rr.Read()
	if res.Err != nil || len(res.Rows) != 1 {
		t.Fatalf("result: %v %v", res.Rows, res.Err)
	}
	return string(res.Rows[0][0])
}

func nextResult(t *testing.T, p *pgconn.Pipeline) any {
	t.Helper()
	r, err := p.GetResults()
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// A tenant parameter bound to another tenant is refused at Bind, and the
// statement, prepared once, keeps working for the session's own tenant.
func TestBindCheckOfThePreparedTenantParameter(t *testing.T) {
	e := newEnv(t)
	conn := e.connect(t, "1")
	ctx := context.Background()
	if _, err := conn.Prepare(ctx, "ins", "INSERT INTO orders (tenant_id, customer_id, total) VALUES ($1, $2, $3)"); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, "ins", 1, 1, 5); err != nil {
		t.Fatal(err)
	}
	_, err := conn.Exec(ctx, "ins", 2, 3, 5)
	wantState(t, err, "42501")
	_, err = conn.Exec(ctx, "ins", nil, 3, 5)
	wantState(t, err, "42501")
	if _, err := conn.Exec(ctx, "ins", "1", 2, 6); err != nil {
		t.Fatal(err)
	}
	wantRows(t, column(t, e.direct(t), "SELECT tenant_id || ':' || total FROM orders WHERE id > 100 ORDER BY id"), "1:5", "1:6")
}
