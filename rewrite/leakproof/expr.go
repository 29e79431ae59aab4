package leakproof

import (
	pg "github.com/pganalyze/pg_query_go/v5"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// safe reports whether expression n is leakproof: evaluated on any row, it
// raises no error and takes no time that depends on the row's values.
// Along the way it scans every sub-select n holds, as query levels of
// their own.
func (s *scanner) safe(n *pg.Node, l *level) bool {
	if n == nil || n.GetNode() == nil {
		return true // absent, or plain DISTINCT's empty item
	}
	if s.opts.Generated != nil && s.opts.Generated(n) {
		return true
	}
	switch x := n.GetNode().(type) {
	case *pg.Node_ColumnRef, *pg.Node_AConst, *pg.Node_ParamRef, *pg.Node_SqlvalueFunction:
		// Reading a column is leakproof; so is a constant.
		return true
	case *pg.Node_ResTarget:
		return s.safe(x.ResTarget.GetVal(), l)
	case *pg.Node_SortBy:
		return s.safe(x.SortBy.GetNode(), l)
	case *pg.Node_TypeCast:
		// A cast of a constant or a parameter is evaluated once, whatever
		// the rows; a cast of a column is not leakproof in general.
		if constLeaf(x.TypeCast.GetArg()) {
			return true
		}
	case *pg.Node_BoolExpr:
		ok := true
		for _, a := range x.BoolExpr.GetArgs() {
			ok = s.safe(a, l) && ok
		}
		return ok
	case *pg.Node_NullTest:
		return s.safe(x.NullTest.GetArg(), l)
	case *pg.Node_BooleanTest:
		return s.safe(x.BooleanTest.GetArg(), l)
	case *pg.Node_AExpr:
		if s.comparison(x.AExpr, l) {
			return true
		}
	case *pg.Node_SubLink:
		return s.subLink(x.SubLink, l)
	case *pg.Node_FuncCall:
		if s.funcCall(x.FuncCall, l) {
			return true
		}
	}
	s.nested(n, l)
	return false
}

// constLeaf reports a constant or a parameter, possibly cast.
func constLeaf(n *pg.Node) bool {
	switch x := n.GetNode().(type) {
	case *pg.Node_AConst, *pg.Node_ParamRef:
		return true
	case *pg.Node_TypeCast:
		return constLeaf(x.TypeCast.GetArg())
	}
	return false
}

// nested scans the sub-selects anywhere below n (an expression that is not
// leakproof itself: its query levels still need their own answers).
func (s *scanner) nested(n *pg.Node, l *level) {
	var walk func(m protoreflect.Message)
	walk = func(m protoreflect.Message) {
		if sl, ok := m.Interface().(*pg.SubLink); ok {
			s.subLink(sl, l)
			return
		}
		m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
			switch {
			case fd.IsList() && fd.Message() != nil:
				list := v.List()
				for i := 0; i < list.Len(); i++ {
					walk(list.Get(i).Message())
				}
			case fd.Message() != nil && !fd.IsMap():
				walk(v.Message())
			}
			return true
		})
	}
	if n != nil {
		walk(n.ProtoReflect())
	}
}

// subLink scans a sub-select and says whether the sub-link as an
// expression is leakproof: EXISTS of a level whose every expression is,
// or col IN (SELECT col ...) comparing one family.
func (s *scanner) subLink(sl *pg.SubLink, l *level) bool {
	sub := sl.GetSubselect().GetSelectStmt()
	if sub == nil {
		s.nested(sl.GetSubselect(), l)
		return false
	}
	inner, ok := s.subLevel(sub, l)
	switch sl.GetSubLinkType() {
	case pg.SubLinkType_EXISTS_SUBLINK:
		return ok
	case pg.SubLinkType_ANY_SUBLINK:
		test := s.safe(sl.GetTestexpr(), l)
		if !ok || !test || !comparisonName(sl.GetOperName(), true) || len(sub.GetTargetList()) != 1 {
			return false
		}
		fa, ka := s.leaf(sl.GetTestexpr(), l)
		fb, kb := s.leaf(sub.GetTargetList()[0].GetResTarget().GetVal(), inner)
		return ka == column && kb == column && fa != "" && fa == fb
	case pg.SubLinkType_ARRAY_SUBLINK:
		return ok
	case pg.SubLinkType_EXPR_SUBLINK:
		// A scalar sub-select fails when it returns more than one row:
		// only one that cannot is leakproof.
		return ok && s.oneRow(sub)
	}
	s.safe(sl.GetTestexpr(), l)
	return false
}

