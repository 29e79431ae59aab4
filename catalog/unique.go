package catalog

import (
	"context"
	"slices"

	"github.com/jackc/pgx/v5"
)

// UniqueKey is one unique index of a catalogued table, as the database has
// it (read at every load, never stored). INSERT ... ON CONFLICT skips or
// updates a proposed row that an existing row matches on such a key, so
// the rewriter needs them to tell which proposed rows are never inserted.
type UniqueKey struct {
	// Index names the index; Constraint the constraint behind it ("" for a
	// unique index without one).
	Index, Constraint string
	// Columns are the key's columns in index order (nil when it has an
	// expression).
	Columns []string
	// Plain is a key that "=" decides: columns only, no predicate,
	// checked at once (not deferrable), NULLs distinct, each column with
	// its type's default operator class and its own collation.
	Plain bool
}

// loadUniqueKeys reads t's unique indexes that take inserts, primary key
// included.
func loadUniqueKeys(ctx context.Context, tx pgx.Tx, t *Table) error {
	rows, err := tx.Query(ctx, `SELECT ic.relname::text, coalesce(c.conname::text, ''),
		       CASE WHEN i.indexprs IS NULL THEN
		         ARRAY(SELECT a.attname::text FROM unnest(i.indkey::int2[]) WITH ORDINALITY k(n, o) JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.n
		               WHERE k.o <= i.indnkeyatts ORDER BY k.o)
		       END,
		       i.indexprs IS NULL AND i.indpred IS NULL AND i.indimmediate
		         AND NOT coalesce((to_jsonb(i) ->> 'indnullsnotdistinct')::bool, false)
		         AND NOT EXISTS (SELECT 1 FROM unnest(i.indkey::int2[], i.indclass::oid[], i.indcollation::oid[]) WITH ORDINALITY k(n, cls, coll, o)
		                         JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.n
		                         JOIN pg_opclass oc ON oc.oid = k.cls
		                         WHERE k.o <= i.indnkeyatts AND (NOT oc.opcdefault OR oc.opcmethod <> (SELECT oid FROM pg_am WHERE amname = 'btree') OR k.coll <> a.attcollation))
		FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid
		LEFT JOIN pg_constraint c ON c.conindid = i.indexrelid AND c.conrelid = i.indrelid AND c.contype IN ('p', 'u')
		WHERE i.indrelid = to_regclass($1) AND i.indisunique AND i.indisready
		ORDER BY 1`, quoteQualified(t.Schema, t.Name))
	if err != nil {
		return err
	}
	t.UniqueKeys, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (UniqueKey, error) {
		var k UniqueKey
		err := r.Scan(&k.Index, &k.Constraint, &k.Columns, &k.Plain)
		if len(k.Columns) == 0 || slices.Contains(k.Columns, "") {
			k.Columns, k.Plain = nil, false
		}
		return k, err
	})
	return err
}
