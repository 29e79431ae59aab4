package catalog

import (
	"fmt"
	"sort"
	"strings"
)

// Kind says how a catalogued table relates to tenants.
type Kind string

const (
	// TenantBound tables hold rows of many tenants; every row names its tenant
	// in TenantColumn. Reads and writes are confined to the session's tenants.
	TenantBound Kind = "tenant"
	// Global tables hold rows shared by every tenant (countries, plans, ...).
	// Tenants may read them; they may write them only when Writable is set.
	Global Kind = "global"
	// PathBound tables have no tenant column: a row belongs to the tenant
	// of the Parent row its Via column references (comment -> post -> site).
	// Rows whose parent is missing or NULL belong to no tenant.
	PathBound Kind = "path"
)

// maxPathDepth bounds a chain of path-bound tables.
const maxPathDepth = 8

// Binding binds a tenant-bound table to one claim dimension: Column must
// hold one of the session's values for Claim ("" is the primary claim).
type Binding struct {
	Column string `json:"column" yaml:"column"`
	Claim  string `json:"claim,omitempty" yaml:"claim,omitempty"`
}

// Column is one column of a catalogued table, in table order.
type Column struct {
	Name string `json:"name"`
	Type string `json:"type"`
	// Default is the column's default expression as Postgres prints it
	// (pg_get_expr), "" for none; read at each load.
	Default string `json:"default,omitempty"`
}

// Table is one catalogued relation.
type Table struct {
	Schema       string `json:"schema"`
	Name         string `json:"name"`
	Kind         Kind   `json:"kind"`
	TenantColumn string `json:"tenant_column,omitempty"`
	// Claim names the token claim (scope dimension) whose values the tenant
	// column must match. Empty means the proxy's primary tenant claim.
	Claim string `json:"claim,omitempty"`
	// Bindings are every dimension a tenant-bound table is bound on; the
	// first is TenantColumn and Claim (NewSnapshot keeps them in step).
	Bindings []Binding `json:"bindings,omitempty"`
	// Parent ("schema.name"), Via and ParentKey describe a path-bound
	// table: its column Via references the parent's column ParentKey.
	Parent    string `json:"parent,omitempty"`
	Via       string `json:"via,omitempty"`
	ParentKey string `json:"parent_key,omitempty"`
	Writable  bool   `json:"writable,omitempty"`
	// TenantSchema marks a table the rewriter found in the session's own
	// schema under schema-per-tenant isolation; never stored.
	TenantSchema bool     `json:"-"`
	Columns      []Column `json:"columns,omitempty"`
	// ForeignKeys are the table's foreign keys, read from the database
	// at every load (references.go); never stored.
	ForeignKeys []ForeignKey `json:"-"`
	// UniqueKeys are the table's unique indexes, read from the database at
	// every load (unique.go); never stored.
	UniqueKeys []UniqueKey `json:"-"`
}

// Bound reports whether rows of the table belong to tenants (tenant- or
// path-bound).
func (t Table) Bound() bool { return t.Kind == TenantBound || t.Kind == PathBound }

// ColumnType returns a column's type as the catalog knows it, or "".
func (t Table) ColumnType(name string) string {
	for _, c := range t.Columns {
		if c.Name == name {
			return c.Type
		}
	}
	return ""
}

// ColumnDefault returns the default expression of column name ("" for
// none).
func (t Table) ColumnDefault(name string) string {
	for _, c := range t.Columns {
		if c.Name == name {
			return c.Default
		}
	}
	return ""
}

// normalise keeps TenantColumn/Claim and Bindings[0] in step.
func (t *Table) normalise() error {
	if t.Kind != TenantBound {
		return nil
	}
	switch {
	case len(t.Bindings) == 0 && t.TenantColumn != "":
		t.Bindings = []Binding{{Column: t.TenantColumn, Claim: t.Claim}}
	case len(t.Bindings) > 0 && t.TenantColumn == "":
		t.TenantColumn, t.Claim = t.Bindings[0].Column, t.Bindings[0].Claim
	case len(t.Bindings) > 0 && (t.Bindings[0] != Binding{Column: t.TenantColumn, Claim: t.Claim}):
		return fmt.Errorf("catalog: tenant-bound table %s: its first binding must be its tenant column", t.QualifiedName())
	}
	t.Bindings = append([]Binding(nil), t.Bindings...)
	seen := map[string]bool{}
	for _, b := range t.Bindings {
		if b.Column == "" || seen[b.Column] {
			return fmt.Errorf("catalog: tenant-bound table %s binds column %q twice or not at all", t.QualifiedName(), b.Column)
		}
		seen[b.Column] = true
	}
	return nil
}

// QualifiedName returns schema.name as written in messages (unquoted).
func (t Table) QualifiedName() string { return t.Schema + "." + t.Name }

// HasColumn reports whether the table has a column of that name. A table
// whose columns are unknown has none.
func (t Table) HasColumn(name string) bool {
	for _, c := range t.Columns {
		if c.Name == name {
			return true
		}
	}
	return false
}

// Snapshot is an immutable view of the catalog at one version. Loading or
// reloading builds a new Snapshot; nobody changes one after NewSnapshot.
type Snapshot struct {
	version   int64
	tables    map[string]Table
	names     []string
	functions map[string]bool // allowed beyond the built-in list
	relations map[string]bool // system relations allowed beyond the built-in list
	// columnTypes are each table's column types by name, built once.
	columnTypes map[string]map[string]string
}

// Extras are what a catalog allows beyond its tables: functions (by name)
// and system relations (schema.name) the built-in lists do not hold.
type Extras struct {
	Functions []string
	Relations []string
}