// subLevel scans a sub-link's sub-select once.
func (s *scanner) subLevel(sub *pg.SelectStmt, l *level) (*level, bool) {
	if done, ok := s.sublinks[sub]; ok {
		return done.l, done.ok
	}
	inner, ok := s.selectLevel(sub, l)
	if s.sublinks == nil {
		s.sublinks = map[*pg.SelectStmt]scanned{}
	}
	s.sublinks[sub] = scanned{inner, ok}
	return inner, ok
}

// oneRow reports a SELECT that returns at most one row of one column:
// an aggregate without GROUP BY, or LIMIT 1.
func (s *scanner) oneRow(sub *pg.SelectStmt) bool {
	if sub.GetOp() != pg.SetOperation_SETOP_NONE || len(sub.GetTargetList()) != 1 || len(sub.GetValuesLists()) > 0 {
		return false
	}
	if lc := sub.GetLimitCount().GetAConst(); lc != nil {
		s.rep.ReadConstant = true
		if lc.GetIval() != nil && lc.GetIval().GetIval() <= 1 {
			return true
		}
	}
	f := sub.GetTargetList()[0].GetResTarget().GetVal().GetFuncCall()
	if f == nil || f.GetOver() != nil || len(sub.GetGroupClause()) > 0 || sub.GetHavingClause() != nil {
		return false
	}
	switch funcName(f) {
	case "count", "min", "max", "sum", "avg":
		return true
	}
	return false
}

// valueFamily types a one-value sub-select or an aggregate: count is an
// integer, min and max have their column's family, a column its own.
func (s *scanner) valueFamily(n *pg.Node, l *level) Family {
	switch x := n.GetNode().(type) {
	case *pg.Node_ColumnRef:
		_, typ, _ := l.owner(x.ColumnRef)
		return FamilyOf(typ)
	case *pg.Node_FuncCall:
		switch funcName(x.FuncCall) {
		case "count":
			return Int
		case "min", "max":
			if args := x.FuncCall.GetArgs(); len(args) == 1 {
				return s.valueFamily(args[0], l)
			}
		}
	}
	return ""
}

// comparisonName reports one of the leakproof comparison operators, bare
// or pg_catalog-qualified (empty for IN (SELECT ...) when allowEmpty).
func comparisonName(names []*pg.Node, allowEmpty bool) bool {
	if len(names) == 0 {
		return allowEmpty
	}
	if len(names) == 2 && names[0].GetString_().GetSval() != "pg_catalog" || len(names) > 2 {
		return false
	}
	switch names[len(names)-1].GetString_().GetSval() {
	case "=", "<>", "!=", "<", "<=", ">", ">=":
		return true
	}
	return false
}

// comparison decides A_Expr: a comparison of columns, constants and
// parameters of one family (=, <, IN (...), BETWEEN, IS DISTINCT FROM,
// = ANY (...)).
func (s *scanner) comparison(e *pg.A_Expr, l *level) bool {
	lx, rx := e.GetLexpr(), e.GetRexpr()
	switch e.GetKind() {
	case pg.A_Expr_Kind_AEXPR_OP, pg.A_Expr_Kind_AEXPR_DISTINCT, pg.A_Expr_Kind_AEXPR_NOT_DISTINCT:
		if lx == nil || rx == nil || !comparisonName(e.GetName(), false) {
			return false
		}
		return s.compare(lx, rx, l)
	case pg.A_Expr_Kind_AEXPR_IN:
		items := rx.GetList().GetItems()
		if !comparisonName(e.GetName(), false) || len(items) == 0 {
			return false
		}
		for _, it := range items {
			if !s.compare(lx, it, l) {
				return false
			}
		}
		return true
	case pg.A_Expr_Kind_AEXPR_BETWEEN, pg.A_Expr_Kind_AEXPR_NOT_BETWEEN,
		pg.A_Expr_Kind_AEXPR_BETWEEN_SYM, pg.A_Expr_Kind_AEXPR_NOT_BETWEEN_SYM:
		items := rx.GetList().GetItems()
		if len(items) != 2 {
			return false
		}
		return s.compare(lx, items[0], l) && s.compare(lx, items[1], l)
	case pg.A_Expr_Kind_AEXPR_OP_ANY, pg.A_Expr_Kind_AEXPR_OP_ALL:
		if !comparisonName(e.GetName(), false) {
			return false
		}
		return s.compareArray(lx, rx, l)
	}
	return false
}

