package verify

import (
	"slices"
	"strings"

	pg "github.com/pganalyze/pg_query_go/v5"

	"github.com/tenantproxy/tenantproxy/catalog"
)

// explainStmt checks EXPLAIN: no option that reports other tenants' rows
// (ANALYZE's counters, BUFFERS, WAL), costs explicitly off (estimates come
// from statistics over every tenant), and a checked query.
func (c *checker) explainStmt(e *pg.ExplainStmt) error {
	costsOff := false
	for _, o := range e.GetOptions() {
		d := o.GetDefElem()
		if d == nil {
			return refuse("EXPLAIN option %s is not an option", nodeName(o))
		}
		on := optionOn(d)
		name := strings.ToUpper(d.GetDefname())
		switch strings.ToLower(name) {
		case "costs":
			costsOff = !on
		case "analyze", "buffers", "wal":
			if on {
				return refuse("EXPLAIN %s reports rows of other tenants; the rewriter must refuse it", name)
			}
		case "verbose", "settings", "timing", "summary", "format", "generic_plan":
		default:
			return refuse("EXPLAIN option %s is unknown to the verifier", name)
		}
	}
	if !costsOff {
		return refuse("EXPLAIN without COSTS OFF shows estimates from every tenant's statistics; the rewriter must add COSTS OFF")
	}
	if x := e.GetQuery().GetExecuteStmt(); x != nil {
		return c.fields(x.ProtoReflect(), nil)
	}
	return c.statement(e.GetQuery())
}

// optionOn reads a boolean option the way Postgres's defGetBoolean does,
// counting anything but an explicit false as on.
func optionOn(d *pg.DefElem) bool {
	switch a := d.GetArg(); {
	case a == nil:
		return true
	case a.GetInteger() != nil:
		return a.GetInteger().GetIval() != 0
	case a.GetString_() != nil:
		v := strings.ToLower(a.GetString_().GetSval())
		return v != "false" && v != "off" && v != "0"
	}
	return true
}

// prepareStmt checks PREPARE's query with parameters barred from tenant
// columns.
func (c *checker) prepareStmt(p *pg.PrepareStmt) error {
	for _, t := range p.GetArgtypes() {
		if err := c.visitNode(t); err != nil {
			return err
		}
	}
	c.inPrepare = true
	defer func() { c.inPrepare = false }()
	return c.statement(p.GetQuery())
}

// copyStmt checks COPY: no server files or programs; TO copies a checked
// query or a global table; FROM fills a writable global table only.
func (c *checker) copyStmt(s *pg.CopyStmt) error {
	if s.GetIsProgram() || s.GetFilename() != "" {
		return refuse("COPY with a server file or program")
	}
	for _, o := range s.GetOptions() {
		if err := c.visitNode(o); err != nil {
			return err
		}
	}
	if q := s.GetQuery(); q != nil {
		if s.GetIsFrom() || s.GetRelation() != nil {
			return refuse("COPY with both a query and a table")
		}
		return c.statement(q)
	}
	t, err := c.resolve(s.GetRelation())
	if err != nil {
		return err
	}
	switch {
	case t.Kind == catalog.TenantBound && s.GetIsFrom():
		// The session checks every row it forwards; the statement must
		// name every bound column so each row carries them.
		cols := stringsOf(s.GetAttlist())
		for _, v := range views(t) {
			if !slices.Contains(cols, v.TenantColumn) {
				return refuse("COPY FROM into %s does not list tenant column %s; the rewriter must add it", t.QualifiedName(), v.TenantColumn)
			}
		}
	case t.Kind == catalog.PathBound && s.GetIsFrom() && c.copyChecked:
		// CheckCopy checks the parent of every row after them.
		if !slices.Contains(stringsOf(s.GetAttlist()), t.Via) {
			return refuse("COPY FROM into %s does not list %s; the rewriter must add it", t.QualifiedName(), t.Via)
		}
	case t.Kind != catalog.Global:
		return refuse("COPY of %s table %s; the rewriter must copy a scoped query instead", t.Kind, t.QualifiedName())
	case s.GetIsFrom() && !t.Writable:
		return refuse("COPY FROM into read-only global table %s", t.QualifiedName())
	}
	return c.visitNode(s.GetWhereClause())
}
