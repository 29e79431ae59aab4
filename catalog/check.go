package catalog

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/jackc/pgx/v5"
)

// Finding is one problem check reports.
type Finding struct {
	Level   string `json:"level"` // "error", "warning" or "info"
	Table   string `json:"table"`
	Message string `json:"message"`
}

// Check compares the stored catalog with the live schema. Errors make the
// catalog unusable or wrong: missing tables or columns, columns of one claim
// with types that cannot hold the same values, a path whose key types
// differ. Warnings are risks: a nullable tenant column, no index leading
// with the tenant column, a primary key or unique constraint without it (a
// unique violation tells one tenant that another's key exists), a foreign
// key to an uncatalogued table, a path column without a foreign key, and
// tables the catalog does not list (they stay refused). Notes (info) say
// how every other foreign key to a bound table is kept inside the tenant.
func Check(ctx context.Context, conn *pgx.Conn) ([]Finding, error) {
	tables, _, err := List(ctx, conn)
	if err != nil {
		return nil, err
	}
	c := &checker{ctx: ctx, conn: conn, catalogued: map[string]bool{}}
	claimTypes := map[string][]string{} // claim -> "table.column type"
	for _, t := range tables {
		c.catalogued[t.QualifiedName()] = true
	}
	for _, t := range tables {
		name := QuoteName(t.Schema, t.Name)
		cols, err := c.columns(t)
		if err != nil {
			return nil, err
		}
		if cols == nil {
			c.add("error", name, "table does not exist; remove it with: tenantproxy catalog remove "+name)
			continue
		}
		switch t.Kind {
		case TenantBound:
			bindings := t.Bindings
			if len(bindings) == 0 {
				bindings = []Binding{{Column: t.TenantColumn, Claim: t.Claim}}
			}
			for _, b := range bindings {
				col, ok := cols[b.Column]
				if !ok {
					c.add("error", name, fmt.Sprintf("tenant column %q does not exist", b.Column))
					continue
				}
				claimTypes[b.Claim] = append(claimTypes[b.Claim], name+"."+b.Column+" "+col.typ)
				if !col.notNull {
					c.add("warning", name, fmt.Sprintf("tenant column %s is nullable: rows with NULL belong to no tenant; add NOT NULL", b.Column))
				}
				if err := c.tenantRisks(t, name, b.Column); err != nil {
					return nil, err
				}
			}
		case PathBound:
			if err := c.pathChecks(t, name, cols); err != nil {
				return nil, err
			}
		}
	}
	for claim, cols := range claimTypes {
		families := map[string]bool{}
		for _, ct := range cols {
			families[typeFamily(ct[strings.LastIndexByte(ct, ' ')+1:])] = true
		}
		if len(families) > 1 {
			if claim == "" {
				claim = "the tenant claim"
			}
			sort.Strings(cols)
			c.add("error", "", fmt.Sprintf("columns bound to %s have different types (%s): a token value cannot match them all the same way", claim, strings.Join(cols, ", ")))
		}
	}
	if err := c.uncatalogued(); err != nil {
		return nil, err
	}
	if snap, err := Load(ctx, conn); err == nil {
		c.references(snap)
	} // a catalog that does not load has its errors reported above
	rank := map[string]int{"error": 0, "warning": 1, "info": 2}
	sort.SliceStable(c.out, func(i, j int) bool {
		if c.out[i].Level != c.out[j].Level {
			return rank[c.out[i].Level] < rank[c.out[j].Level]
		}
		return c.out[i].Table < c.out[j].Table
	})
	return c.out, nil
}

// typeFamily groups column types that hold the same tenant values.
func typeFamily(t string) string {
	switch {
	case t == "smallint" || t == "integer" || t == "bigint" || strings.HasPrefix(t, "numeric"):
		return "integer"
	case t == "text" || strings.HasPrefix(t, "character"):
		return "text"
	}
	return t
}

// references reports how each foreign key of a catalogued table to a bound
// table stands with tenants (references.go): safe by construction, guarded
// by the rewriter, or refused.
func (c *checker) references(snap *Snapshot) {
	for _, t := range snap.Tables() {
		name := QuoteName(t.Schema, t.Name)
		if !t.Bound() && !(t.Kind == Global && t.Writable) {
			continue // nobody writes it through the proxy
		}
		for _, r := range snap.References(t) {
			cols := strings.Join(r.Key.Columns, ", ")
			switch {
			case r.Status == RefSafe:
				c.add("info", name, fmt.Sprintf("foreign key %s (%s) to %s includes the tenant column: safe by construction", r.Key.Name, cols, r.Key.RefQualified()))
			case r.Status == RefPath:
				c.add("info", name, fmt.Sprintf("foreign key %s (%s) to %s is the table's path: guarded by the path", r.Key.Name, cols, r.Key.RefQualified()))
			case r.Status == RefGuarded:
				c.add("info", name, fmt.Sprintf("foreign key %s (%s) to %s is guarded: INSERT, UPDATE, ON CONFLICT, MERGE and COPY FROM must name a row of the session's tenant (or leave a key column NULL), else they fail with 23503 as on the tenant's own database", r.Key.Name, cols, r.Key.RefQualified()))
			case r.Status == RefUncatalogued:
				c.add("warning", name, fmt.Sprintf("foreign key %s (%s) references %s, which the catalog does not list: writes that set it are refused", r.Key.Name, cols, r.Key.RefQualified()))
			}
		}
	}
}

