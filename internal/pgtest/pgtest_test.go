package pgtest_test

import (
	"context"
	"github.com/jackc/pgx/v5"
	"github.com/tenantproxy/tenantproxy/internal/pgtest"
	"os"
	"testing"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }
func TestStart(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	c, err := pgx.Connect(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	var n int
	c.QueryRow(context.Background(), "select 1").Scan(&n)
	c.Close(context.Background())
	if n != 1 {
		t.Fatal(n)
	}
}
