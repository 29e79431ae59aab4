package catalog

import (
	"context"
	"fmt"
	"slices"

	"github.com/jackc/pgx/v5"
)

// A foreign key from a catalogued table to a bound table can point at
// another tenant's row: Postgres checks it against every row, whoever's.
// Such a write would fail on the tenant's own database (23503), and its
// success tells the tenant which keys exist elsewhere. The catalog reads
// every foreign key of its tables each time it loads and sorts them:
// a key whose columns carry the tenant (every binding of the referenced
// table matched by a binding of the referencing one) is safe by
// construction, a path-bound table's own via key is guarded by its path,
// and every other key to a bound table needs a guard on each write that
// sets it.

// ForeignKey is one foreign key of a catalogued table, as the database has
// it (read at every load, never stored).
type ForeignKey struct {
	Name       string
	Columns    []string
	RefSchema  string
	RefName    string
	RefColumns []string
}

// RefQualified is the referenced table's schema.name.
func (fk ForeignKey) RefQualified() string { return fk.RefSchema + "." + fk.RefName }

// How a foreign key stands with tenants (Reference.Status).
const (
	// RefGuarded: a write that sets the key must reference a row the
	// session sees; the rewriter guards it.
	RefGuarded = "guarded"
	// RefSafe: the key includes the tenant: the referenced row is the
	// session's whenever the referencing row is.
	RefSafe = "safe"
	// RefPath: a path-bound table's via key, guarded by its path.
	RefPath = "path"
	// RefGlobal: the referenced table is global (everyone's rows).
	RefGlobal = "global"
	// RefUncatalogued: the referenced table is not in the catalog;
	// statements cannot read it, and writes to the key are refused.
	RefUncatalogued = "uncatalogued"
)

// Reference is a foreign key of a catalogued table with its standing.
type Reference struct {
	Key    ForeignKey
	Ref    Table // the referenced table (zero when uncatalogued)
	Status string
}

// References returns the foreign keys of t with their standing.
func (s *Snapshot) References(t Table) []Reference {
	out := make([]Reference, 0, len(t.ForeignKeys))
	for _, fk := range t.ForeignKeys {
		r := Reference{Key: fk}
		ref, ok := s.Lookup(fk.RefSchema, fk.RefName)
		switch {
		case !ok:
			r.Status = RefUncatalogued
		case ref.Kind == Global:
			r.Ref, r.Status = ref, RefGlobal
		case t.Kind == PathBound && t.Parent == ref.QualifiedName() && slices.Equal(fk.Columns, []string{t.Via}) && slices.Equal(fk.RefColumns, []string{t.ParentKey}):
			r.Ref, r.Status = ref, RefPath
		case carriesTenant(t, ref, fk):
			r.Ref, r.Status = ref, RefSafe
		default:
			r.Ref, r.Status = ref, RefGuarded
		}
		out = append(out, r)
	}
	return out
}

// carriesTenant reports whether every binding of tenant-bound ref is
// matched, column for column in fk, by a binding of t on the same claim:
// the rewriter keeps t's binding columns to the session's values, so the
// referenced row is then the session's too.
func carriesTenant(t, ref Table, fk ForeignKey) bool {
	if ref.Kind != TenantBound || t.Kind != TenantBound {
		return false
	}
	for _, rb := range ref.Bindings {
		matched := false
		for i, rc := range fk.RefColumns {
			if rc != rb.Column {
				continue
			}
			for _, tb := range t.Bindings {
				if tb.Column == fk.Columns[i] && tb.Claim == rb.Claim {
					matched = true
				}
			}
		}
		if !matched {
			return false
		}
	}
	return len(ref.Bindings) > 0
}

// loadForeignKeys reads t's foreign keys (columns in key order), in the
// order Postgres checks them: its check triggers' names (a row's first
// bad key is the one it reports).
func loadForeignKeys(ctx context.Context, tx pgx.Tx, t *Table) error {
	rows, err := tx.Query(ctx, `SELECT c.conname, rn.nspname, rc.relname,
		       ARRAY(SELECT a.attname::text FROM unnest(c.conkey) WITH ORDINALITY k(n, i) JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.n ORDER BY k.i),
		       ARRAY(SELECT a.attname::text FROM unnest(c.confkey) WITH ORDINALITY k(n, i) JOIN pg_attribute a ON a.attrelid = c.confrelid AND a.attnum = k.n ORDER BY k.i)
		FROM pg_constraint c JOIN pg_class rc ON rc.oid = c.confrelid JOIN pg_namespace rn ON rn.oid = rc.relnamespace
		WHERE c.contype = 'f' AND c.conrelid = to_regclass($1)
		ORDER BY (SELECT min(tg.tgname COLLATE "C") FROM pg_trigger tg WHERE tg.tgconstraint = c.oid AND tg.tgrelid = c.conrelid), c.conname`, quoteQualified(t.Schema, t.Name))
	if err != nil {
		return err
	}
	t.ForeignKeys, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (ForeignKey, error) {
		var fk ForeignKey
		err := r.Scan(&fk.Name, &fk.RefSchema, &fk.RefName, &fk.Columns, &fk.RefColumns)
		if err == nil && (len(fk.Columns) == 0 || len(fk.Columns) != len(fk.RefColumns)) {
			err = fmt.Errorf("foreign key %s of %s: columns do not pair up", fk.Name, t.QualifiedName())
		}
		return fk, err
	})
	return err
}
