package rewrite

import (
	"fmt"
	"slices"
	"strings"

	pg "github.com/pganalyze/pg_query_go/v5"

	"github.com/tenantproxy/tenantproxy/catalog"
	"github.com/tenantproxy/tenantproxy/rewrite/verify"
)

// The keys of a COPY. Rows of COPY ... FROM STDIN come after the
// statement, so their foreign keys cannot be guarded in its text. Postgres
// checks a foreign key at the end of the statement (an AFTER trigger),
// before the transaction commits; the proxy does the same, in the same
// query string and so the same transaction:
//
//	CREATE TEMP TABLE pg_temp.tenantproxy_copy_keys (n bigint, c integer, v0 <type>, ...);
//	COPY <table> (...) FROM STDIN ...;                   -- the client's rows
//	COPY pg_temp.tenantproxy_copy_keys FROM STDIN ...;   -- the proxy's: each distinct key and its first row
//	SELECT count(ROW(<guard of v0>, ...)) FROM (SELECT * FROM pg_temp.tenantproxy_copy_keys ORDER BY n, c OFFSET 0) AS tenantproxy_copy_keys;
//	DROP TABLE pg_temp.tenantproxy_copy_keys
//
// The guards are the ones a write's values get (referenceGuard): the first
// row, in the client's order, whose key is not a row of the tenant's fails
// the string with the 23503 Postgres gives on the tenant's own database.
// The session relays only the client's COPY (CopyKeys); the rest of the
// string is the proxy's and hidden. The verifier checks the check on its
// own terms (verify.CheckCopyKeys).

// copyKeysTable is the session-private table the keys go through.
const copyKeysTable = verify.CopyKeysTable

// CopyKeys plans the check of the foreign keys a COPY's rows set.
type CopyKeys struct {
	// Fields are, per guarded key in check order, the row fields (0-based,
	// as the client sends them) of its columns: keys-table columns
	// verify.CopyKeyColumn(i, k) hold key i's values.
	Fields [][]int
	// Path: key 0 is a path-bound table's via column, which scopes the
	// rows: its NULLs are checked too (a row of no tenant is refused).
	Path bool
}

