package rewrite

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"

	pg "github.com/pganalyze/pg_query_go/v5"
)

// LISTEN/NOTIFY channels belong to the whole database: Postgres does not
// confine them to anything. The rewriter gives each tenant a channel space
// of its own by prefixing every channel a statement names with a prefix
// derived from the session's tenant (ChannelPrefix): LISTEN, UNLISTEN,
// NOTIFY and pg_notify's channel argument. The session strips the prefix
// from the notifications it relays and drops any that lack it. A client
// that writes another tenant's mapped name gets it prefixed again, into
// its own space.
//
// Only the primary tenant claim decides. A token with several tenants has
// no single channel space and is refused. In transaction pooling LISTEN is
// refused: a listen is state of one upstream connection, which the next
// transaction may not get. NOTIFY works in both modes (it is delivered at
// commit).

// MaxChannelLen is the longest channel name Postgres keeps (NAMEDATALEN-1
// bytes): a longer LISTEN or NOTIFY channel is truncated, and two names
// would meet.
const MaxChannelLen = 63

// channelPrefixLen is len(ChannelPrefix(v)) for every v.
const channelPrefixLen = len("tp") + 16 + len("_")

// MaxClientChannelLen is the longest channel name a client may use: the
// prefix takes the rest.
const MaxClientChannelLen = MaxChannelLen - channelPrefixLen

// ChannelPrefix is the prefix of a tenant's channel names upstream: "tp",
// the first 8 bytes of the SHA-256 of the tenant value in hex, and "_".
// Fixed-length and plain ASCII whatever the tenant value holds.
func ChannelPrefix(tenant string) string {
	sum := sha256.Sum256([]byte(tenant))
	return "tp" + hex.EncodeToString(sum[:8]) + "_"
}

// channelPrefix returns the session's channel prefix, refusing when the
// scope has no single primary tenant. what names the statement for the
// message.
func (w *walker) channelPrefix(what string) (string, bool) {
	vals := w.scope.Values[""]
	switch {
	case len(vals) == 0 || slices.Contains(vals, ""):
		w.fail(refuseHint("use a token that carries a tenant", "%s needs the token's tenant: channel names are confined to one tenant", what))
		return "", false
	case len(vals) > 1:
		w.fail(refuseHint("use a token for one tenant to listen or notify",
			"%s is not available to a token naming %d tenants: channel names are confined to one tenant, and this session has no single one", what, len(vals)))
		return "", false
	}
	return ChannelPrefix(vals[0]), true
}

// mapChannel returns the upstream name of a client's channel, refusing one
// that would be too long to keep.
func (w *walker) mapChannel(what, channel string) (string, bool) {
	prefix, ok := w.channelPrefix(what)
	if !ok {
		return "", false
	}
	if len(prefix)+len(channel) > MaxChannelLen {
		w.fail(refuseHint(fmt.Sprintf("use a channel name of at most %d bytes", MaxClientChannelLen),
			"channel name %q is too long: the proxy adds a %d-byte tenant prefix, and Postgres keeps only %d bytes of a channel name",
			channel, channelPrefixLen, MaxChannelLen))
		return "", false
	}
	return prefix + channel, true
}

func (w *walker) listenStmt(s *pg.ListenStmt) {
	if w.cfg.TransactionPooling {
		w.fail(refuseHint("connect to a proxy in --pool-mode session to LISTEN (NOTIFY works in both modes)",
			"LISTEN is not available in transaction pooling mode: a listen belongs to one database connection, and the next transaction may get another"))
		return
	}
	if name, ok := w.mapChannel("LISTEN", s.GetConditionname()); ok {
		s.Conditionname = name
		w.changed = true
	}
}

// unlistenStmt maps UNLISTEN's channel. UNLISTEN * stays: the connection
// listens on the session's channels only.
func (w *walker) unlistenStmt(s *pg.UnlistenStmt) {
	if s.GetConditionname() == "" {
		return
	}
	if name, ok := w.mapChannel("UNLISTEN", s.GetConditionname()); ok {
		s.Conditionname = name
		w.changed = true
	}
}

func (w *walker) notifyStmt(s *pg.NotifyStmt) {
	if name, ok := w.mapChannel("NOTIFY", s.GetConditionname()); ok {
		s.Conditionname = name
		w.changed = true
	}
}

// notifyCall maps pg_notify's channel: a string constant becomes the
// mapped name (checked for length here), any other expression e becomes
// 'prefix' || e::text (Postgres refuses an over-long result; it never
// truncates pg_notify's channel).
func (w *walker) notifyCall(f *pg.FuncCall) {
	args := f.GetArgs()
	if len(args) != 2 || f.GetFuncVariadic() || f.GetAggStar() || f.GetAggDistinct() || f.GetOver() != nil ||
		f.GetAggFilter() != nil || len(f.GetAggOrder()) > 0 || args[0].GetNamedArgExpr() != nil || args[1].GetNamedArgExpr() != nil {
		w.fail(&Rejection{Code: codeRefused, Reason: "pg_notify must be called as pg_notify(channel, payload)",
			Hint: "pass the channel and the payload as two plain arguments", Position: int(f.GetLocation()) + 1})
		return
	}
	if c := args[0].GetAConst(); c != nil && c.GetSval() != nil {
		channel, _ := w.constantText(c) // the value decides: literal-sensitive
		if channel == "" {
			w.fail(refuseHint("name a channel", "pg_notify's channel name cannot be empty"))
			return
		}
		if name, ok := w.mapChannel("pg_notify", channel); ok {
			args[0] = pg.MakeAConstStrNode(name, c.GetLocation())
			w.changed = true
		}
		return
	}
	prefix, ok := w.channelPrefix("pg_notify")
	if !ok {
		return
	}
	// funcCall walks the arguments after this.
	text := &pg.TypeName{Names: []*pg.Node{pg.MakeStrNode("text")}, Typemod: -1, Location: -1}
	cast := &pg.Node{Node: &pg.Node_TypeCast{TypeCast: &pg.TypeCast{Arg: args[0], TypeName: text, Location: -1}}}
	args[0] = pg.MakeAExprNode(pg.A_Expr_Kind_AEXPR_OP, []*pg.Node{pg.MakeStrNode("||")}, pg.MakeAConstStrNode(prefix, -1), cast, -1)
	w.changed = true
}
