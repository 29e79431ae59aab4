package proxy

import (
	"strings"

	"github.com/tenantproxy/tenantproxy/rewrite"
)

// Pooled drivers reset what they left on a connection: psycopg 3 sends
// DEALLOCATE name when its statement cache evicts and DEALLOCATE ALL after
// a rollback; pools send DISCARD ALL or RESET ALL when a connection goes
// back. In transaction mode that state is the session's, not the upstream
// connection's: its protocol statements have server names of their own
// and its settings follow it from connection to connection. A reset acts
// on the session's records, and what goes upstream touches the lent
// connection only, with the command tag the driver expects.

// pooledReset carries out a reset on the session's records. It returns
// the statement to send upstream in place of the client's, or "" when the
// client's string acts on the lent connection only and goes as it is.
func (s *session) pooledReset(r *rewrite.PooledReset) (string, error) {
	if !s.pooled {
		// Shadow mode on a dedicated connection, predicting transaction
		// pooling: the client's string runs as sent; only the refusal
		// enforce mode would give is recorded.
		if r.Deallocate != "" && len(s.book.statement(r.Deallocate)) == 0 {
			return "", unknownStatement(r.Deallocate)
		}
		return "", nil
	}
	sc := s.up
	if r.ResetAll {
		// Back to what the client started with, as on a connection of its
		// own. Upstream, RESET ALL takes the lent connection to the
		// server's defaults; it is marked unknown, so the next lease
		// applies every setting again.
		s.settings = s.startSettings // never changed in place: shared
		sc.settings = nil
	}
	if r.All {
		for _, st := range s.book.closedAll() {
			s.statementEnded(st.id, s.results.take(st.id))
		}
		// Every statement on the connection goes; each session prepares
		// its own again where it needs them.
		clear(sc.prepared)
	}
	if r.Deallocate == "" {
		return "", nil
	}
	recs := s.book.statement(r.Deallocate)
	if len(recs) == 0 {
		return "", unknownStatement(r.Deallocate)
	}
	st := recs[len(recs)-1]
	s.statementEnded(recs[0].id, s.results.take(recs[0].id))
	// Drop it where it is: prepared on this connection first when an
	// earlier transaction prepared it on another.
	s.onServer(st)
	s.book.closed(r.Deallocate)
	delete(sc.prepared, st.serverName)
	return "DEALLOCATE " + quoteIdent(st.serverName), nil
}

// quoteIdent quotes an identifier for Postgres.
func quoteIdent(name string) string {
	return `"` + strings.ReplaceAll(name, `"`, `""`) + `"`
}