// copyKeys finds the guarded keys a COPY into t sets through cols and
// plans their check (nil when it sets none).
func (w *walker) copyKeys(c *pg.CopyStmt, t catalog.Table, cols []string, ci *CopyIn) *CopyKeys {
	var refs []catalog.Reference
	var fields [][]int
	path := t.Kind == catalog.PathBound
	if path {
		fields = append(fields, []int{slices.Index(cols, t.Via)})
	}
	for _, r := range w.guardedReferences(t) {
		idx := make([]int, len(r.Key.Columns))
		set := 0
		for k, col := range r.Key.Columns {
			if idx[k] = slices.Index(cols, col); idx[k] >= 0 {
				set++
			}
		}
		if set == 0 {
			// The columns' defaults apply; a key they make up names a row.
			if defaults := w.keyDefaults(t, r, "COPY FROM"); defaults != nil {
				w.fail(refuseHint("list "+strings.Join(r.Key.Columns, ", ")+" in the COPY with values",
					"COPY FROM into %s leaves foreign key %s to defaults that name a row", t.QualifiedName(), r.Key.Name))
			}
			if w.err != nil {
				return nil
			}
			continue
		}
		if !w.checkableReference(t, r, "COPY FROM") {
			return nil
		}
		if set < len(idx) {
			w.fail(refuseHint("list every column of the key ("+strings.Join(r.Key.Columns, ", ")+")",
				"COPY FROM into %s sets only part of foreign key %s: the proxy cannot check the columns left to their defaults", t.QualifiedName(), r.Key.Name))
			return nil
		}
		refs, fields = append(refs, r), append(fields, idx)
	}
	if len(fields) == 0 {
		return nil
	}
	for _, o := range c.GetOptions() {
		switch name := strings.ToLower(o.GetDefElem().GetDefname()); name {
		case "force_not_null", "force_null", "default":
			w.fail(refuseHint("leave out the "+strings.ToUpper(name)+" option", "COPY FROM into %s: with %s the proxy cannot read the keys it checks as Postgres does", t.QualifiedName(), strings.ToUpper(name)))
			return nil
		}
	}
	keys := &CopyKeys{Fields: fields, Path: path}
	create := []string{"n bigint", "c integer"}
	names := []string{"n", "c"}
	var guards []*pg.Node
	if path {
		// Key 0 is the path: every row's parent must be the session's.
		typ := t.ColumnType(t.Via)
		if typ == "" {
			w.fail(refusef("%s: the catalog does not know the type of %s; reload the catalog", t.QualifiedName(), t.Via))
			return nil
		}
		v := verify.CopyKeyColumn(0, 0)
		create, names = append(create, v+" "+typ), append(names, v)
		guard := w.parentGuard(keysColumn(v), t, "COPY FROM")
		if w.err != nil {
			return nil
		}
		// Only the path's own rows (c = 0): the other keys' rows leave
		// v0 NULL, which the parent guard refuses.
		own := pg.MakeAExprNode(pg.A_Expr_Kind_AEXPR_OP, []*pg.Node{pg.MakeStrNode("=")}, keysColumn("c"), pg.MakeAConstIntNode(0, -1), -1)
		guards = append(guards, &pg.Node{Node: &pg.Node_CaseExpr{CaseExpr: &pg.CaseExpr{
			Args:     []*pg.Node{{Node: &pg.Node_CaseWhen{CaseWhen: &pg.CaseWhen{Expr: own, Result: guard, Location: -1}}}},
			Location: -1,
		}}})
	}
	for _, r := range refs {
		i := len(guards) // the key's place, after the path's
		others := make([]*pg.Node, len(r.Key.Columns))
		for k, col := range r.Key.Columns {
			typ := t.ColumnType(col)
			if typ == "" {
				w.fail(refusef("%s: the catalog does not know the type of %s; reload the catalog", t.QualifiedName(), col))
				return nil
			}
			v := verify.CopyKeyColumn(i, k)
			create = append(create, v+" "+typ)
			names = append(names, v)
			if k > 0 {
				others[k] = keysColumn(v)
			}
		}
		guards = append(guards, w.referenceGuard(keysColumn(verify.CopyKeyColumn(i, 0)), t, r, 0, others))
		if w.err != nil {
			return nil
		}
	}
	check, err := copyCheck(guards)
	if err != nil {
		w.fail(refuseHint("use INSERT, and report this", "the check of the COPY's foreign keys could not be built (%v); this is a gap in the rewriter", err))
		return nil
	}
	ci.keysCreate = "CREATE TEMP TABLE pg_temp." + copyKeysTable + " (" + strings.Join(create, ", ") + ")"
	ci.keysLoad = "COPY pg_temp." + copyKeysTable + " (" + strings.Join(names, ", ") + ") FROM STDIN" + copyKeysOptions(ci)
	ci.keysCheck = check
	return keys
}

// keysColumn is a column of the keys table.
func keysColumn(name string) *pg.Node {
	return pg.MakeColumnRefNode([]*pg.Node{pg.MakeStrNode(copyKeysTable), pg.MakeStrNode(name)}, -1)
}

// copyCheck builds the check statement over the keys table.
func copyCheck(guards []*pg.Node) (string, error) {
	tree, err := pg.Parse("SELECT count(ROW(NULL)) FROM (SELECT * FROM pg_temp." + copyKeysTable + " ORDER BY n, c OFFSET 0) AS " + copyKeysTable)
	if err != nil {
		return "", err
	}
	row := tree.GetStmts()[0].GetStmt().GetSelectStmt().GetTargetList()[0].GetResTarget().GetVal().GetFuncCall().GetArgs()[0].GetRowExpr()
	row.Args = guards
	return pg.Deparse(tree)
}

// copyKeysOptions are the client's format options, so the proxy's rows
// read exactly as the client's fields did.
func copyKeysOptions(ci *CopyIn) string {
	if ci.Binary {
		return " (FORMAT binary)" // the keys go as the client's fields were
	}
	lit := func(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }
	opts := []string{"FORMAT text"}
	if ci.CSV {
		opts = []string{"FORMAT csv", "QUOTE " + lit(string(ci.Quote))}
		if ci.Escape != 0 {
			opts = append(opts, "ESCAPE "+lit(string(ci.Escape)))
		}
	}
	opts = append(opts, "DELIMITER "+lit(string(ci.Delimiter)), "NULL "+lit(ci.Null))
	return fmt.Sprintf(" (%s)", strings.Join(opts, ", "))
}

// copyKeysString is the query string of a COPY whose keys are checked: the
// proxy's statements around the client's (see the top of the file).
func copyKeysString(ci *CopyIn, copySQL string) string {
	return ci.keysCreate + "; " + copySQL + "; " + ci.keysLoad + "; " + ci.keysCheck + "; DROP TABLE pg_temp." + copyKeysTable
}
