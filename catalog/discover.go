package catalog

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/jackc/pgx/v5"
)

// Proposal is what discover suggests for a live schema.
type Proposal struct {
	// Tables are the proposed entries, parents before children; entries
	// for tables the catalog already has are left out.
	Tables []Table
	// Notes explain choices (a partition following its parent, ...).
	Notes []string
	// Ambiguous lists tables with several equally short ways to a tenant;
	// the user chooses with add-path --via.
	Ambiguous []string
	// Unknown lists tables that are neither: they stay refused until
	// catalogued (add-global, add-table, add-path).
	Unknown []string
	// Catalogued lists tables the catalog already has, left as they are.
	Catalogued []string
	// TenantSchemas are the schemas the --tenant-schema pattern names
	// (schema-per-tenant layout); their tables are never proposed: each
	// session reaches its own schema's tables without a catalog entry.
	TenantSchemas []string
	// TenantTables lists the table names found in tenant schemas, each
	// with how many of those schemas hold it ("invoices (3 of 3)").
	TenantTables []string
}

// TenantPlaceholder is where the tenant value goes in a --tenant-schema
// pattern ("tenant_{tenant}").
const TenantPlaceholder = "{tenant}"

// MatchTenantSchema reports whether schema is a name the --tenant-schema
// pattern gives some tenant.
func MatchTenantSchema(pattern, schema string) bool {
	prefix, suffix, ok := strings.Cut(pattern, TenantPlaceholder)
	return ok && len(schema) > len(prefix)+len(suffix) && strings.HasPrefix(schema, prefix) && strings.HasSuffix(schema, suffix)
}

// tenantLayout takes the tables of tenant schemas out of tables and
// records them in p; a shared table with the name of a tenant table gets a
// note, since a catalogued shared table wins over the tenant's own for an
// unqualified name.
func tenantLayout(p *Proposal, tables []liveTable, pattern string) []liveTable {
	if pattern == "" {
		return tables
	}
	var shared []liveTable
	schemas := map[string]bool{}
	counts := map[string]int{}
	for _, t := range tables {
		if MatchTenantSchema(pattern, t.schema) {
			schemas[t.schema] = true
			counts[t.name]++
			continue
		}
		shared = append(shared, t)
	}
	for s := range schemas {
		p.TenantSchemas = append(p.TenantSchemas, s)
	}
	sort.Strings(p.TenantSchemas)
	for name, n := range counts {
		p.TenantTables = append(p.TenantTables, fmt.Sprintf("%s (%d of %d)", QuoteName(name), n, len(schemas)))
	}
	sort.Strings(p.TenantTables)
	for _, t := range shared {
		if counts[t.name] > 0 {
			p.Notes = append(p.Notes, fmt.Sprintf("%s has the name of a table in tenant schemas: once catalogued, an unqualified %s means %s, not the tenant's own",
				QuoteName(t.schema, t.name), t.name, QuoteName(t.schema, t.name)))
		}
	}
	return shared
}

// liveTable is a table of the live schema as discover sees it.
type liveTable struct {
	oid          uint32
	schema, name string
	columns      map[string]string // name -> type
	parent       uint32            // partition or inheritance parent, 0 if none
}

// fkEdge is a single-column foreign key.
type fkEdge struct {
	from          uint32
	column        string
	to            uint32
	toColumn      string
	constraintNam string
}

