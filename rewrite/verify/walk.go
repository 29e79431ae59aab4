package verify

import (
	"fmt"

	pg "github.com/pganalyze/pg_query_go/v5"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// allowed lists the parse-tree message types the generic walk may descend
// into. Everything else is refused, so a node type added by a new parser
// version, or one we chose not to support (XmlExpr, RangeTableSample,
// RangeTableFunc, CurrentOfExpr, IntoClause, ...), is never waved through.
//
// Statements, FROM items (RangeVar, JoinExpr, RangeSubselect,
// RangeFunction) and WITH clauses have their own handlers and are absent
// here, so meeting one anywhere else is an error. ColumnRef, FuncCall, A_Expr,
// A_Indirection, SubLink and LockingClause get an extra check in visit.
var allowed = map[protoreflect.Name]bool{
	"Node": true, "List": true,
	"Integer": true, "Float": true, "Boolean": true, "String": true, "BitString": true,
	"A_Const": true, "Alias": true, "ParamRef": true, "TypeCast": true, "TypeName": true,
	"CollateClause": true, "A_Star": true, "A_Indices": true,
	"A_ArrayExpr": true, "ResTarget": true, "MultiAssignRef": true, "SortBy": true,
	"WindowDef": true, "BoolExpr": true, "CaseExpr": true, "CaseWhen": true,
	"RowExpr": true, "CoalesceExpr": true, "MinMaxExpr": true, "SQLValueFunction": true,
	"NullTest": true, "BooleanTest": true, "SetToDefault": true, "GroupingSet": true,
	"GroupingFunc": true, "NamedArgExpr": true, "SubLink": true,
	"ColumnDef":        true, // f(...) AS x(a int); its Constraint children stay refused
	"OnConflictClause": true, "InferClause": true, "IndexElem": true, "DefElem": true,
	"MergeWhenClause": true, // MergeStmt's own checks come first
	"CTESearchClause": true, "CTECycleClause": true,
	"JsonFormat": true, "JsonReturning": true, "JsonValueExpr": true, "JsonOutput": true,
	"JsonKeyValue": true, "JsonObjectConstructor": true, "JsonArrayConstructor": true,
	"JsonArrayQueryConstructor": true, "JsonAggConstructor": true, "JsonObjectAgg": true,
	"JsonArrayAgg": true, "JsonIsPredicate": true,
}

// visit checks one message reached by the generic walk.
func (c *checker) visit(m protoreflect.Message) error {
	switch x := m.Interface().(type) {
	case *pg.SelectStmt:
		// A SELECT anywhere (sub-link, derived table, INSERT source, JSON
		// constructor) is a query level of its own with its own rules.
		return c.selectStmt(x)
	case *pg.InsertStmt, *pg.UpdateStmt, *pg.DeleteStmt:
		return refuse("data-modifying statement in a position Postgres allows only for WITH bodies")
	case *pg.RangeVar:
		return refuse("table reference %s in a position the verifier does not understand", rvName(x))
	case *pg.ColumnRef:
		if err := checkColumnRef(x); err != nil {
			return err
		}
	case *pg.FuncCall:
		if err := c.checkFuncCall(x); err != nil {
			return err
		}
	case *pg.A_Expr:
		if err := checkOperator(x.GetName()); err != nil {
			return err
		}
	case *pg.A_Indirection:
		if err := checkSystemNames(x.GetIndirection()); err != nil {
			return err
		}
	case *pg.SubLink:
		if err := checkOperator(x.GetOperName()); err != nil {
			return err
		}
	case *pg.LockingClause:
		// locked_rels names FROM items of this level (Postgres refuses any
		// other name); they are not table references of their own.
		return c.fields(m, skipLocking)
	default:
		if !allowed[m.Descriptor().Name()] {
			return refuse("node type %s is not supported by the verifier", m.Descriptor().Name())
		}
	}
	return c.fields(m, nil)
}

// visitNode visits a *pg.Node (nil-safe).
func (c *checker) visitNode(n *pg.Node) error {
	if n == nil {
		return nil
	}
	return c.visit(n.ProtoReflect())
}

// fields walks every populated message field of m except those in skip.
func (c *checker) fields(m protoreflect.Message, skip fieldSet) error {
	var err error
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		if skip[fd.Name()] {
			return true
		}
		switch {
		case fd.IsMap():
			err = refuse("unexpected map field %s in %s", fd.Name(), m.Descriptor().Name())
		case fd.Kind() != protoreflect.MessageKind && fd.Kind() != protoreflect.GroupKind:
			// scalars and enums carry no children
		case fd.IsList():
			l := v.List()
			for i := 0; i < l.Len() && err == nil; i++ {
				err = c.visit(l.Get(i).Message())
			}
		default:
			err = c.visit(v.Message())
		}
		return err == nil
	})
	return err
}

// fieldSet names fields a handler deals with itself.
type fieldSet map[protoreflect.Name]bool

// handled builds a fieldSet for msg and panics at package init if a name is
// not a field of msg, so a typo can never silently skip a child.
func handled(msg proto.Message, names ...protoreflect.Name) fieldSet {
	fs := msg.ProtoReflect().Descriptor().Fields()
	set := fieldSet{}
	for _, n := range names {
		if fs.ByName(n) == nil {
			panic(fmt.Sprintf("verify: %s has no field %s", msg.ProtoReflect().Descriptor().Name(), n))
		}
		set[n] = true
	}
	return set
}

var (
	skipSelect  = handled(&pg.SelectStmt{}, "with_clause", "from_clause")
	skipInsert  = handled(&pg.InsertStmt{}, "with_clause", "relation")
	skipUpdate  = handled(&pg.UpdateStmt{}, "with_clause", "relation", "from_clause")
	skipDelete  = handled(&pg.DeleteStmt{}, "with_clause", "relation", "using_clause")
	skipJoin    = handled(&pg.JoinExpr{}, "larg", "rarg")
	skipCTE     = handled(&pg.CommonTableExpr{}, "ctequery")
	skipWith    = handled(&pg.WithClause{}, "ctes")
	skipLocking = handled(&pg.LockingClause{}, "locked_rels")
)

// nodeName is the message type name inside a Node wrapper.
func nodeName(n *pg.Node) string {
	if n == nil || n.GetNode() == nil {
		return "<empty>"
	}
	m := n.ProtoReflect()
	od := m.Descriptor().Oneofs().ByName("node")
	if od == nil {
		return "<unknown>"
	}
	fd := m.WhichOneof(od)
	if fd == nil || fd.Message() == nil {
		return "<unknown>"
	}
	return string(fd.Message().Name())
}

// rvName renders a RangeVar for messages.
func rvName(rv *pg.RangeVar) string {
	s := rv.GetRelname()
	if rv.GetSchemaname() != "" {
		s = rv.GetSchemaname() + "." + s
	}
	if rv.GetCatalogname() != "" {
		s = rv.GetCatalogname() + "." + s
	}
	if a := rv.GetAlias().GetAliasname(); a != "" {
		s += " AS " + a
	}
	return s
}
