package e2e_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/tenantproxy/tenantproxy/auth"
)

// pathSchema has a path-bound chain (comments -> posts -> sites) and a table
// bound on two dimensions (tenant and author = the token's sub).
const pathSchema = `
CREATE TABLE sites (id int PRIMARY KEY, tenant_id int NOT NULL);
CREATE TABLE posts (id int PRIMARY KEY, site_id int NOT NULL REFERENCES sites, title text);
CREATE TABLE comments (id int PRIMARY KEY, post_id int REFERENCES posts, body text);
CREATE TABLE documents (id int PRIMARY KEY, tenant_id int NOT NULL, author text NOT NULL, title text);
INSERT INTO sites VALUES (1, 1), (2, 2);
INSERT INTO posts VALUES (10, 1, 'ours'), (20, 2, 'theirs');
INSERT INTO comments VALUES (100, 10, 'ours'), (200, 20, 'theirs'), (300, NULL, 'orphan');
INSERT INTO documents VALUES (1, 1, 'ann', 'mine'), (2, 1, 'bob', 'colleague'), (3, 2, 'ann', 'other tenant');
`

// TestPathBoundAndMultiDimensionTables runs reads and writes through the
// proxy on a path-bound chain and a two-dimension table.
func TestPathBoundAndMultiDimensionTables(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	direct := e.direct(t)
	if _, err := direct.Exec(ctx, pathSchema); err != nil {
		t.Fatal(err)
	}
	e.cli(t, "catalog", "add-table", "sites", "--tenant-column", "tenant_id")
	e.cli(t, "catalog", "add-path", "posts", "--via", "site_id")
	e.cli(t, "catalog", "add-path", "comments", "--via", "post_id")
	e.cli(t, "catalog", "add-table", "documents", "--tenant-column", "tenant_id")
	e.cli(t, "catalog", "add-table", "documents", "--tenant-column", "author", "--claim", "sub")
	e.start(t, "") // the catalog is read at start

	tok, err := auth.Mint(e.secret, auth.MintOptions{Tenants: []string{"1"}, Subject: "ann", TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, e.connString(tok))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)

	ids := func(c *pgx.Conn, sql string) []int {
		t.Helper()
		rows, err := c.Query(ctx, sql)
		if err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
		out, err := pgx.CollectRows(rows, pgx.RowTo[int])
		if err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
		slices.Sort(out)
		return out
	}
	expectIDs := func(sql string, want ...int) {
		t.Helper()
		if got := ids(conn, sql); !slices.Equal(got, want) {
			t.Errorf("%s: got %v, want %v", sql, got, want)
		}
	}
	refused := func(sql string, args ...any) {
		t.Helper()
		_, err := conn.Exec(ctx, sql, args...)
		var pe *pgconn.PgError
		if !errors.As(err, &pe) || pe.Code != "42501" || !strings.HasPrefix(pe.Message, "tenantproxy: ") {
			t.Errorf("%s: want a tenantproxy refusal, got %v", sql, err)
		}
	}

	// A parent of another tenant's: the path's foreign key fails as on
	// the tenant's own database, which does not hold the parent.
	violates := func(sql string, args ...any) {
		t.Helper()
		_, err := conn.Exec(ctx, sql, args...)
		var pe *pgconn.PgError
		if !errors.As(err, &pe) || pe.Code != "23503" || pe.ConstraintName != "comments_post_id_fkey" ||
			pe.Detail != `Key (post_id)=(20) is not present in table "posts".` {
			t.Errorf("%s: want the violation of comments_post_id_fkey, got %v", sql, err)
		}
	}

	expectIDs("SELECT id FROM posts", 10)
	expectIDs("SELECT id FROM comments", 100)
	expectIDs("SELECT c.id FROM comments c JOIN posts p ON p.id = c.post_id", 100)
	expectIDs("SELECT id FROM documents", 1)

	if _, err := conn.Exec(ctx, "INSERT INTO comments (id, post_id, body) VALUES (101, 10, 'new')"); err != nil {
		t.Fatalf("insert under our post: %v", err)
	}
	if _, err := conn.Exec(ctx, "INSERT INTO comments (id, post_id, body) VALUES ($1, $2, $3)", 102, 10, "bound"); err != nil {
		t.Fatalf("insert with parameters under our post: %v", err)
	}
	violates("INSERT INTO comments (id, post_id, body) VALUES (103, 20, 'under their post')")
	violates("INSERT INTO comments (id, post_id, body) VALUES ($1, $2, $3)", 104, 20, "bound under their post")
	refused("INSERT INTO comments (id, post_id, body) VALUES (105, NULL, 'orphan')")
	violates("UPDATE comments SET post_id = 20 WHERE id = 100")
	if _, err := conn.Exec(ctx, "UPDATE comments SET body = body || '!'"); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, "INSERT INTO documents (id, title) VALUES (4, 'filled')"); err != nil {
		t.Fatalf("insert filling both dimensions: %v", err)
	}
	refused("INSERT INTO documents (id, author, title) VALUES (5, 'bob', 'as bob')")
	refused("UPDATE documents SET author = 'bob'")
	if err := conn.Ping(ctx); err != nil {
		t.Fatalf("session unusable after refusals: %v", err)
	}

	// Every other tenant's and author's rows are as they were.
	var all []string
	rows, err := direct.Query(ctx, `SELECT 'c' || id || ':' || coalesce(post_id::text, '-') || ':' || body FROM comments
		UNION ALL SELECT 'd' || id || ':' || tenant_id || ':' || author || ':' || title FROM documents ORDER BY 1`)
	if err != nil {
		t.Fatal(err)
	}
	if all, err = pgx.CollectRows(rows, pgx.RowTo[string]); err != nil {
		t.Fatal(err)
	}
	want := []string{"c100:10:ours!", "c101:10:new!", "c102:10:bound!", "c200:20:theirs", "c300:-:orphan",
		"d1:1:ann:mine", "d2:1:bob:colleague", "d3:2:ann:other tenant", "d4:1:ann:filled"}
	if !slices.Equal(all, want) {
		t.Fatalf("rows after the writes:\n got %v\nwant %v", all, want)
	}
}
