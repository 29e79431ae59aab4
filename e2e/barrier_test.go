package e2e_test

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/tenantproxy/tenantproxy/internal/pgtest"
)

// barrierSchema: the session's rows (tenant 1) are harmless to the casts
// below; tenant 2's rows fail them.
const barrierSchema = `
CREATE TABLE plans (id int PRIMARY KEY, name text NOT NULL);
CREATE TABLE customers (id int PRIMARY KEY, tenant_id int NOT NULL, name text NOT NULL, plan_id int);
CREATE TABLE orders (id serial PRIMARY KEY, tenant_id int NOT NULL, customer_id int, total numeric NOT NULL, note text);
CREATE TABLE accounts (id int PRIMARY KEY, tenant_id int NOT NULL, body text, big bigint);
INSERT INTO accounts VALUES (1, 1, '11', 5), (2, 2, 'TOPSECRET_T2', 5000000000), (3, 1, '11', 5), (4, 2, '(', -1);
`

// Through the real proxy, with the client's default protocol use, no
// expression of the client's runs on tenant 2's rows: the answers are
// tenant 1's own, never an error quoting tenant 2's data.
func TestSecurityBarrierThroughTheProxy(t *testing.T) {
	e := newEnv(t, envOptions{schema: barrierSchema})
	e.cli(t, "catalog", "add-table", "accounts", "--tenant-column", "tenant_id")
	e.start(t, "")
	ctx := context.Background()
	conn := e.connect(t, "1")

	wantRows(t, column(t, conn, "SELECT id FROM accounts WHERE body::int = 11 ORDER BY id"), "1", "3")
	wantRows(t, column(t, conn, "SELECT id FROM accounts WHERE body::int = $1 ORDER BY id", 11), "1", "3")
	wantRows(t, column(t, conn, "SELECT id FROM accounts WHERE id = $1 AND 'abc' ~ body ORDER BY id", 1))
	wantRows(t, column(t, conn, "SELECT count(*) FROM accounts WHERE big::int = 5"), "2")
	if tag, err := conn.Exec(ctx, "UPDATE accounts SET body = body WHERE body::int = 11"); err != nil || tag.RowsAffected() != 2 {
		t.Fatalf("update: %v %v", tag, err)
	}
	if tag, err := conn.Exec(ctx, "DELETE FROM accounts WHERE 1 / (big - 5000000000) = 1"); err != nil || tag.RowsAffected() != 0 {
		t.Fatalf("delete: %v %v", tag, err)
	}

	// A parameter declared oid against a bigint column: Postgres casts
	// every row's big to oid, which fails on 5000000000 and -1.
	const oidType = 26
	rr := conn.PgConn().ExecParams(ctx, "SELECT id FROM accounts WHERE big = $1 ORDER BY id", [][]byte{[]byte("5")}, []uint32{oidType}, nil, nil).Read()
	if rr.Err != nil {
		t.Fatalf("declared oid parameter: %v", rr.Err)
	}
	got := pgtest.ResultTexts([]*pgconn.Result{rr})
	if want := "id\n\"1\"\n\"3\""; len(got) != 1 || got[0] != want {
		t.Fatalf("declared oid parameter: got %q, want %q", got, want)
	}
	// The session is still usable, and still tenant 1's.
	wantRows(t, column(t, conn, "SELECT id FROM accounts ORDER BY id"), "1", "3")
}
