package rewrite

import (
	"slices"
	"strings"

	pg "github.com/pganalyze/pg_query_go/v5"
	"github.com/tenantproxy/tenantproxy/catalog"
)

// This file handles the statements that wrap a query: EXPLAIN, PREPARE and
// EXECUTE, cursors and COPY. The wrapped query is rewritten like any other;
// the wrapper itself only gets the checks its own options need.

// explainStmt rewrites EXPLAIN's query. Plans come without cost estimates:
// estimates are computed from statistics over every tenant's rows, which is
// why pg_stats is refused too. EXPLAIN ANALYZE is refused because its
// instrumentation counts rows the tenant filter removed, that is, other
// tenants' rows.
func (w *walker) explainStmt(e *pg.ExplainStmt) {
	costsGiven := false
	for _, o := range e.GetOptions() {
		d := o.GetDefElem()
		switch name := strings.ToLower(d.GetDefname()); name {
		case "costs":
			if defElemTrue(d) {
				w.fail(refuseHint("leave out COSTS: plans through the proxy are shown without estimates",
					"EXPLAIN (COSTS) is not allowed: cost and row estimates come from statistics over every tenant's rows"))
				return
			}
			costsGiven = true
		case "analyze", "buffers", "wal":
			if defElemTrue(d) {
				w.fail(refuseHint("run EXPLAIN without ANALYZE, or run the statement itself to time it",
					"EXPLAIN %s is not allowed: its counters include the rows the tenant filter removed, that is, other tenants' rows", strings.ToUpper(name)))
				return
			}
		case "verbose", "settings", "timing", "summary", "format", "generic_plan":
		default:
			w.fail(refusef("EXPLAIN option %s is not supported", d.GetDefname()))
			return
		}
	}
	switch e.GetQuery().GetNode().(type) {
	case *pg.Node_SelectStmt, *pg.Node_InsertStmt, *pg.Node_UpdateStmt, *pg.Node_DeleteStmt, *pg.Node_MergeStmt:
		w.statement(e.GetQuery(), "EXPLAIN")
	case *pg.Node_ExecuteStmt:
		// The prepared statement went through the proxy when it was
		// prepared, in this session, under its scope.
		w.exprs(e.GetQuery().GetExecuteStmt().GetParams())
	default:
		w.fail(refusef("EXPLAIN of %s is not supported", statementName(e.GetQuery())))
		return
	}
	if !costsGiven {
		e.Options = append(e.Options, &pg.Node{Node: &pg.Node_DefElem{DefElem: &pg.DefElem{Defname: "costs", Arg: pg.MakeStrNode("off"), Defaction: pg.DefElemAction_DEFELEM_UNSPEC, Location: -1}}})
	}
	w.changed = true
}

// defElemTrue reports whether a boolean option is on, read as Postgres's
// defGetBoolean does: no value, a non-zero integer, or anything but "false",
// "off" and "0" (which Postgres would refuse anyway) means on.
func defElemTrue(d *pg.DefElem) bool {
	arg := d.GetArg()
	switch {
	case arg == nil:
		return true
	case arg.GetInteger() != nil:
		return arg.GetInteger().GetIval() != 0
	case arg.GetString_() != nil:
		switch strings.ToLower(arg.GetString_().GetSval()) {
		case "false", "off", "0":
			return false
		}
	}
	return true
}

// prepareStmt rewrites PREPARE's query. Its parameters are bound by EXECUTE
// as SQL expressions the proxy cannot check at Bind, so one may not supply
// the tenant column.
func (w *walker) prepareStmt(p *pg.PrepareStmt) {
	for _, t := range p.GetArgtypes() {
		w.typeName(t.GetTypeName())
	}
	before := len(w.params)
	w.statement(p.GetQuery(), "PREPARE")
	if len(w.params) > before {
		w.fail(refuseHint("leave the tenant column out (the proxy fills it) or write your tenant as a constant",
			"a PREPARE parameter may not supply the tenant column: EXECUTE's arguments cannot be checked"))
	}
}

