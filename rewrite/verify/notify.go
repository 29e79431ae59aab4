package verify

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"

	pg "github.com/pganalyze/pg_query_go/v5"
)

// maxChannel is the longest channel name Postgres keeps (NAMEDATALEN-1):
// a longer LISTEN or NOTIFY name is truncated and could meet another.
const maxChannel = 63

// channelSpace returns the prefix every channel of the session must carry:
// "tp", the first 16 hex digits of SHA-256 of the primary tenant value,
// "_". A policy without exactly one primary tenant has no channel space.
func (c *checker) channelSpace() (string, error) {
	vals := c.p.Tenants[""]
	if len(vals) != 1 || vals[0] == "" {
		return "", refuse("a channel is named, but the session has %d primary tenant values; channels need exactly one", len(vals))
	}
	sum := sha256.Sum256([]byte(vals[0]))
	return "tp" + hex.EncodeToString(sum[:8]) + "_", nil
}

// channel checks a LISTEN, UNLISTEN or NOTIFY channel name, or pg_notify's
// constant channel.
func (c *checker) channel(name string) error {
	space, err := c.channelSpace()
	if err != nil {
		return err
	}
	if !strings.HasPrefix(name, space) {
		return refuse("channel %q is outside the session's channel space (%s...)", name, space)
	}
	if len(name) > maxChannel {
		return refuse("channel %q is longer than the %d bytes Postgres keeps", name, maxChannel)
	}
	return nil
}

// notifyCall checks pg_catalog.pg_notify(channel, payload): the channel is
// a string constant in the session's channel space, or
// 'prefix' || (expression)::text with exactly the session's prefix (a text
// concatenation starts with its left operand).
func (c *checker) notifyCall(f *pg.FuncCall) error {
	args := f.GetArgs()
	if len(args) != 2 || f.GetFuncVariadic() || f.GetAggStar() || f.GetAggDistinct() || f.GetOver() != nil ||
		f.GetAggFilter() != nil || len(f.GetAggOrder()) > 0 || args[0].GetNamedArgExpr() != nil || args[1].GetNamedArgExpr() != nil {
		return refuse("pg_notify is called in a form other than pg_notify(channel, payload)")
	}
	if k := args[0].GetAConst(); k != nil {
		if k.GetSval() == nil {
			return refuse("pg_notify's channel is a constant that is not a string")
		}
		return c.channel(k.GetSval().GetSval())
	}
	e := args[0].GetAExpr()
	if e == nil || e.GetKind() != pg.A_Expr_Kind_AEXPR_OP {
		return refuse("pg_notify's channel is neither a constant nor the session's prefix joined to an expression")
	}
	if op := stringsOf(e.GetName()); len(op) != 1 || op[0] != "||" {
		return refuse("pg_notify's channel is built with operator %v, not ||", op)
	}
	space, err := c.channelSpace()
	if err != nil {
		return err
	}
	if k := e.GetLexpr().GetAConst(); k == nil || k.GetSval() == nil || k.GetSval().GetSval() != space {
		return refuse("pg_notify's channel does not start with the session's channel prefix %s", space)
	}
	cast := e.GetRexpr().GetTypeCast()
	if cast == nil {
		return refuse("pg_notify's channel expression is not cast to text")
	}
	tn := cast.GetTypeName()
	if names := stringsOf(tn.GetNames()); len(tn.GetTypmods()) > 0 || len(tn.GetArrayBounds()) > 0 || tn.GetSetof() || tn.GetPctType() ||
		!(len(names) == 1 && names[0] == "text" || len(names) == 2 && names[0] == "pg_catalog" && names[1] == "text") {
		return refuse("pg_notify's channel expression is cast to %v, not text", names)
	}
	return nil
}
