package e2e_test

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"
)

// BenchmarkPointSelect compares one scoped point select through the proxy
// with the same select sent directly to Postgres (make bench).
func BenchmarkPointSelect(b *testing.B) {
	e := newEnv(b)
	ctx := context.Background()
	for _, c := range []struct {
		name string
		conn *pgx.Conn
	}{
		{"direct", e.direct(b)},
		{"proxy", e.connect(b, "1")},
	} {
		b.Run(c.name, func(b *testing.B) {
			var n int
			for b.Loop() {
				if err := c.conn.QueryRow(ctx, "SELECT count(*) FROM orders WHERE customer_id = $1", 1).Scan(&n); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
