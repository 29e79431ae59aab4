package leakproof

import (
	pg "github.com/pganalyze/pg_query_go/v5"
)

// Table is what the caller knows of a relation a RangeVar names.
type Table struct {
	// Columns maps column names to their types as the catalog spells
	// them; nil when unknown.
	Columns map[string]string
	// Bound reports a tenant-bound, multi-dimension or path-bound table.
	Bound bool
}

// Env resolves what the scanner cannot know from the tree alone.
type Env interface {
	// Table resolves a relation reference that is not a CTE; ok is false
	// when the name is unknown.
	Table(rv *pg.RangeVar) (t Table, ok bool)
}

// item is one name a query level's FROM clause makes visible.
type item struct {
	name string
	cols map[string]string // nil: unknown columns
	rv   *pg.RangeVar      // the table reference, for a plain table
	// bound: rv is a bound table (a filter will apply to it).
	bound bool
}

// level is one query level (a SELECT, an UPDATE, ...) and the levels
// around it, whose items its expressions may also reference.
type level struct {
	items  []*item
	parent *level
	// ctes names the CTEs visible here (outer levels' included).
	ctes map[string]bool
}

func (l *level) child() *level {
	return &level{parent: l, ctes: l.cteNames()}
}

func (l *level) cteNames() map[string]bool {
	out := map[string]bool{}
	if l != nil {
		for k := range l.ctes {
			out[k] = true
		}
	}
	return out
}

// owner finds the item a column reference names, and the column's type
// ("" when unknown). own reports that the item is at this level (not an
// outer one); it is nil when the reference cannot be resolved with
// certainty.
func (l *level) owner(c *pg.ColumnRef) (it *item, typ string, own bool) {
	fields := c.GetFields()
	var names []string
	for _, f := range fields {
		s := f.GetString_()
		if s == nil {
			return nil, "", false // a * or something stranger
		}
		names = append(names, s.GetSval())
	}
	switch len(names) {
	case 1:
		col := names[0]
		for lv := l; lv != nil; lv = lv.parent {
			var found []*item
			for _, it := range lv.items {
				if it.cols == nil {
					// An item whose columns we do not know may hold
					// the name: the reference is ambiguous to us.
					return nil, "", false
				}
				if _, ok := it.cols[col]; ok {
					found = append(found, it)
				}
			}
			if len(found) == 0 {
				continue
			}
			typ := found[0].cols[col]
			for _, f := range found[1:] {
				if FamilyOf(f.cols[col]) != FamilyOf(typ) {
					typ = ""
				}
			}
			if len(found) > 1 {
				// USING/NATURAL merged column, or a Postgres error.
				return nil, typ, false
			}
			return found[0], typ, lv == l
		}
		return nil, "", false
	case 2:
		for lv := l; lv != nil; lv = lv.parent {
			for _, it := range lv.items {
				if it.name == names[0] {
					if it.cols == nil {
						return it, "", lv == l
					}
					typ, ok := it.cols[names[1]]
					if !ok {
						return nil, "", false
					}
					return it, typ, lv == l
				}
			}
		}
	}
	return nil, "", false
}
