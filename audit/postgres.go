package audit

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/jackc/pgx/v5"
)

// PGTable is where the Postgres sink writes: one row per event, the exact
// line that was hashed and the same as JSON for queries.
const PGTable = "tenantproxy.audit_events"

const pgSchema = `CREATE SCHEMA IF NOT EXISTS tenantproxy;
CREATE TABLE IF NOT EXISTS ` + PGTable + ` (
  seq   bigint PRIMARY KEY,
  at    timestamptz NOT NULL,
  line  text NOT NULL,
  event jsonb NOT NULL
)`

// pgWriter inserts the lines of each write in one transaction. A failed
// write inserts nothing and reports 0 bytes, so the sink retries it; the
// connection is re-established on the next write.
type pgWriter struct {
	dsn  string
	conn *pgx.Conn
}

// OpenPostgres opens a sink that writes to PGTable in the database at dsn
// (creating the table), continuing the chain from its last row.
func OpenPostgres(ctx context.Context, dsn string) (*JSONLSink, error) {
	w := &pgWriter{dsn: dsn}
	if err := w.connect(ctx); err != nil {
		return nil, err
	}
	if _, err := w.conn.Exec(ctx, pgSchema); err != nil {
		w.conn.Close(ctx)
		return nil, fmt.Errorf("audit table %s: %w", PGTable, err)
	}
	var line string
	err := w.conn.QueryRow(ctx, "SELECT line FROM "+PGTable+" ORDER BY seq DESC LIMIT 1").Scan(&line)
	s := NewJSONLSink(w, nil)
	s.close = func() error { return w.conn.Close(context.Background()) }
	switch {
	case errors.Is(err, pgx.ErrNoRows):
	case err != nil:
		w.conn.Close(ctx)
		return nil, err
	default:
		var last Event
		if err := json.Unmarshal([]byte(line), &last); err != nil || last.Hash == "" {
			w.conn.Close(ctx)
			return nil, fmt.Errorf("the last row of %s is not an audit event; the chain cannot continue", PGTable)
		}
		s.seq, s.prev = last.Seq, last.Hash
	}
	return s, nil
}

func (w *pgWriter) connect(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, w.dsn)
	if err != nil {
		return fmt.Errorf("connect to the audit database: %w", err)
	}
	w.conn = conn
	return nil
}

// Write inserts the newline-terminated lines of p in one transaction.
func (w *pgWriter) Write(p []byte) (int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if w.conn == nil || w.conn.IsClosed() {
		if err := w.connect(ctx); err != nil {
			return 0, err
		}
	}
	batch := &pgx.Batch{}
	for _, line := range bytes.Split(bytes.TrimSuffix(p, []byte("\n")), []byte("\n")) {
		var e Event
		if err := json.Unmarshal(line, &e); err != nil {
			return 0, err
		}
		batch.Queue("INSERT INTO "+PGTable+" (seq, at, line, event) VALUES ($1, $2, $3, $4::jsonb)", e.Seq, e.Time, string(line), string(line))
	}
	err := pgx.BeginFunc(ctx, w.conn, func(tx pgx.Tx) error {
		return tx.SendBatch(ctx, batch).Close()
	})
	if err != nil {
		if w.conn.IsClosed() || ctx.Err() != nil {
			w.conn = nil
		}
		return 0, fmt.Errorf("insert audit events: %w", err)
	}
	return len(p), nil
}

// ExportPostgres writes the stored events, oldest first, as JSON lines (for
// audit verify).
func ExportPostgres(ctx context.Context, dsn string, out io.Writer) error {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	rows, err := conn.Query(ctx, "SELECT line FROM "+PGTable+" ORDER BY seq")
	if err != nil {
		return err
	}
	var line string
	_, err = pgx.ForEachRow(rows, []any{&line}, func() error {
		_, err := io.WriteString(out, line+"\n")
		return err
	})
	return err
}
