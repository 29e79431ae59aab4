package catalog

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/jackc/pgx/v5"
	"gopkg.in/yaml.v3"
)

// File is the catalog as a document to review in version control:
// tenantproxy catalog export writes one, import applies one, diff compares
// one with the stored catalog.
type File struct {
	// Version is the catalog version the file was exported at; it is
	// written in the header comment only, so an unchanged catalog exports
	// the same body at any version.
	Version   int64       `yaml:"-"`
	Tables    []FileTable `yaml:"tables"`
	Functions []string    `yaml:"functions,omitempty"`
	Relations []string    `yaml:"relations,omitempty"`
}

// FileTable is one catalogued table in a File. Name is schema.table,
// quoted like SQL where needed ("My Schema"."T").
type FileTable struct {
	Name      string    `yaml:"name"`
	Kind      Kind      `yaml:"kind"`
	Bindings  []Binding `yaml:"bindings,omitempty"`
	Via       string    `yaml:"via,omitempty"`
	Parent    string    `yaml:"parent,omitempty"`
	ParentKey string    `yaml:"parent_key,omitempty"`
	Writable  bool      `yaml:"writable,omitempty"`
}

// FileOf describes tables and extras as a File.
func FileOf(version int64, tables []Table, extras Extras) *File {
	f := &File{Version: version, Functions: slices.Clone(extras.Functions), Relations: slices.Clone(extras.Relations)}
	for _, t := range tables {
		ft := FileTable{Name: QuoteName(t.Schema, t.Name), Kind: t.Kind, Writable: t.Writable}
		switch t.Kind {
		case TenantBound:
			ft.Bindings = t.Bindings
			if len(ft.Bindings) == 0 {
				ft.Bindings = []Binding{{Column: t.TenantColumn, Claim: t.Claim}}
			}
		case PathBound:
			ps, pn, _ := strings.Cut(t.Parent, ".")
			ft.Via, ft.Parent, ft.ParentKey = t.Via, QuoteName(ps, pn), t.ParentKey
		}
		f.Tables = append(f.Tables, ft)
	}
	sort.Strings(f.Functions)
	sort.Strings(f.Relations)
	return f
}

// QuoteName writes schema.name as a user types it: parts bare when Postgres
// reads them back unchanged, double-quoted otherwise.
func QuoteName(parts ...string) string {
	out := make([]string, len(parts))
	for i, p := range parts {
		out[i] = p
		for j := 0; j < len(p); j++ {
			c := p[j]
			if !('a' <= c && c <= 'z' || c == '_' || j > 0 && ('0' <= c && c <= '9' || c == '$')) {
				out[i] = `"` + strings.ReplaceAll(p, `"`, `""`) + `"`
				break
			}
		}
		if p == "" {
			out[i] = `""`
		}
	}
	return strings.Join(out, ".")
}

// ParseFile reads a catalog file strictly: unknown fields, bad names,
// unknown kinds, duplicates and inconsistent tables (a path to nowhere, a
// loop) are errors naming the entry.
func ParseFile(data []byte) (*File, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var f File
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("catalog file: %w", err)
	}
	if _, err := f.tables(); err != nil {
		return nil, err
	}
	for _, r := range f.Relations {
		if parts, err := SplitName(r); err != nil || len(parts) != 2 || (parts[0] != "pg_catalog" && parts[0] != "information_schema") {
			return nil, fmt.Errorf("catalog file: relation %q: give a system relation as pg_catalog.name or information_schema.name", r)
		}
	}
	for _, fn := range f.Functions {
		if parts, err := SplitName(fn); err != nil || len(parts) > 2 {
			return nil, fmt.Errorf("catalog file: function %q: give it as name or schema.name", fn)
		}
	}
	return &f, nil
}

