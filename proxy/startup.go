package proxy

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"

	"github.com/jackc/pgx/v5/pgproto3"
)

// handshake runs the startup phase up to (not including) authentication: it
// answers SSLRequest and GSSENCRequest, serves a CancelRequest on its own
// short path, and returns the StartupMessage. A nil message with a nil error
// means the connection was a cancel request and is done.
func (s *session) handshake() (*pgproto3.StartupMessage, error) {
	for {
		msg, err := s.hs.ReceiveStartupMessage()
		if errors.Is(err, io.EOF) {
			return nil, errClientGone // connected and left: a health check
		}
		if err != nil {
			return nil, newClientError(codeProtocolViolation, "", "invalid startup packet: %v", err)
		}
		switch m := msg.(type) {
		case *pgproto3.SSLRequest:
			if s.tls {
				return nil, newClientError(codeProtocolViolation, "", "SSLRequest received twice")
			}
			if s.srv.cfg.TLS == nil {
				if _, err := s.conn.Write([]byte{'N'}); err != nil {
					return nil, err
				}
				continue
			}
			if _, err := s.conn.Write([]byte{'S'}); err != nil {
				return nil, err
			}
			tconn := tls.Server(s.conn, s.srv.cfg.TLS)
			if err := tconn.Handshake(); err != nil {
				return nil, fmt.Errorf("TLS handshake: %w", err)
			}
			s.conn, s.tls = tconn, true
			s.hs = s.newBackend(tconn)
			s.be = s.hs
		case *pgproto3.GSSEncRequest:
			if _, err := s.conn.Write([]byte{'N'}); err != nil {
				return nil, err
			}
		case *pgproto3.CancelRequest:
			if found, err := s.srv.cancels.forward(s.ctx, m); err != nil {
				s.log.Warn("forwarding cancel request failed", "err", err)
			} else if found {
				s.log.Info("cancel request forwarded upstream", "pid", m.ProcessID)
			}
			return nil, nil
		case *pgproto3.StartupMessage:
			if m.ProtocolVersion != pgproto3.ProtocolVersion30 {
				// Speak 3.0: tell a 3.2 client so and carry on.
				s.be.Send(&pgproto3.NegotiateProtocolVersion{NewestMinorProtocol: 0})
			}
			cp := *m
			cp.Parameters = make(map[string]string, len(m.Parameters))
			for k, v := range m.Parameters {
				cp.Parameters[k] = v
			}
			return &cp, nil
		default:
			return nil, newClientError(codeProtocolViolation, "", "unexpected startup message %T", msg)
		}
	}
}

// harmlessParams are startup parameters passed upstream unchanged, keyed by
// their lower-case name. Every other parameter is refused: Postgres treats
// unknown startup parameters as settings (search_path, role, ...).
var harmlessParams = map[string]bool{
	"application_name":                    true,
	"datestyle":                           true,
	"timezone":                            true,
	"intervalstyle":                       true,
	"extra_float_digits":                  true,
	"statement_timeout":                   true,
	"lock_timeout":                        true,
	"idle_in_transaction_session_timeout": true,
	"client_min_messages":                 true,
	"bytea_output":                        true,
}

// unsafeClientEncodings can hide ASCII quote and backslash bytes inside
// multibyte characters, so the proxy's parser would read a statement
// differently from the server.
var unsafeClientEncodings = map[string]bool{"sjis": true, "shiftjis": true, "big5": true, "gbk": true, "uhc": true, "gb18030": true, "johab": true, "windows932": true, "windows936": true, "windows949": true, "windows950": true, "shift_jis_2004": true, "shiftjis2004": true}

// startupParams checks the client's startup parameters and returns the ones
// to pass upstream. user and database are handled by the caller.
func startupParams(params map[string]string) (map[string]string, error) {
	out := map[string]string{}
	for k, v := range params {
		key := strings.ToLower(k)
		switch {
		case key == "user" || key == "database":
			continue
		case key == "client_encoding":
			norm := strings.NewReplacer("-", "", "_", "").Replace(strings.ToLower(v))
			if unsafeClientEncodings[norm] || unsafeClientEncodings[strings.ToLower(v)] {
				return nil, newClientError(codeInsufficientPriv, "use client_encoding UTF8", "client_encoding %q is not allowed: its multibyte characters can hide quotes from the proxy's parser", v)
			}
			out[k] = v
		case key == "options":
			if err := checkOptions(v, out); err != nil {
				return nil, err
			}
		case key == "replication":
			return nil, newClientError(codeInsufficientPriv, "connect to the database directly for replication", "replication connections are not allowed")
		case harmlessParams[key]:
			out[k] = v
		default:
			return nil, newClientError(codeInsufficientPriv, "remove it from the connection string", "startup parameter %q is not allowed", k)
		}
	}
	return out, nil
}

// checkOptions accepts an options string made only of "-c name=value" (or
// "--name=value") settings from the harmless list.
func checkOptions(v string, out map[string]string) error {
	fields := strings.Fields(v)
	for i := 0; i < len(fields); i++ {
		f := fields[i]
		var kv string
		switch {
		case f == "-c" && i+1 < len(fields):
			i++
			kv = fields[i]
		case strings.HasPrefix(f, "-c") && len(f) > 2:
			kv = f[2:]
		case strings.HasPrefix(f, "--"):
			kv = f[2:]
		default:
			return newClientError(codeInsufficientPriv, "only -c settings of harmless parameters may be given in options", "startup option %q is not allowed", f)
		}
		name, val, ok := strings.Cut(kv, "=")
		name = strings.ReplaceAll(strings.ToLower(name), "-", "_")
		if !ok || !harmlessParams[name] || strings.Contains(v, `\`) {
			return newClientError(codeInsufficientPriv, "only -c settings of harmless parameters may be given in options", "setting %q in startup options is not allowed", name)
		}
		out[name] = val
	}
	return nil
}

// isLoopback reports whether a listener address is a loopback address.
func isLoopback(addr net.Addr) bool {
	tcp, ok := addr.(*net.TCPAddr)
	if !ok {
		return addr != nil && addr.Network() == "unix"
	}
	return tcp.IP.IsLoopback()
}

var errClientGone = errors.New("client went away")
