package rewrite

import (
	pg "github.com/pganalyze/pg_query_go/v5"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// deparse prints the rewritten tree and proves the text means that tree:
// the output is parsed again and must give back the same statements, source
// positions aside. The deparser has gaps (it printed "FOR UPDATE OF o
// NOWAIT" as "OF oNOWAIT", a lock on another relation); a round trip that
// does not close turns such a gap into a refusal instead of a different
// statement upstream. The tree's positions are cleared in the process.
func deparse(tree *pg.ParseResult) (string, *Rejection) {
	out, err := pg.Deparse(tree)
	if err != nil {
		return "", refusef("the rewritten statement could not be printed (%v)", err)
	}
	again, err := pg.Parse(out)
	if err != nil {
		return "", refusef("the rewritten statement does not parse (%v); this is a gap in the rewriter", err)
	}
	if len(again.GetStmts()) != len(tree.GetStmts()) {
		return "", refusef("the rewritten statement does not read back as written; this is a gap in the rewriter")
	}
	for i, s := range tree.GetStmts() {
		a, b := s.GetStmt(), again.GetStmts()[i].GetStmt()
		clearLocations(a.ProtoReflect())
		clearLocations(b.ProtoReflect())
		if !proto.Equal(a, b) {
			return "", refuseHint("rephrase the statement, and report it",
				"the rewritten statement does not read back as written (the SQL printer cannot express part of it)")
		}
	}
	return out, nil
}

// clearLocations zeroes every "location" field of a message tree.
func clearLocations(m protoreflect.Message) {
	var clear []protoreflect.FieldDescriptor
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		switch {
		case fd.Name() == "location":
			clear = append(clear, fd)
		case fd.Kind() != protoreflect.MessageKind:
		case fd.IsList():
			l := v.List()
			for i := 0; i < l.Len(); i++ {
				clearLocations(l.Get(i).Message())
			}
		case !fd.IsMap():
			clearLocations(v.Message())
		}
		return true
	})
	for _, fd := range clear {
		m.Clear(fd)
	}
}
