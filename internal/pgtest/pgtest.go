// Package pgtest gives tests a real PostgreSQL server: a throwaway cluster
// started from the server binaries on the machine (initdb in a temp dir, a
// free port, run as an unprivileged OS user when the tests run as root), or
// the server named by TENANTPROXY_TEST_DSN. There are no mocks of Postgres.
//
// Use it from TestMain:
//
//	func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }
//
// and in a test, db := pgtest.NewDatabase(t) for a fresh database.
package pgtest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// Password is the superuser password of a throwaway cluster.
const Password = "pgtest-secret"

// Server is a running PostgreSQL server.
type Server struct {
	// DSN connects as a superuser to the maintenance database.
	DSN string
	// Dir is the cluster's data directory; empty for TENANTPROXY_TEST_DSN.
	Dir string
	// BinDir holds the server binaries; empty for TENANTPROXY_TEST_DSN.
	BinDir string
	cred   *syscall.Credential
	cmd    *exec.Cmd
	root   string
	args   []string // the postgres command line, for Restart
}

var (
	once    sync.Once
	shared  *Server
	sharErr error
	dbSeq   atomic.Int64
)

// Main runs the tests and stops the shared server afterwards.
func Main(m *testing.M) int {
	code := m.Run()
	if shared != nil {
		shared.Stop()
	}
	return code
}

// Shared returns the package's server, starting it on first use. A server
// that cannot start fails the test: e2e tests never skip silently.
func Shared(t testing.TB) *Server {
	t.Helper()
	once.Do(func() { shared, sharErr = start() })
	if sharErr != nil {
		t.Fatalf("pgtest: %v", sharErr)
	}
	return shared
}

// NewDatabase creates a fresh database on the shared server and returns a DSN
// for it (superuser). It is dropped when the test ends.
func NewDatabase(t testing.TB) string {
	t.Helper()
	s := Shared(t)
	name := fmt.Sprintf("t%d_%d", os.Getpid(), dbSeq.Add(1))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, s.DSN)
	if err != nil {
		t.Fatalf("pgtest: connect: %v", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("pgtest: create database: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if c, err := pgx.Connect(ctx, s.DSN); err == nil {
			_, _ = c.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
			_ = c.Close(ctx)
		}
	})
	return s.WithDatabase(name)
}

// WithDatabase returns the server's DSN pointing at another database.
func (s *Server) WithDatabase(name string) string {
	u, err := url.Parse(s.DSN)
	if err != nil {
		panic(err)
	}
	u.Path = "/" + name
	return u.String()
}

func start() (*Server, error) {
	if dsn := os.Getenv("TENANTPROXY_TEST_DSN"); dsn != "" {
		return &Server{DSN: dsn}, nil
	}
	return StartCluster()
}

// StartCluster initialises and starts a new throwaway cluster. The caller
// must Stop it.
func StartCluster() (*Server, error) {
	bin, err := FindBinDir()
	if err != nil {
		return nil, err
	}
	root, err := os.MkdirTemp("", "tenantproxy-pg-")
	if err != nil {
		return nil, err
	}
	s := &Server{BinDir: bin, root: root, Dir: filepath.Join(root, "data")}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			u, err = user.Lookup("nobody")
		}
		if err != nil {
			return nil, fmt.Errorf("running as root and found no unprivileged user (postgres or nobody) to run the server as")
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		s.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		if err := os.Chmod(root, 0o755); err != nil {
			return nil, err
		}
		if err := os.Chown(root, uid, gid); err != nil {
			return nil, err
		}
	}
	pwfile := filepath.Join(root, "pwfile")
	if err := os.WriteFile(pwfile, []byte(Password+"\n"), 0o644); err != nil {
		return nil, err
	}
	if s.cred != nil {
		_ = os.Chown(pwfile, int(s.cred.Uid), int(s.cred.Gid))
	}
	out, err := s.command("initdb", "-D", s.Dir, "-U", "postgres", "--pwfile", pwfile,
		"--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8", "--locale=C", "--no-sync").CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("initdb: %v\n%s", err, out)
	}
	port, err := FreePort()
	if err != nil {
		return nil, err
	}
	logf, err := os.Create(filepath.Join(root, "server.log"))
	if err != nil {
		return nil, err
	}
	s.args = []string{"-D", s.Dir, "-p", strconv.Itoa(port), "-k", root,
		"-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "synchronous_commit=off",
		"-c", "full_page_writes=off", "-c", "max_connections=300", "-c", "log_min_messages=warning"}
	s.DSN = fmt.Sprintf("postgres://postgres:%s@127.0.0.1:%d/postgres?sslmode=disable", Password, port)
	if err := s.run(logf); err != nil {
		s.Stop()
		return nil, err
	}
	return s, nil
}

// Restart stops the cluster the way pg_ctl restart -m immediate does
// (SIGQUIT: every backend dies at once, crash recovery at the next start),
// waits down, and starts it again on the same port.
func (s *Server) Restart(down time.Duration) error {
	if s.cmd == nil {
		return errors.New("the cluster was not started here")
	}
	_ = s.cmd.Process.Signal(syscall.SIGQUIT)
	_ = s.cmd.Wait()
	time.Sleep(down)
	logf, err := os.OpenFile(filepath.Join(s.root, "server.log"), os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	return s.run(logf)
}

// run starts postgres and waits until it accepts connections.
func (s *Server) run(logf *os.File) error {
	s.cmd = s.command("postgres", s.args...)
	s.cmd.Stdout, s.cmd.Stderr = logf, logf
	if err := s.cmd.Start(); err != nil {
		return fmt.Errorf("start postgres: %v", err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		c, err := pgx.Connect(ctx, s.DSN)
		cancel()
		if err == nil {
			_ = c.Close(context.Background())
			return nil
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(filepath.Join(s.root, "server.log"))
			return fmt.Errorf("postgres did not come up: %v\n%s", err, log)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Stop stops a cluster started here and removes its files.
func (s *Server) Stop() {
	if s.cmd != nil && s.cmd.Process != nil {
		_ = s.cmd.Process.Signal(syscall.SIGINT) // fast shutdown
		done := make(chan struct{})
		go func() { _ = s.cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			_ = s.cmd.Process.Kill()
		}
	}
	if s.root != "" {
		_ = os.RemoveAll(s.root)
	}
}

// Command returns a command running a server binary (pg_ctl, psql, ...) as the
// cluster's OS user.
func (s *Server) command(name string, args ...string) *exec.Cmd {
	cmd := exec.Command(filepath.Join(s.BinDir, name), args...)
	cmd.Dir = s.root
	if s.cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred}
	}
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	return cmd
}

// FindBinDir locates the PostgreSQL server binaries: TENANTPROXY_PG_BIN, the
// directory of initdb on PATH, or the newest /usr/lib/postgresql/*/bin.
func FindBinDir() (string, error) {
	if d := os.Getenv("TENANTPROXY_PG_BIN"); d != "" {
		return d, nil
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		return filepath.Dir(p), nil
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return versionOf(dirs[i]) > versionOf(dirs[j]) })
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d, nil
		}
	}
	return "", fmt.Errorf("no PostgreSQL server binaries found: install them (apt-get install postgresql) or set TENANTPROXY_PG_BIN or TENANTPROXY_TEST_DSN")
}

func versionOf(dir string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(dir)))
	return v
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