// WithExtras returns a copy of s that also allows extras.
func (s *Snapshot) WithExtras(e Extras) *Snapshot {
	out := *s
	out.functions, out.relations = map[string]bool{}, map[string]bool{}
	for _, f := range e.Functions {
		out.functions[strings.ToLower(f)] = true
	}
	for _, r := range e.Relations {
		out.relations[r] = true
	}
	return &out
}

// NewSnapshot validates tables and returns a snapshot of them.
func NewSnapshot(version int64, tables []Table) (*Snapshot, error) {
	s := &Snapshot{version: version, tables: make(map[string]Table, len(tables)), columnTypes: map[string]map[string]string{}}
	for _, t := range tables {
		if t.Schema == "" || t.Name == "" {
			return nil, fmt.Errorf("catalog: table %q has no schema or name", t.QualifiedName())
		}
		if SystemSchemas[t.Schema] || strings.HasPrefix(t.Schema, "pg_temp") {
			return nil, fmt.Errorf("catalog: table %s is in a system schema; system relations are allowed with allow-relation, never catalogued as tables", t.QualifiedName())
		}
		if err := t.normalise(); err != nil {
			return nil, err
		}
		switch t.Kind {
		case TenantBound:
			if t.TenantColumn == "" {
				return nil, fmt.Errorf("catalog: tenant-bound table %s has no tenant column", t.QualifiedName())
			}
			for _, b := range t.Bindings {
				if len(t.Columns) > 0 && !t.HasColumn(b.Column) {
					return nil, fmt.Errorf("catalog: tenant-bound table %s has no column %q", t.QualifiedName(), b.Column)
				}
			}
		case PathBound:
			if t.Parent == "" || t.Via == "" || t.ParentKey == "" {
				return nil, fmt.Errorf("catalog: path-bound table %s needs a parent, a via column and a parent key", t.QualifiedName())
			}
			if len(t.Columns) > 0 && !t.HasColumn(t.Via) {
				return nil, fmt.Errorf("catalog: path-bound table %s has no column %q", t.QualifiedName(), t.Via)
			}
		case Global:
		default:
			return nil, fmt.Errorf("catalog: table %s has unknown kind %q", t.QualifiedName(), t.Kind)
		}
		key := key(t.Schema, t.Name)
		if _, dup := s.tables[key]; dup {
			return nil, fmt.Errorf("catalog: table %s is listed twice", t.QualifiedName())
		}
		t.Columns = append([]Column(nil), t.Columns...)
		s.tables[key] = t
		s.names = append(s.names, key)
		if len(t.Columns) > 0 {
			types := make(map[string]string, len(t.Columns))
			for _, c := range t.Columns {
				types[c.Name] = c.Type
			}
			s.columnTypes[key] = types
		}
	}
	sort.Strings(s.names)
	for _, k := range s.names {
		if t := s.tables[k]; t.Kind == PathBound {
			if _, err := s.chain(t); err != nil {
				return nil, err
			}
		}
	}
	return s, nil
}

// ParentOf returns the parent of a path-bound table.
func (s *Snapshot) ParentOf(t Table) (Table, bool) {
	schema, name, ok := strings.Cut(t.Parent, ".")
	if !ok {
		return Table{}, false
	}
	return s.Lookup(schema, name)
}

// chain follows a path-bound table's parents to its tenant-bound root,
// refusing missing parents, cycles and chains deeper than maxPathDepth.
func (s *Snapshot) chain(t Table) ([]Table, error) {
	out := []Table{t}
	for cur := t; cur.Kind == PathBound; {
		p, ok := s.ParentOf(cur)
		if !ok || !p.Bound() {
			return nil, fmt.Errorf("catalog: path-bound table %s: parent %s is not a tenant- or path-bound table in the catalog", cur.QualifiedName(), cur.Parent)
		}
		if len(p.Columns) > 0 && !p.HasColumn(cur.ParentKey) {
			return nil, fmt.Errorf("catalog: path-bound table %s: parent %s has no column %q", cur.QualifiedName(), p.QualifiedName(), cur.ParentKey)
		}
		if len(out) > maxPathDepth {
			return nil, fmt.Errorf("catalog: path-bound table %s: the chain to its tenant is longer than %d tables or loops", t.QualifiedName(), maxPathDepth)
		}
		out = append(out, p)
		cur = p
	}
	return out, nil
}

// MustSnapshot is NewSnapshot for tests and fixed tables; it panics on error.
func MustSnapshot(version int64, tables ...Table) *Snapshot {
	s, err := NewSnapshot(version, tables)
	if err != nil {
		panic(err)
	}
	return s
}

// Version is the catalog version the snapshot was built from.
func (s *Snapshot) Version() int64 { return s.version }

// Lookup finds a table by its exact (case-sensitive, already folded) schema
// and name.
func (s *Snapshot) Lookup(schema, name string) (Table, bool) {
	t, ok := s.tables[key(schema, name)]
	return t, ok
}

// ColumnTypes returns a table's column types by column name (nil when the
// catalog does not know its columns). The map is shared: do not change it.
func (s *Snapshot) ColumnTypes(schema, name string) map[string]string {
	return s.columnTypes[key(schema, name)]
}

// Tables returns every catalogued table ordered by schema and name.
func (s *Snapshot) Tables() []Table {
	out := make([]Table, 0, len(s.names))
	for _, k := range s.names {
		out = append(out, s.tables[k])
	}
	return out
}

func key(schema, name string) string { return schema + "\x00" + name }

// String summarises the snapshot for logs.
func (s *Snapshot) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "catalog v%d (%d tables)", s.version, len(s.tables))
	return b.String()
}
