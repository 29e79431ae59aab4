package e2e_test

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"
)

// sessionOps are the statement texts and names the session fuzzer draws
// from: enough to reach every branch of the proxy's message handling
// (accepted, rewritten, refused, COPY, errors upstream).
var (
	fuzzQueries = []string{
		"SELECT 1", "SELECT * FROM orders", "SELECT * FROM secrets", "BEGIN", "COMMIT", "ROLLBACK",
		"INSERT INTO orders (customer_id, total) VALUES ($1, 1)", "UPDATE orders SET total = total + 1 WHERE id = $1",
		"SELECT 1/0", "SET statement_timeout = '5s'", "COPY orders (customer_id, total) FROM STDIN",
		"COPY orders TO STDOUT", "PREPARE p AS SELECT 1", "SELECT $1::int", "", "SELEC broken",
	}
	fuzzNames = []string{"", "s1", "s2", "tpx_other_1"}
)

// fuzzMessages turns bytes into a sequence of protocol messages.
func fuzzMessages(data []byte) []pgproto3.FrontendMessage {
	var out []pgproto3.FrontendMessage
	for i := 0; i+1 < len(data) && len(out) < 64; i += 2 {
		op, arg := data[i], int(data[i+1])
		q := fuzzQueries[arg%len(fuzzQueries)]
		name := fuzzNames[arg%len(fuzzNames)]
		switch op % 12 {
		case 0:
			out = append(out, &pgproto3.Query{String: q})
		case 1:
			out = append(out, &pgproto3.Parse{Name: name, Query: q})
		case 2:
			params := [][]byte{[]byte("10")}
			if arg%3 == 0 {
				params = nil
			}
			out = append(out, &pgproto3.Bind{PreparedStatement: name, DestinationPortal: name, Parameters: params})
		case 3:
			out = append(out, &pgproto3.Execute{Portal: name, MaxRows: uint32(arg % 3)})
		case 4:
			out = append(out, &pgproto3.Sync{})
		case 5:
			out = append(out, &pgproto3.Describe{ObjectType: "SP"[arg%2], Name: name})
		case 6:
			out = append(out, &pgproto3.Close{ObjectType: "SP"[arg%2], Name: name})
		case 7:
			out = append(out, &pgproto3.Flush{})
		case 8:
			out = append(out, &pgproto3.CopyData{Data: []byte("1\t2\n")})
		case 9:
			out = append(out, &pgproto3.CopyDone{})
		case 10:
			out = append(out, &pgproto3.CopyFail{Message: "stop"})
		case 11:
			out = append(out, &pgproto3.FunctionCall{Function: uint32(arg)})
		}
	}
	return out
}

// FuzzSessionMessages sends sequences of protocol messages, in any order,
// through an authenticated session to a real Postgres. Whatever the order,
// the proxy answers within a bounded time or closes the session, and a
// fresh session is served afterwards. The seeds run in make test.
func FuzzSessionMessages(f *testing.F) {
	f.Add([]byte{1, 1, 2, 1, 3, 1, 4, 0})                   // Parse, Bind, Execute, Sync
	f.Add([]byte{2, 2, 3, 0, 4, 0})                         // Bind before Parse
	f.Add([]byte{0, 10, 8, 0, 8, 0, 9, 0})                  // COPY FROM, data, done
	f.Add([]byte{0, 10, 10, 0, 0, 0})                       // COPY FROM, fail
	f.Add([]byte{0, 3, 0, 8, 0, 5, 0, 4})                   // BEGIN, error, ROLLBACK
	f.Add([]byte{1, 3, 6, 3, 5, 3, 4, 0, 11, 9})            // Parse secrets, Close, Describe, Sync, FunctionCall
	f.Add([]byte{4, 0, 4, 0, 4, 0, 7, 0, 1, 2, 1, 2, 4, 0}) // Syncs, Flush, duplicate Parse
	e := newEnv(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		ctx := context.Background()
		r := e.raw(t, "1")
		for _, m := range fuzzMessages(data) {
			r.fe.Send(m)
		}
		r.fe.Send(&pgproto3.Sync{})
		r.fe.Send(&pgproto3.CopyFail{Message: "end"}) // leaves a COPY, ignored otherwise
		r.fe.Send(&pgproto3.Query{String: "ROLLBACK"})
		if err := r.fe.Flush(); err != nil {
			return // the proxy closed it: allowed, checked below
		}
		_ = r.conn.SetReadDeadline(time.Now().Add(20 * time.Second))
		draining := false
		for {
			msg, err := r.fe.Receive()
			if err != nil {
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() && !draining {
					t.Fatalf("no answer within 20 s to %x", data)
				}
				break // closed by the proxy, or drained
			}
			if rfq, ok := msg.(*pgproto3.ReadyForQuery); ok && rfq.TxStatus == 'I' && !draining {
				// Idle after the final ROLLBACK (or earlier): drain briefly.
				draining = true
				_ = r.conn.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
			}
		}
		c := e.connect(t, "1")
		var one int
		if err := c.QueryRow(ctx, "SELECT 1").Scan(&one); err != nil {
			t.Fatalf("a fresh session is not served after %x: %v", data, err)
		}
	})
}
