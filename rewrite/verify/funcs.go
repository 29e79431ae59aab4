package verify

import (
	"strings"

	pg "github.com/pganalyze/pg_query_go/v5"
)

// systemColumns exist on every table and bypass a derived table's column
// list; they are refused everywhere.
var systemColumns = map[string]bool{
	"ctid": true, "xmin": true, "xmax": true, "cmin": true, "cmax": true, "tableoid": true,
}

// checkColumnRef refuses references to system columns (in any position of
// the name, so an alias spelled like one is refused too: fail closed).
func checkColumnRef(cr *pg.ColumnRef) error {
	return checkSystemNames(cr.GetFields())
}

// checkSystemNames refuses system column names in a name or indirection
// list. Field selection on a table's whole-row reference, (t).ctid, reaches
// system columns just like t.ctid does.
func checkSystemNames(ns []*pg.Node) error {
	for _, n := range ns {
		if s := n.GetString_(); s != nil && systemColumns[strings.ToLower(s.GetSval())] {
			return refuse("system column %s is referenced; the rewriter must refuse system columns", s.GetSval())
		}
	}
	return nil
}

// deniedFuncs run SQL text, read files or other tables, or touch state that
// is not tenant-confined. The rewriter's allowlist is the primary guard;
// this is the second opinion on the worst ones.
var deniedFuncs = map[string]bool{
	"query_to_xml": true, "query_to_xmlschema": true, "query_to_xml_and_xmlschema": true,
	"cursor_to_xml": true, "cursor_to_xmlschema": true,
	"table_to_xml": true, "table_to_xmlschema": true, "table_to_xml_and_xmlschema": true,
	"schema_to_xml": true, "schema_to_xmlschema": true, "schema_to_xml_and_xmlschema": true,
	"database_to_xml": true, "database_to_xmlschema": true, "database_to_xml_and_xmlschema": true,
	"ts_stat": true, "ts_rewrite": true,
	"pg_read_file": true, "pg_read_binary_file": true, "pg_stat_file": true,
	"pg_file_write": true, "pg_file_rename": true, "pg_file_unlink": true, "pg_logdir_ls": true,
	"loread": true, "lowrite": true,
	"set_config": true, "nextval": true, "currval": true, "setval": true, "lastval": true,
	"pg_listening_channels": true, "pg_cancel_backend": true, "pg_terminate_backend": true,
	"pg_relation_size": true, "pg_table_size": true, "pg_indexes_size": true, "pg_total_relation_size": true,
	"pg_database_size": true, "pg_sequence_last_value": true,
}

// deniedPrefixes cover function families: dblink_*, lo_* (large objects are
// not tenant-confined), pg_ls_* (directory listings).
var deniedPrefixes = []string{"dblink", "lo_", "pg_ls_", "pg_stat_"}

// checkFuncCall refuses schema-qualified functions outside pg_catalog and
// the denied functions.
func (c *checker) checkFuncCall(f *pg.FuncCall) error {
	name := stringsOf(f.GetFuncname())
	if len(name) != len(f.GetFuncname()) || len(name) == 0 || len(name) > 2 {
		return refuse("function name %v is malformed", name)
	}
	if len(name) == 2 && name[0] != "pg_catalog" && !c.p.Snapshot.FunctionAllowed(name[0]+"."+name[1]) {
		return refuse("function %s.%s is outside pg_catalog and not allowed by the catalog", name[0], name[1])
	}
	base := strings.ToLower(name[len(name)-1])
	if systemColumns[base] {
		// ctid(t) is functional notation for t.ctid.
		return refuse("system column %s is referenced in function notation; the rewriter must refuse system columns", base)
	}
	if base == "pg_notify" && (len(name) == 1 || name[0] == "pg_catalog") {
		// Channels are shared by every tenant: pg_notify must name one in
		// the session's channel space (notify.go).
		if err := c.notifyCall(f); err != nil {
			return err
		}
	}
	if deniedFuncs[base] {
		return refuse("function %s runs SQL, reads files or touches state shared between tenants", base)
	}
	for _, p := range deniedPrefixes {
		if strings.HasPrefix(base, p) {
			return refuse("function %s runs SQL, reads files or touches state shared between tenants", base)
		}
	}
	return nil
}

// checkOperator refuses operators qualified with a schema other than
// pg_catalog (OPERATOR(s.op)), for the same reason as functions.
func checkOperator(name []*pg.Node) error {
	s := stringsOf(name)
	if len(s) != len(name) || len(s) > 2 {
		return refuse("operator name %v is malformed", s)
	}
	if len(s) == 2 && s[0] != "pg_catalog" {
		return refuse("operator %s.%s is outside pg_catalog; only built-in operators may be used", s[0], s[1])
	}
	return nil
}