// copyStmt handles COPY. COPY ... TO STDOUT of a tenant-bound table becomes
// COPY (SELECT ... FROM the scoped table) TO STDOUT; COPY (query) TO STDOUT
// has its query rewritten (connectionState refuses server files and
// programs). COPY FROM STDIN may fill a writable global table.
func (w *walker) copyStmt(c *pg.CopyStmt) {
	w.copyOptions(c.GetOptions())
	if q := c.GetQuery(); q != nil {
		w.statement(q, "COPY")
		return
	}
	if c.GetIsFrom() {
		w.copyFrom(c)
		return
	}
	rv := c.GetRelation()
	if w.isCTE(rv) {
		return
	}
	t, ok := w.resolve(rv)
	if !ok {
		return
	}
	w.changed = true
	if t.Kind == catalog.Global {
		rv.Schemaname, rv.Relname = t.Schema, t.Name
		return
	}
	// COPY t (a, b) TO STDOUT writes exactly what SELECT a, b FROM t returns.
	target := []*pg.Node{pg.MakeResTargetNodeWithVal(pg.MakeColumnRefNode([]*pg.Node{pg.MakeAStarNode()}, -1), -1)}
	if cols := c.GetAttlist(); len(cols) > 0 {
		target = target[:0]
		for _, col := range cols {
			target = append(target, pg.MakeResTargetNodeWithVal(pg.MakeColumnRefNode([]*pg.Node{pg.MakeStrNode(col.GetString_().GetSval())}, -1), -1))
		}
	}
	sel := &pg.SelectStmt{
		TargetList:  target,
		FromClause:  []*pg.Node{{Node: &pg.Node_RangeVar{RangeVar: rv}}},
		LimitOption: pg.LimitOption_LIMIT_OPTION_DEFAULT,
		Op:          pg.SetOperation_SETOP_NONE,
	}
	c.Relation, c.Attlist = nil, nil
	c.Query = &pg.Node{Node: &pg.Node_SelectStmt{SelectStmt: sel}}
	w.statement(c.Query, "COPY")
}

// copyFrom handles COPY FROM STDIN: into a writable global table as
// written, unless it has keys to check; into a bound table checked.
func (w *walker) copyFrom(c *pg.CopyStmt) {
	t, bound := w.target(c.GetRelation(), "COPY FROM")
	if w.err != nil {
		return
	}
	w.expr(c.GetWhereClause())
	if bound || keyed(t) && len(w.guardedReferences(t)) > 0 {
		w.copyInto(c, t)
	}
}

// copyInto plans the row checks of COPY ... FROM STDIN into a bound table:
// every binding column the client sends must hold a session value; one it
// leaves out is added to the column list and filled by the proxy. A
// path-bound table's rows are checked after them, with their keys: each
// via value must be a parent row of the session's (copykeys.go).
func (w *walker) copyInto(c *pg.CopyStmt, t catalog.Table) {
	ci := &CopyIn{Delimiter: '\t', Null: `\N`, Quote: '"', Escape: 0}
	if w.copyFormat(c.GetOptions(), ci); w.err != nil {
		return
	}
	var cols []string
	for _, a := range c.GetAttlist() {
		cols = append(cols, a.GetString_().GetSval())
	}
	if len(cols) == 0 {
		// Name the columns, so the statement says what each field is.
		for _, col := range t.Columns {
			cols = append(cols, col.Name)
			c.Attlist = append(c.Attlist, pg.MakeStrNode(col.Name))
		}
		if len(cols) == 0 {
			w.fail(refuseHint("list the columns: COPY t (a, b) FROM STDIN", "COPY FROM into %s without a column list: the catalog does not know its columns", t.QualifiedName()))
			return
		}
	}
	ci.Fields = len(cols)
	if t.Kind == catalog.PathBound && !slices.Contains(cols, t.Via) {
		w.fail(refuseHint("list "+t.Via+" in the COPY", "COPY FROM into path-bound table %s must send %s, the column that says whose each row is", t.QualifiedName(), t.Via))
		return
	}
	for _, v := range bindingViews(t) {
		vals := w.tenants(v)
		if w.err != nil {
			return
		}
		typ := t.ColumnType(v.TenantColumn)
		if ci.Binary && !binaryTenantType(typ) {
			w.fail(refuseHint("use FORMAT text or csv", "COPY FROM in binary format into %s: the proxy cannot read tenant column %s of type %q", t.QualifiedName(), v.TenantColumn, typ))
			return
		}
		if i := slices.Index(cols, v.TenantColumn); i >= 0 {
			ci.Checks = append(ci.Checks, CopyCheck{Field: i, Column: v.TenantColumn, Type: typ, Values: vals})
			continue
		}
		if len(vals) != 1 {
			w.fail(refuseHint("name the tenant column in the COPY column list", "the token covers several tenants, so COPY into %s must send the tenant column %s", t.QualifiedName(), v.TenantColumn))
			return
		}
		c.Attlist = append(c.Attlist, pg.MakeStrNode(v.TenantColumn))
		ci.Fill = append(ci.Fill, vals[0])
		ci.FillTypes = append(ci.FillTypes, typ)
	}
	if ci.Keys = w.copyKeys(c, t, cols, ci); w.err != nil {
		return
	}
	if t.Kind == catalog.Global && ci.Keys == nil {
		return // sets none of its keys: as written
	}
	w.copyIn = ci
	w.changed = true
}