// Discover proposes a catalog for the live schema: tables with the tenant
// column are tenant-bound; tables without it that reach a tenant-bound table
// through single-column foreign keys are path-bound along the shortest
// chain; partitions and inheritance children follow their parent;
// everything else is unknown. Schemas limits the search (default: every
// schema but the system ones and tenantproxy).
//
// With a tenantSchema pattern (schema-per-tenant layout), the schemas it
// names are listed, not proposed (see tenantLayout).
func Discover(ctx context.Context, conn *pgx.Conn, tenantColumn string, schemas []string, tenantSchema string) (*Proposal, error) {
	if tenantColumn == "" {
		tenantColumn = "tenant_id"
	}
	tables, err := liveTables(ctx, conn, schemas)
	if err != nil {
		return nil, err
	}
	p := &Proposal{}
	tables = tenantLayout(p, tables, tenantSchema)
	edges, err := foreignKeys(ctx, conn)
	if err != nil {
		return nil, err
	}
	stored, _, err := List(ctx, conn)
	if err != nil && !IsNotInitialised(err) {
		return nil, err
	}
	have := map[string]bool{}
	for _, t := range stored {
		have[t.QualifiedName()] = true
	}
	byOID := map[uint32]*liveTable{}
	for i := range tables {
		byOID[tables[i].oid] = &tables[i]
	}
	// Distance to a tenant-bound table over foreign keys (0: has the column).
	dist := map[uint32]int{}
	for _, t := range tables {
		if _, ok := t.columns[tenantColumn]; ok {
			dist[t.oid] = 0
		}
	}
	for changed := true; changed; {
		changed = false
		for _, e := range edges {
			d, ok := dist[e.to]
			if _, from := byOID[e.from]; !ok || !from {
				continue
			}
			if cur, seen := dist[e.from]; !seen || d+1 < cur {
				dist[e.from] = d + 1
				changed = true
			}
		}
	}
	proposed := map[uint32]Table{}
	for _, t := range tables {
		if t.parent != 0 {
			continue // children follow their parent, below
		}
		d, ok := dist[t.oid]
		switch {
		case !ok:
			p.Unknown = append(p.Unknown, QuoteName(t.schema, t.name))
		case d == 0:
			proposed[t.oid] = Table{Schema: t.schema, Name: t.name, Kind: TenantBound, TenantColumn: tenantColumn}
		default:
			var best []fkEdge
			for _, e := range edges {
				if pd, ok := dist[e.to]; e.from == t.oid && ok && pd == d-1 {
					best = append(best, e)
				}
			}
			if len(best) != 1 {
				var ways []string
				for _, e := range best {
					ways = append(ways, fmt.Sprintf("--via %s (-> %s)", e.column, QuoteName(byOID[e.to].schema, byOID[e.to].name)))
				}
				p.Ambiguous = append(p.Ambiguous, fmt.Sprintf("%s: %s", QuoteName(t.schema, t.name), strings.Join(ways, " or ")))
				continue
			}
			to := byOID[best[0].to]
			proposed[t.oid] = Table{Schema: t.schema, Name: t.name, Kind: PathBound, Via: best[0].column,
				Parent: to.schema + "." + to.name, ParentKey: best[0].toColumn}
		}
	}
	for _, t := range tables {
		if t.parent == 0 {
			continue
		}
		root := t.parent
		for byOID[root] != nil && byOID[root].parent != 0 {
			root = byOID[root].parent
		}
		pt, ok := proposed[root]
		if !ok {
			p.Unknown = append(p.Unknown, QuoteName(t.schema, t.name))
			continue
		}
		child := pt
		child.Schema, child.Name = t.schema, t.name
		proposed[t.oid] = child
		p.Notes = append(p.Notes, fmt.Sprintf("%s follows its parent %s", QuoteName(t.schema, t.name), QuoteName(pt.Schema, pt.Name)))
	}
	// Parents before children: order by distance, then name.
	order := make([]uint32, 0, len(proposed))
	for oid := range proposed {
		order = append(order, oid)
	}
	sort.Slice(order, func(i, j int) bool {
		a, b := order[i], order[j]
		if dist[a] != dist[b] {
			return dist[a] < dist[b]
		}
		return proposed[a].QualifiedName() < proposed[b].QualifiedName()
	})
	for _, oid := range order {
		t := proposed[oid]
		if have[t.QualifiedName()] {
			p.Catalogued = append(p.Catalogued, QuoteName(t.Schema, t.Name))
			continue
		}
		p.Tables = append(p.Tables, t)
	}
	var unknown []string
	for _, u := range p.Unknown {
		if s, n, err := splitQualified(u); err != nil || !have[s+"."+n] {
			unknown = append(unknown, u)
		} else {
			p.Catalogued = append(p.Catalogued, u)
		}
	}
	p.Unknown = unknown
	sort.Strings(p.Unknown)
	sort.Strings(p.Ambiguous)
	sort.Strings(p.Catalogued)
	return p, nil
}

// liveTables lists the ordinary and partitioned tables with their columns.
func liveTables(ctx context.Context, conn *pgx.Conn, schemas []string) ([]liveTable, error) {
	rows, err := conn.Query(ctx, `
		SELECT c.oid, n.nspname, c.relname, coalesce(i.inhparent, 0),
		       coalesce((SELECT array_agg(a.attname ORDER BY a.attnum) FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped), '{}'),
		       coalesce((SELECT array_agg(format_type(a.atttypid, a.atttypmod) ORDER BY a.attnum) FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped), '{}')
		FROM pg_class c
		JOIN pg_namespace n ON n.oid = c.relnamespace
		LEFT JOIN pg_inherits i ON i.inhrelid = c.oid
		WHERE c.relkind IN ('r', 'p')
		  AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'tenantproxy') AND n.nspname NOT LIKE 'pg\_%'
		  AND (coalesce(cardinality($1::text[]), 0) = 0 OR n.nspname = ANY ($1))
		ORDER BY 2, 3`, schemas)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (liveTable, error) {
		var t liveTable
		var names, types []string
		err := r.Scan(&t.oid, &t.schema, &t.name, &t.parent, &names, &types)
		t.columns = map[string]string{}
		for i := range names {
			t.columns[names[i]] = types[i]
		}
		return t, err
	})
}

// foreignKeys lists the single-column foreign keys between tables.
func foreignKeys(ctx context.Context, conn *pgx.Conn) ([]fkEdge, error) {
	rows, err := conn.Query(ctx, `
		SELECT c.conrelid, a.attname, c.confrelid, fa.attname, c.conname
		FROM pg_constraint c
		JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1]
		JOIN pg_attribute fa ON fa.attrelid = c.confrelid AND fa.attnum = c.confkey[1]
		WHERE c.contype = 'f' AND cardinality(c.conkey) = 1 AND c.conrelid <> c.confrelid
		ORDER BY 1, 2, 3`)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (fkEdge, error) {
		var e fkEdge
		return e, r.Scan(&e.from, &e.column, &e.to, &e.toColumn, &e.constraintNam)
	})
}

// ApplyProposal adds the proposed tables to the stored catalog in one
// transaction, leaving what is already catalogued as it is.
func ApplyProposal(ctx context.Context, conn *pgx.Conn, p *Proposal, by string) (string, error) {
	current, err := Export(ctx, conn)
	if err != nil {
		return "", err
	}
	merged := *current
	merged.Tables = append([]FileTable(nil), current.Tables...)
	added := FileOf(0, p.Tables, Extras{})
	merged.Tables = append(merged.Tables, added.Tables...)
	return Import(ctx, conn, &merged, current.Version, by)
}