// leafKind says what a comparison operand is.
type leafKind int

const (
	invalid   leafKind = iota // not a leaf we can type
	column                    // a column of a known or unknown family
	untyped                   // a string literal or NULL: takes the other side's type
	intConst                  // an integer literal
	numConst                  // a numeric literal with a fraction or exponent
	boolConst                 // TRUE or FALSE
	param                     // $n
	typed                     // a constant of a known family (a cast, CURRENT_DATE, now())
)

// leaf classifies a comparison operand. For a column and a typed
// constant it returns the family ("" when unknown).
func (s *scanner) leaf(n *pg.Node, l *level) (Family, leafKind) {
	switch x := n.GetNode().(type) {
	case *pg.Node_ColumnRef:
		_, typ, _ := l.owner(x.ColumnRef)
		return FamilyOf(typ), column
	case *pg.Node_AConst:
		c := x.AConst
		switch {
		case c.GetIsnull() || c.GetSval() != nil:
			return "", untyped
		case c.GetIval() != nil:
			return "", intConst
		case c.GetFval() != nil:
			// 1.5 and integers beyond int8: the column is compared as
			// numeric, which Postgres does not mark leakproof but which
			// cannot fail for an integer or float column. Deciding the
			// same for every numeric constant keeps a cached template
			// (whose markers are ten-digit or .5 numbers) right.
			return "", intConst
		case c.GetBoolval() != nil:
			return "", boolConst
		}
	case *pg.Node_ParamRef:
		return "", param
	case *pg.Node_TypeCast:
		if constLeaf(x.TypeCast.GetArg()) {
			if f := typeNameFamily(x.TypeCast.GetTypeName()); f != "" {
				return f, typed
			}
		}
	case *pg.Node_SqlvalueFunction:
		switch x.SqlvalueFunction.GetOp() {
		case pg.SQLValueFunctionOp_SVFOP_CURRENT_DATE:
			return Date, typed
		case pg.SQLValueFunctionOp_SVFOP_CURRENT_TIMESTAMP, pg.SQLValueFunctionOp_SVFOP_CURRENT_TIMESTAMP_N:
			return Timestamptz, typed
		case pg.SQLValueFunctionOp_SVFOP_LOCALTIMESTAMP, pg.SQLValueFunctionOp_SVFOP_LOCALTIMESTAMP_N:
			return Timestamp, typed
		case pg.SQLValueFunctionOp_SVFOP_LOCALTIME, pg.SQLValueFunctionOp_SVFOP_LOCALTIME_N:
			return Time, typed
		}
	case *pg.Node_FuncCall:
		if funcName(x.FuncCall) == "now" && len(x.FuncCall.GetArgs()) == 0 && x.FuncCall.GetOver() == nil {
			return Timestamptz, typed
		}
		if l != nil && s.funcCall(x.FuncCall, l) {
			if f := s.valueFamily(n, l); f != "" {
				return f, column
			}
		}
	case *pg.Node_SubLink:
		sub := x.SubLink.GetSubselect().GetSelectStmt()
		if l != nil && x.SubLink.GetSubLinkType() == pg.SubLinkType_EXPR_SUBLINK && sub != nil && s.subLink(x.SubLink, l) {
			inner, _ := s.subLevel(sub, l) // scanned already by subLink
			if f := s.valueFamily(sub.GetTargetList()[0].GetResTarget().GetVal(), inner); f != "" {
				return f, column
			}
		}
	}
	return "", invalid
}

// compare decides a comparison of two operands.
func (s *scanner) compare(a, b *pg.Node, l *level) bool {
	fa, ka := s.leaf(a, l)
	fb, kb := s.leaf(b, l)
	switch {
	case ka == invalid || kb == invalid:
		s.nested(a, l)
		s.nested(b, l)
		return false
	case ka == column && kb == column:
		return fa != "" && fa == fb
	case ka == column:
		return s.compatible(fa, b, kb, fb, false)
	case kb == column:
		return s.compatible(fb, a, ka, fa, false)
	}
	// Two constants: evaluated once, whatever the rows.
	return true
}

