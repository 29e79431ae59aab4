package verify

import (
	"testing"

	pg "github.com/pganalyze/pg_query_go/v5"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// TestAllowlistNamesExist catches typos: every allowlisted name must be a
// message of the parse-tree schema.
func TestAllowlistNamesExist(t *testing.T) {
	msgs := (&pg.Node{}).ProtoReflect().Descriptor().ParentFile().Messages()
	for name := range allowed {
		if msgs.ByName(name) == nil {
			t.Errorf("allowlisted node type %s does not exist in pg_query's schema", name)
		}
	}
}

// TestSpecialTypesAreNotAllowlisted keeps table references and statements
// out of the generic walk: they must only be accepted by their handlers.
func TestSpecialTypesAreNotAllowlisted(t *testing.T) {
	for _, name := range []protoreflect.Name{
		"RangeVar", "JoinExpr", "RangeSubselect", "RangeFunction", "RangeTableSample", "RangeTableFunc",
		"WithClause", "CommonTableExpr", "SelectStmt", "InsertStmt", "UpdateStmt", "DeleteStmt", "MergeStmt",
		"IntoClause", "XmlExpr", "XmlSerialize", "CurrentOfExpr", "Constraint", "RoleSpec",
	} {
		if allowed[name] {
			t.Errorf("%s must not be on the generic allowlist", name)
		}
	}
}