// tables converts the file's entries to catalog tables and validates them
// together.
func (f *File) tables() ([]Table, error) {
	var out []Table
	for i, ft := range f.Tables {
		t, err := ft.table()
		if err != nil {
			return nil, fmt.Errorf("catalog file: table %d (%s): %w", i+1, ft.Name, err)
		}
		out = append(out, t)
	}
	if _, err := NewSnapshot(0, out); err != nil {
		return nil, fmt.Errorf("catalog file: %w", err)
	}
	return out, nil
}

func (ft FileTable) table() (Table, error) {
	schema, name, err := splitQualified(ft.Name)
	if err != nil {
		return Table{}, err
	}
	t := Table{Schema: schema, Name: name, Kind: ft.Kind, Writable: ft.Writable}
	switch ft.Kind {
	case TenantBound:
		if len(ft.Bindings) == 0 {
			return Table{}, errors.New("a tenant-bound table needs bindings: [{column: tenant_id}]")
		}
		t.Bindings = ft.Bindings
		t.TenantColumn, t.Claim = ft.Bindings[0].Column, ft.Bindings[0].Claim
	case PathBound:
		ps, pn, err := splitQualified(ft.Parent)
		if err != nil {
			return Table{}, fmt.Errorf("parent: %w", err)
		}
		t.Parent, t.Via, t.ParentKey = ps+"."+pn, ft.Via, ft.ParentKey
	case Global:
	default:
		return Table{}, fmt.Errorf("kind %q: use tenant, path or global", ft.Kind)
	}
	if ft.Writable && ft.Kind != Global {
		return Table{}, errors.New("only global tables take writable")
	}
	return t, nil
}

func splitQualified(s string) (string, string, error) {
	parts, err := SplitName(s)
	if err != nil {
		return "", "", err
	}
	if len(parts) != 2 {
		return "", "", fmt.Errorf("%q: write tables as schema.name in a catalog file", s)
	}
	return parts[0], parts[1], nil
}

// Marshal writes the file as YAML with a header comment.
func (f *File) Marshal() ([]byte, error) {
	var b bytes.Buffer
	fmt.Fprintf(&b, "# tenantproxy catalog (version %d). Apply with: tenantproxy catalog import FILE\n", f.Version)
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(f); err != nil {
		return nil, err
	}
	return b.Bytes(), enc.Close()
}

// describe renders one entry for diffs.
func (ft FileTable) describe() string {
	switch ft.Kind {
	case TenantBound:
		var parts []string
		for _, b := range ft.Bindings {
			c := b.Claim
			if c == "" {
				c = "tenant claim"
			}
			parts = append(parts, b.Column+" ← "+c)
		}
		return "tenant-bound on " + strings.Join(parts, ", ")
	case PathBound:
		return fmt.Sprintf("path-bound: %s -> %s.%s", ft.Via, ft.Parent, ft.ParentKey)
	}
	if ft.Writable {
		return "global, writable"
	}
	return "global, read-only"
}

// Diff lists what applying to would change in from, one line each:
// "+ " added, "- " removed, "~ " changed.
func Diff(from, to *File) []string {
	index := func(f *File) map[string]FileTable {
		m := map[string]FileTable{}
		for _, t := range f.Tables {
			if s, n, err := splitQualified(t.Name); err == nil {
				m[QuoteName(s, n)] = t
			}
		}
		return m
	}
	a, b := index(from), index(to)
	var out []string
	for name, t := range b {
		old, ok := a[name]
		switch {
		case !ok:
			out = append(out, "+ table "+name+": "+t.describe())
		case old.describe() != t.describe():
			out = append(out, "~ table "+name+": "+old.describe()+" => "+t.describe())
		}
	}
	for name, t := range a {
		if _, ok := b[name]; !ok {
			out = append(out, "- table "+name+": "+t.describe())
		}
	}
	list := func(kind string, from, to []string) {
		for _, x := range to {
			if !slices.Contains(from, x) {
				out = append(out, "+ "+kind+" "+x)
			}
		}
		for _, x := range from {
			if !slices.Contains(to, x) {
				out = append(out, "- "+kind+" "+x)
			}
		}
	}
	list("function", from.Functions, to.Functions)
	list("relation", from.Relations, to.Relations)
	sort.Slice(out, func(i, j int) bool { return out[i][2:] < out[j][2:] })
	return out
}