// compatible reports that a constant operand n of kind k (and family nf,
// for a typed one) meets a column of family f without coercing the
// column: the constant takes the column's type, or is of its family.
func (s *scanner) compatible(f Family, n *pg.Node, k leafKind, nf Family, array bool) bool {
	if f == "" {
		return false
	}
	switch k {
	case untyped:
		return true
	case intConst:
		return !array && (f == Int || f == Float || f == OID)
	case boolConst:
		return !array && f == Bool
	case param:
		return s.paramUse(int(n.GetParamRef().GetNumber()), f, array)
	case typed:
		return !array && nf == f
	}
	return false
}

// compareArray decides col op ANY/ALL (array): the array is a parameter,
// a literal, ARRAY[...] of constants, or a cast of one to an array of the
// column's family.
func (s *scanner) compareArray(col, arr *pg.Node, l *level) bool {
	f, k := s.leaf(col, l)
	if k != column || f == "" {
		s.nested(col, l)
		s.nested(arr, l)
		return false
	}
	switch x := arr.GetNode().(type) {
	case *pg.Node_ParamRef:
		return s.paramUse(int(x.ParamRef.GetNumber()), f, true)
	case *pg.Node_AConst:
		return x.AConst.GetSval() != nil || x.AConst.GetIsnull()
	case *pg.Node_AArrayExpr:
		for _, e := range x.AArrayExpr.GetElements() {
			fe, ke := s.leaf(e, l)
			if ke == column || ke == invalid {
				s.nested(e, l)
				return false
			}
			if !s.compatible(f, e, ke, fe, false) {
				return false
			}
		}
		return true
	case *pg.Node_TypeCast:
		tn := x.TypeCast.GetTypeName()
		if !constLeaf(x.TypeCast.GetArg()) || len(tn.GetArrayBounds()) != 1 {
			return false
		}
		elem := &pg.TypeName{Names: tn.GetNames()}
		return typeNameFamily(elem) == f
	}
	s.nested(arr, l)
	return false
}

// paramUse records that parameter i is compared with a column of family f
// (an array of them when array): its type, when declared, must be of f.
func (s *scanner) paramUse(i int, f Family, array bool) bool {
	use := ParamUse{Family: f, Array: array}
	if s.opts.UntypedParams {
		return false
	}
	if declared, ok := s.opts.ParamTypes[i]; ok {
		if declared.Family == "" {
			return false
		}
		return declared == use
	}
	if prev, ok := s.rep.Params[i]; ok && prev != use {
		return false
	}
	s.rep.Params[i] = use
	return true
}

// funcName is a call's function name when it is unqualified or
// pg_catalog-qualified, else "".
func funcName(f *pg.FuncCall) string {
	names := f.GetFuncname()
	switch {
	case len(names) == 1:
		return names[0].GetString_().GetSval()
	case len(names) == 2 && names[0].GetString_().GetSval() == "pg_catalog":
		return names[1].GetString_().GetSval()
	}
	return ""
}

// funcCall decides a function call: count(*), count/min/max of a column,
// sum/avg of an integer or float column, and row_number/rank/dense_rank
// over a leakproof window are leakproof; Postgres computes aggregates and
// window functions after every scan and join filter. now() is a constant.
func (s *scanner) funcCall(f *pg.FuncCall, l *level) bool {
	if f.GetAggOrder() != nil || f.GetAggWithinGroup() || f.GetFuncVariadic() {
		return false
	}
	if !s.safe(f.GetAggFilter(), l) || !s.window(f.GetOver(), l) {
		return false
	}
	args := f.GetArgs()
	switch funcName(f) {
	case "now":
		return len(args) == 0 && f.GetOver() == nil
	case "count":
		return f.GetAggStar() || len(args) == 1 && args[0].GetColumnRef() != nil
	case "min", "max":
		return len(args) == 1 && args[0].GetColumnRef() != nil
	case "sum", "avg":
		if len(args) != 1 {
			return false
		}
		fam, k := s.leaf(args[0], l)
		return k == column && (fam == Int || fam == Float)
	case "row_number", "rank", "dense_rank":
		return len(args) == 0 && f.GetOver() != nil
	}
	return false
}

// window decides a window definition: its PARTITION BY and ORDER BY.
func (s *scanner) window(w *pg.WindowDef, l *level) bool {
	if w == nil {
		return true
	}
	ok := w.GetStartOffset() == nil && w.GetEndOffset() == nil
	for _, n := range w.GetPartitionClause() {
		ok = s.safe(n, l) && ok
	}
	for _, n := range w.GetOrderClause() {
		ok = s.safe(n, l) && ok
	}
	return ok
}
