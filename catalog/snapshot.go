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
)

// Column is one column of a catalogued table, in table order.
type Column struct {
	Name string `json:"name"`
	Type string `json:"type"`
}

// Table is one catalogued relation.
type Table struct {
	Schema       string `json:"schema"`
	Name         string `json:"name"`
	Kind         Kind   `json:"kind"`
	TenantColumn string `json:"tenant_column,omitempty"`
	// Claim names the token claim (scope dimension) whose values the tenant
	// column must match. Empty means the proxy's primary tenant claim.
	Claim    string   `json:"claim,omitempty"`
	Writable bool     `json:"writable,omitempty"`
	Columns  []Column `json:"columns,omitempty"`
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
	s := &Snapshot{version: version, tables: make(map[string]Table, len(tables))}
	for _, t := range tables {
		if t.Schema == "" || t.Name == "" {
			return nil, fmt.Errorf("catalog: table %q has no schema or name", t.QualifiedName())
		}
		if SystemSchemas[t.Schema] || strings.HasPrefix(t.Schema, "pg_temp") {
			return nil, fmt.Errorf("catalog: table %s is in a system schema; system relations are allowed with allow-relation, never catalogued as tables", t.QualifiedName())
		}
		switch t.Kind {
		case TenantBound:
			if t.TenantColumn == "" {
				return nil, fmt.Errorf("catalog: tenant-bound table %s has no tenant column", t.QualifiedName())
			}
			if len(t.Columns) > 0 && !t.HasColumn(t.TenantColumn) {
				return nil, fmt.Errorf("catalog: tenant-bound table %s has no column %q", t.QualifiedName(), t.TenantColumn)
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
	}
	sort.Strings(s.names)
	return s, nil
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