// Export reads the stored catalog as a File.
func Export(ctx context.Context, conn *pgx.Conn) (*File, error) {
	var f *File
	err := readStored(ctx, conn, func(st stored) error {
		f = FileOf(st.version, st.tables, st.extras)
		return nil
	})
	return f, err
}

// ErrVersionConflict means the catalog changed after the change was
// planned against it.
var ErrVersionConflict = errors.New("the catalog changed since this change was planned")

// Import replaces the stored catalog with f in one transaction, after
// checking every table against the live schema. expect is the catalog
// version the caller planned against (its diff); if the catalog has moved
// on, nothing is applied and the error wraps ErrVersionConflict. A negative
// expect skips that check.
func Import(ctx context.Context, conn *pgx.Conn, f *File, expect int64, by string) (string, error) {
	tables, err := f.tables()
	if err != nil {
		return "", err
	}
	detail := map[string]any{"tables": len(tables)}
	return transact(ctx, conn, by, "import", detail, func(tx pgx.Tx) (string, error) {
		var current int64
		if err := tx.QueryRow(ctx, "SELECT version FROM tenantproxy.version FOR UPDATE").Scan(&current); err != nil {
			return "", err
		}
		if expect >= 0 && current != expect {
			return "", fmt.Errorf("%w: it is at version %d, the change was planned against %d; run diff again (nothing was applied)", ErrVersionConflict, current, expect)
		}
		for _, t := range tables {
			if err := liveCheck(ctx, tx, t); err != nil {
				return "", err
			}
		}
		if _, err := tx.Exec(ctx, "DELETE FROM tenantproxy.bindings; DELETE FROM tenantproxy.tables; DELETE FROM tenantproxy.allowed"); err != nil {
			return "", err
		}
		for _, t := range tables {
			if err := catalogueable(t.Schema); err != nil {
				return "", err
			}
			if _, err := upsert(ctx, tx, t, by); err != nil {
				return "", err
			}
			for _, b := range t.Bindings[min(1, len(t.Bindings)):] {
				if _, err := addDimension(ctx, tx, t.Schema, t.Name, b.Column, b.Claim); err != nil {
					return "", err
				}
			}
		}
		for kind, names := range map[string][]string{"function": f.Functions, "relation": f.Relations} {
			for _, n := range names {
				if _, err := tx.Exec(ctx, "INSERT INTO tenantproxy.allowed (kind, name, added_by) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING", kind, n, by); err != nil {
					return "", err
				}
			}
		}
		return fmt.Sprintf("imported %d tables, %d functions, %d relations", len(tables), len(f.Functions), len(f.Relations)), nil
	})
}

// liveCheck verifies that a table entry fits the live schema: the table and
// every column it names exist.
func liveCheck(ctx context.Context, tx pgx.Tx, t Table) error {
	name := quoteQualified(t.Schema, t.Name)
	var exists bool
	if err := tx.QueryRow(ctx, "SELECT to_regclass($1) IS NOT NULL", name).Scan(&exists); err != nil {
		return err
	}
	if !exists {
		return fmt.Errorf("table %s does not exist", name)
	}
	cols := []string{t.Via}
	for _, b := range t.Bindings {
		cols = append(cols, b.Column)
	}
	if t.Kind == TenantBound && len(t.Bindings) == 0 {
		cols = append(cols, t.TenantColumn)
	}
	for _, c := range cols {
		if c != "" && !hasColumn(ctx, tx, name, c) {
			return fmt.Errorf("table %s has no column %q", name, c)
		}
	}
	if t.Kind == PathBound {
		ps, pn, _ := strings.Cut(t.Parent, ".")
		if !hasColumn(ctx, tx, quoteQualified(ps, pn), t.ParentKey) {
			return fmt.Errorf("path-bound table %s: parent %s has no column %q", name, quoteQualified(ps, pn), t.ParentKey)
		}
	}
	return nil
}
