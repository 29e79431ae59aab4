package e2e_test

import (
	"context"
	"testing"
)

// What pooled drivers send to reset a connection, in transaction pooling:
// it acts on the client's own statements and settings, with the command
// tags the driver expects, and never on another client's.
func TestPooledResets(t *testing.T) {
	e := newEnv(t, envOptions{extraArgs: []string{"--pool-size", "1"}})
	ctx := context.Background()
	a := e.connect(t, "1")
	b := e.connect(t, "2")
	exec := func(sql string) (string, error) {
		rs, err := a.PgConn().Exec(ctx, sql).ReadAll()
		if err != nil {
			return "", err
		}
		return rs[len(rs)-1].CommandTag.String(), nil
	}
	wantTag := func(sql, tag string) {
		t.Helper()
		got, err := exec(sql)
		if err != nil || got != tag {
			t.Fatalf("%s: tag %q, %v; want %q", sql, got, err, tag)
		}
	}
	for _, c := range []struct{ conn, name string }{{"a", "s1"}, {"a", "s2"}, {"b", "s1"}} {
		conn := a
		if c.conn == "b" {
			conn = b
		}
		if _, err := conn.Prepare(ctx, c.name, "SELECT count(*) FROM customers WHERE id > $1"); err != nil {
			t.Fatal(err)
		}
	}
	run := func(name string) error {
		return a.PgConn().ExecPrepared(ctx, name, [][]byte{[]byte("0")}, nil, nil).Read().Err
	}

	wantTag("DEALLOCATE s1", "DEALLOCATE")
	wantState(t, run("s1"), "26000")
	if err := run("s2"); err != nil {
		t.Fatalf("s2 after DEALLOCATE s1: %v", err)
	}
	_, err := exec("DEALLOCATE nosuch")
	wantState(t, err, "26000")
	wantTag("BEGIN", "BEGIN")
	wantTag("DEALLOCATE s2", "DEALLOCATE")
	wantTag("COMMIT", "COMMIT")
	wantState(t, run("s2"), "26000")

	// DEALLOCATE ALL drops a's statements only: b's s1 still runs (the
	// one upstream connection lost it and gets it again).
	if _, err := a.Prepare(ctx, "s3", "SELECT 1"); err != nil {
		t.Fatal(err)
	}
	wantTag("DEALLOCATE ALL", "DEALLOCATE ALL")
	wantState(t, run("s3"), "26000")
	if err := b.PgConn().ExecPrepared(ctx, "s1", [][]byte{[]byte("0")}, nil, nil).Read().Err; err != nil {
		t.Fatalf("the other client's statement after DEALLOCATE ALL: %v", err)
	}

	// RESET ALL and DISCARD ALL return the settings to what the client
	// started with; b's stay its own.
	start := column(t, a, "SHOW TimeZone")[0]
	wantTag("SET TimeZone = 'Asia/Tokyo'", "SET")
	wantRows(t, column(t, a, "SHOW TimeZone"), "Asia/Tokyo")
	wantTag("RESET ALL", "RESET")
	wantRows(t, column(t, a, "SHOW TimeZone"), start)
	wantTag("SET TimeZone = 'Asia/Tokyo'", "SET")
	if _, err := a.Prepare(ctx, "s4", "SELECT 1"); err != nil {
		t.Fatal(err)
	}
	wantTag("DISCARD ALL", "DISCARD ALL")
	// pgx's own statement cache is gone too, as on Postgres: read with the
	// simple protocol.
	rs, err := a.PgConn().Exec(ctx, "SHOW TimeZone").ReadAll()
	if err != nil || len(rs) != 1 || len(rs[0].Rows) != 1 || string(rs[0].Rows[0][0]) != start {
		t.Fatalf("TimeZone after DISCARD ALL: %v %v, want %s", rs, err, start)
	}
	wantState(t, run("s4"), "26000")
	wantTag("DISCARD PLANS", "DISCARD PLANS")
	wantTag("SELECT pg_advisory_unlock_all()", "SELECT 1")
	wantTag("SELECT pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *; RESET ALL", "RESET")
	_, err = exec("BEGIN; DISCARD ALL")
	wantState(t, err, "25001") // Postgres's own: not in a transaction block
	_, _ = exec("ROLLBACK")
	rs, err = b.PgConn().Exec(ctx, "SELECT name FROM customers ORDER BY id").ReadAll()
	if err != nil || len(rs[0].Rows) != 2 || string(rs[0].Rows[0][0]) != "carol" {
		t.Fatalf("the other client after the resets: %v", err)
	}
}