// copyFormat reads the COPY options that decide how rows are written.
func (w *walker) copyFormat(opts []*pg.Node, ci *CopyIn) {
	str := func(d *pg.DefElem) string { return d.GetArg().GetString_().GetSval() }
	for _, o := range opts {
		d := o.GetDefElem()
		switch strings.ToLower(d.GetDefname()) {
		case "format":
			switch strings.ToLower(str(d)) {
			case "csv":
				ci.CSV, ci.Delimiter, ci.Null = true, ',', ""
			case "binary":
				ci.Binary = true
			case "text":
			default:
				w.fail(refuseHint("use FORMAT text or csv", "COPY FROM into a tenant-bound table in %s format is not supported: the proxy must read each row's tenant", str(d)))
				return
			}
		}
	}
	for _, o := range opts {
		d := o.GetDefElem()
		one := func(what string) byte {
			v := str(d)
			if len(v) != 1 {
				w.fail(refusef("COPY %s must be a single one-byte character", what))
				return 0
			}
			return v[0]
		}
		switch name := strings.ToLower(d.GetDefname()); name {
		case "format", "force_not_null", "force_null", "freeze", "default":
		case "delimiter":
			ci.Delimiter = one("DELIMITER")
		case "quote":
			ci.Quote = one("QUOTE")
		case "escape":
			ci.Escape = one("ESCAPE")
		case "null":
			ci.Null = str(d)
		case "header":
			if d.GetArg() != nil && strings.EqualFold(str(d), "match") {
				w.fail(refuseHint("use HEADER true", "COPY HEADER MATCH into a tenant-bound table is not supported"))
				return
			}
			ci.Header = defElemTrue(d)
		case "encoding":
			if n := strings.NewReplacer("-", "", "_", "").Replace(strings.ToLower(str(d))); n != "utf8" {
				w.fail(refuseHint("send UTF8", "COPY ENCODING %s into a tenant-bound table is not supported", str(d)))
				return
			}
		default:
			w.fail(refusef("COPY option %s is not supported for tenant-bound tables", name))
			return
		}
	}
	if ci.Escape == 0 {
		ci.Escape = ci.Quote
	}
}

// copyOptionArgs says, per COPY option, whether it needs a value. Options
// are checked before the statement is printed back: the SQL printer cannot
// write a valueless FORMAT, DELIMITER, ... (and would crash on one).
var copyOptionArgs = map[string]bool{
	"format": true, "delimiter": true, "null": true, "quote": true, "escape": true, "encoding": true,
	"force_quote": true, "force_not_null": true, "force_null": true, "default": true,
	"header": false, "freeze": false,
}

// copyStringOptions take a string or a name, nothing else (the printer
// crashes on a number there too).
var copyStringOptions = toSet("format delimiter null quote escape encoding")

func (w *walker) copyOptions(opts []*pg.Node) {
	for _, o := range opts {
		d := o.GetDefElem()
		needsArg, known := copyOptionArgs[strings.ToLower(d.GetDefname())]
		switch {
		case d == nil || !known:
			w.fail(refusef("COPY option %s is not supported", d.GetDefname()))
			return
		case needsArg && d.GetArg() == nil:
			w.fail(refuseHint("give the option a value, e.g. (FORMAT csv)", "COPY option %s needs a value", strings.ToUpper(d.GetDefname())))
			return
		case copyStringOptions[strings.ToLower(d.GetDefname())] && d.GetArg().GetString_() == nil:
			w.fail(refuseHint("give it as a string, e.g. (DELIMITER ';')", "COPY option %s takes a string", strings.ToUpper(d.GetDefname())))
			return
		}
		w.expr(d.GetArg())
	}
}

// binaryTenantType reports whether the proxy reads and writes a tenant
// column of this type in the binary COPY format.
func binaryTenantType(typ string) bool {
	switch {
	case typ == "smallint", typ == "integer", typ == "bigint", typ == "text", typ == "uuid",
		strings.HasPrefix(typ, "character varying"):
		return true
	}
	return false
}
