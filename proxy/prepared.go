package proxy

import (
	"strings"
	"sync"

	"github.com/tenantproxy/tenantproxy/rewrite"
)

// A prepared statement or cursor outlives the statement that created it:
// it runs later, under whatever catalog is current then. The book remembers,
// for each one, what was rewritten and under which catalog version, so that
// a use after a catalog change first re-checks the definition (rewriting its
// text again must give the same SQL) and is refused otherwise.
//
// Protocol-level statements are committed when upstream answers their Parse
// with ParseComplete: a Parse of a name that already exists fails upstream,
// and the statement that runs on Bind is the one Postgres holds, so the book
// must never trust a Parse that may have failed. SQL-level PREPARE and
// DECLARE are recorded when sent (every definition under a name is kept
// until it is dropped, which is conservative: all must still hold).

// definition is one rewritten text that created a named object.
type definition struct {
	sql       string // as the client sent it
	rewritten string // as it went upstream (shadow mode: as enforce mode would send it)
	version   int64  // catalog version it was rewritten under
	uses      []string
	// fence: rewritten with rewrite.Scope.Fence, because the Parse
	// declared parameter types the security barrier could not rely on.
	fence bool
}

// preparedStmt is what the session must remember of an accepted Parse.
type preparedStmt struct {
	id         string // the statement id its audit events carry
	serverName string // its name upstream (lease.go)
	definition
	checks []rewrite.ParamCheck
	oids   []uint32
	// fingerprint is the statement's, for audit events about its Binds.
	fingerprint string
	// unscoped: shadow mode sent it although enforce mode would have
	// refused its Parse; its Binds have nothing to check.
	unscoped bool
}

// pendingParse is an accepted Parse sent upstream and not yet answered.
type pendingParse struct {
	name     string
	stmt     preparedStmt
	round    int  // the session's round when it was sent
	injected bool // sent by the proxy (lease.go): its answer is not relayed
}

// book holds a session's named statements and cursors. The session
// goroutine writes it; the relay commits Parses as upstream answers them.
type book struct {
	mu        sync.Mutex
	committed map[string]preparedStmt // protocol statements upstream holds
	unnamed   *preparedStmt           // the latest Parse of the unnamed statement
	pending   []pendingParse
	sqlDefs   map[string][]definition // "stmt:p" and "cursor:c" from SQL
}

func newBook() *book {
	return &book{committed: map[string]preparedStmt{}, sqlDefs: map[string][]definition{}}
}

// parsed records an accepted Parse as sent upstream.
func (b *book) parsed(name string, st preparedStmt, round int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if name == "" {
		// Postgres drops the unnamed statement at every Parse of it, so
		// the latest one sent is the only one that can run.
		b.unnamed = &st
	}
	b.pending = append(b.pending, pendingParse{name: name, stmt: st, round: round})
	delete(b.sqlDefs, "stmt:"+name)
}

// refusedUnnamed forgets the unnamed statement: its Parse was refused, and
// Postgres dropped the previous one when the sentinel arrived.
func (b *book) refusedUnnamed() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.unnamed = nil
}

// injected records a Parse the proxy sent to prepare a known statement on
// a connection that lacked it.
func (b *book) injected(serverName string, round int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.pending = append(b.pending, pendingParse{stmt: preparedStmt{serverName: serverName}, round: round, injected: true})
}

// parseComplete commits the oldest pending Parse (relay goroutine):
// responses come in order, and after an error Postgres skips everything
// up to Sync, so a ParseComplete always answers the oldest one. It
// reports whether the client sent that Parse.
func (b *book) parseComplete() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.pending) == 0 {
		return true
	}
	p := b.pending[0]
	b.pending = b.pending[1:]
	if p.name != "" && !p.injected {
		b.committed[p.name] = p.stmt
	}
	return !p.injected
}

// ready drops and returns the Parses of rounds that have ended without
// an answer (relay goroutine; ready counts ReadyForQuery messages so far).
func (b *book) ready(ready int) []pendingParse {
	b.mu.Lock()
	defer b.mu.Unlock()
	var failed []pendingParse
	kept := b.pending[:0]
	for _, p := range b.pending {
		if p.round >= ready {
			kept = append(kept, p)
		} else {
			failed = append(failed, p)
		}
	}
	b.pending = kept
	return failed
}

// closed forgets a protocol statement (Close 'S').
func (b *book) closed(name string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.committed, name)
	if name == "" {
		b.unnamed = nil
	}
}

// closedAll forgets every committed protocol statement (DEALLOCATE ALL,
// DISCARD ALL) and returns them.
func (b *book) closedAll() []preparedStmt {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []preparedStmt
	for name, st := range b.committed {
		out = append(out, st)
		delete(b.committed, name)
	}
	return out
}

// statement returns every record that may describe what runs when name is
// bound: the unnamed statement's latest Parse; for a named one, the
// committed record if there is one (a new Parse of the name fails),
// otherwise every Parse of it still in flight.
func (b *book) statement(name string) []preparedStmt {
	b.mu.Lock()
	defer b.mu.Unlock()
	if name == "" {
		if b.unnamed == nil {
			return nil
		}
		return []preparedStmt{*b.unnamed}
	}
	if st, ok := b.committed[name]; ok {
		return []preparedStmt{st}
	}
	var out []preparedStmt
	for _, p := range b.pending {
		if p.name == name && !p.injected {
			out = append(out, p.stmt)
		}
	}
	return out
}

// revalidated stores a new catalog version for the definitions of a
// protocol statement that were re-checked.
func (b *book) revalidated(name string, version int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if st, ok := b.committed[name]; ok {
		st.version = version
		b.committed[name] = st
	}
	if name == "" && b.unnamed != nil {
		b.unnamed.version = version
	}
}

// sqlChanges applies what a statement string defines and drops.
func (b *book) sqlChanges(res *rewrite.Result, sql string, version int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, d := range res.Drops {
		kind, name, _ := strings.Cut(d, ":")
		if name != "*" {
			delete(b.sqlDefs, d)
			if kind == "stmt" {
				delete(b.committed, name)
			}
			continue
		}
		for k := range b.sqlDefs {
			if strings.HasPrefix(k, kind+":") {
				delete(b.sqlDefs, k)
			}
		}
		if kind == "stmt" {
			b.committed = map[string]preparedStmt{}
		}
	}
	for _, d := range res.Defines {
		b.sqlDefs[d] = append(b.sqlDefs[d], definition{sql: sql, rewritten: res.SQL, version: version, uses: res.Uses})
	}
}

// sqlDefinitions returns the SQL-level definitions of a name ("stmt:p").
func (b *book) sqlDefinitions(key string) []definition {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]definition(nil), b.sqlDefs[key]...)
}

// sqlRevalidated stores a new version for every SQL-level definition of key.
func (b *book) sqlRevalidated(key string, version int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for i := range b.sqlDefs[key] {
		b.sqlDefs[key][i].version = version
	}
}