type checker struct {
	ctx        context.Context
	conn       *pgx.Conn
	catalogued map[string]bool
	out        []Finding
}

func (c *checker) add(level, table, msg string) {
	c.out = append(c.out, Finding{Level: level, Table: table, Message: msg})
}

type liveColumn struct {
	typ     string
	notNull bool
}

// columns returns a table's live columns, or nil when it does not exist.
func (c *checker) columns(t Table) (map[string]liveColumn, error) {
	rows, err := c.conn.Query(c.ctx, `SELECT a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull
		FROM pg_attribute a WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped`, quoteQualified(t.Schema, t.Name))
	if err != nil {
		return nil, err
	}
	var out map[string]liveColumn
	var name string
	var col liveColumn
	_, err = pgx.ForEachRow(rows, []any{&name, &col.typ, &col.notNull}, func() error {
		if out == nil {
			out = map[string]liveColumn{}
		}
		out[name] = col
		return nil
	})
	return out, err
}

// tenantRisks reports the index, unique-constraint and foreign-key risks of
// one tenant column.
func (c *checker) tenantRisks(t Table, name, column string) error {
	rel := quoteQualified(t.Schema, t.Name)
	var indexed bool
	if err := c.conn.QueryRow(c.ctx, `SELECT EXISTS (SELECT 1 FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
		WHERE i.indrelid = to_regclass($1) AND a.attname = $2)`, rel, column).Scan(&indexed); err != nil {
		return err
	}
	if !indexed {
		c.add("warning", name, fmt.Sprintf("no index starts with %s: every scoped query scans the table; CREATE INDEX ON %s (%s, ...)", column, name, column))
	}
	rows, err := c.conn.Query(c.ctx, `SELECT c.conname, c.contype::text
		FROM pg_constraint c
		WHERE c.conrelid = to_regclass($1) AND c.contype IN ('p', 'u')
		  AND NOT EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.conrelid AND a.attnum = ANY (c.conkey) AND a.attname = $2)
		ORDER BY 1`, rel, column)
	if err != nil {
		return err
	}
	var con, typ string
	_, err = pgx.ForEachRow(rows, []any{&con, &typ}, func() error {
		switch typ {
		case "p", "u":
			c.add("warning", name, fmt.Sprintf("constraint %s is unique without %s: a violation tells one tenant that another tenant's key exists", con, column))
		}
		return nil
	})
	return err
}

// pathChecks verifies a path-bound table's column, its parent key and the
// foreign key between them.
func (c *checker) pathChecks(t Table, name string, cols map[string]liveColumn) error {
	via, ok := cols[t.Via]
	if !ok {
		c.add("error", name, fmt.Sprintf("path column %q does not exist", t.Via))
		return nil
	}
	ps, pn, _ := strings.Cut(t.Parent, ".")
	parentCols, err := c.columns(Table{Schema: ps, Name: pn})
	if err != nil {
		return err
	}
	key, ok := parentCols[t.ParentKey]
	if !ok {
		c.add("error", name, fmt.Sprintf("parent %s has no column %q", QuoteName(ps, pn), t.ParentKey))
		return nil
	}
	if typeFamily(via.typ) != typeFamily(key.typ) {
		c.add("error", name, fmt.Sprintf("%s (%s) cannot reference %s.%s (%s)", t.Via, via.typ, QuoteName(ps, pn), t.ParentKey, key.typ))
	}
	var fk bool
	if err := c.conn.QueryRow(c.ctx, `SELECT EXISTS (SELECT 1 FROM pg_constraint c
		JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1]
		WHERE c.contype = 'f' AND c.conrelid = to_regclass($1) AND c.confrelid = to_regclass($2) AND cardinality(c.conkey) = 1 AND a.attname = $3)`,
		quoteQualified(t.Schema, t.Name), quoteQualified(ps, pn), t.Via).Scan(&fk); err != nil {
		return err
	}
	if !fk {
		c.add("warning", name, fmt.Sprintf("%s is not a foreign key to %s: nothing stops a row from naming a parent that does not exist", t.Via, QuoteName(ps, pn)))
	}
	if !via.notNull {
		c.add("warning", name, fmt.Sprintf("path column %s is nullable: rows with NULL belong to no tenant", t.Via))
	}
	return nil
}

// uncatalogued warns about tables the catalog does not list.
func (c *checker) uncatalogued() error {
	live, err := liveTables(c.ctx, c.conn, nil)
	if err != nil {
		return err
	}
	for _, t := range live {
		if !c.catalogued[t.schema+"."+t.name] {
			c.add("warning", QuoteName(t.schema, t.name), "not in the catalog: tenants cannot reach it (add-table, add-path or add-global)")
		}
	}
	return nil
}
