// Command bench runs pgbench select-only against direct Postgres, PgBouncer
// (when installed), a Go relay that parses nothing (relay.go) and
// tenantproxy in session and transaction mode, in
// alternating rounds on one throwaway cluster, and prints TPS and latency
// percentiles side by side (make bench). It then measures the proxy's
// memory holding many idle clients.
//
// The pgbench tables are catalogued with bid as the tenant column; at scale
// 1 every row belongs to tenant 1, so the proxy's rewritten statements
// return what the direct ones do.
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/tenantproxy/tenantproxy/auth"
	"github.com/tenantproxy/tenantproxy/internal/pgtest"
)

func main() {
	bin := flag.String("bin", "bin/tenantproxy", "the tenantproxy binary")
	duration := flag.Duration("duration", 10*time.Second, "length of one pgbench run")
	rounds := flag.Int("rounds", 2, "alternating rounds per target")
	clients := flag.String("clients", "16,200,2000", "pgbench client counts (comma-separated; direct Postgres and session mode stop at max_connections, 300)")
	idle := flag.Int("idle-clients", 10000, "idle client connections whose proxy memory is measured (0: skip)")
	flag.StringVar(&profileDir, "profile", "", "write CPU profiles of tenantproxy (transaction) during the first client count's runs to this directory")
	relay := flag.String("relay", "", "internal: serve the Go relay on this address")
	relayUpstream := flag.String("relay-upstream", "", "internal: the Go relay's upstream address")
	flag.Parse()
	if *relay != "" {
		if err := serveRelay(*relay, *relayUpstream); err != nil {
			fmt.Fprintln(os.Stderr, "bench relay:", err)
			os.Exit(1)
		}
		return
	}
	raiseFileLimit()
	if err := run(*bin, *duration, *rounds, *clients, *idle); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// target is one thing pgbench connects to.
type target struct {
	name string
	env  []string // PGHOST, PGPORT, PGUSER, PGPASSWORD, PGDATABASE
	pid  int      // the middlebox's process, whose CPU is measured (0: none)
}

// result is one pgbench run.
type result struct {
	tps      float64
	p50, p99 float64 // milliseconds
	cpuUS    float64 // the middlebox's CPU (user+system) per transaction, µs
}

// profileDir, when set, receives CPU profiles of the proxy.
var profileDir string

// maxConnections is the cluster's max_connections (internal/pgtest).
const maxConnections = 300

// raiseFileLimit lifts the open-file limit to its hard maximum: pgbench,
// the proxy and the idle-client test hold thousands of sockets.
func raiseFileLimit() {
	var l syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l) == nil && l.Cur < l.Max {
		l.Cur = l.Max
		_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l)
	}
}

func run(bin string, duration time.Duration, rounds int, clientList string, idle int) error {
	bin, err := filepath.Abs(bin)
	if err != nil {
		return err
	}
	pg, err := pgtest.StartCluster()
	if err != nil {
		return err
	}
	defer pg.Stop()
	dir, err := os.MkdirTemp("", "tenantproxy-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	_ = os.Chmod(dir, 0o755)

	u, _ := url.Parse(pg.DSN)
	host, port := u.Hostname(), u.Port()
	direct := []string{"PGHOST=" + host, "PGPORT=" + port, "PGUSER=postgres", "PGPASSWORD=" + pgtest.Password, "PGDATABASE=postgres", "PGSSLMODE=disable"}
	if out, err := pgbench(dir, direct, "-i", "-q", "-s", "1"); err != nil {
		return fmt.Errorf("pgbench -i: %v\n%s", err, out)
	}

	cli := func(args ...string) error {
		cmd := exec.Command(bin, args...)
		cmd.Env = append(os.Environ(), "TENANTPROXY_UPSTREAM="+pg.DSN)
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("tenantproxy %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return nil
	}
	if err := cli("catalog", "init"); err != nil {
		return err
	}
	for _, t := range []string{"pgbench_accounts", "pgbench_branches", "pgbench_tellers", "pgbench_history"} {
		if err := cli("catalog", "add-table", t, "--tenant-column", "bid"); err != nil {
			return err
		}
	}
	secret := []byte("bench-secret-0123456789-abcdefghijklmnop")
	keyFile := filepath.Join(dir, "hmac.key")
	if err := os.WriteFile(keyFile, secret, 0o600); err != nil {
		return err
	}
	token, err := auth.Mint(secret, auth.MintOptions{Tenants: []string{"1"}, Subject: "bench", TTL: 24 * time.Hour})
	if err != nil {
		return err
	}
	metricsAddr := ""
	startProxy := func(mode string) ([]string, *exec.Cmd, error) {
		port, err := pgtest.FreePort()
		if err != nil {
			return nil, nil, err
		}
		args := []string{"serve", "--listen", fmt.Sprintf("127.0.0.1:%d", port), "--upstream", pg.DSN,
			"--jwt-key", keyFile, "--audit-file", filepath.Join(dir, "audit-"+mode+".jsonl"), "--log-level", "warn",
			"--pool-mode", mode, "--pool-size", "20",
			// pgbench's clients are all one tenant: give it the whole pool,
			// like PgBouncer's, so the figures compare per-statement cost.
			"--pool-tenant-share", "20"}
		if mode == "transaction" && profileDir != "" {
			mport, err := pgtest.FreePort()
			if err != nil {
				return nil, nil, err
			}
			metricsAddr = fmt.Sprintf("127.0.0.1:%d", mport)
			args = append(args, "--metrics-listen", metricsAddr, "--pprof")
		}
		cmd := exec.Command(bin, args...)
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			return nil, nil, err
		}
		env := []string{"PGHOST=127.0.0.1", "PGPORT=" + strconv.Itoa(port), "PGUSER=app", "PGPASSWORD=" + token, "PGDATABASE=postgres", "PGSSLMODE=disable"}
		if err := waitReady(dir, env); err != nil {
			return nil, nil, fmt.Errorf("tenantproxy (%s) did not come up: %w", mode, err)
		}
		return env, cmd, nil
	}
	sessionEnv, sessionProxy, err := startProxy("session")
	if err != nil {
		return err
	}
	defer func() { _ = sessionProxy.Process.Signal(os.Interrupt); _ = sessionProxy.Wait() }()
	txEnv, txProxy, err := startProxy("transaction")
	if err != nil {
		return err
	}
	defer func() { _ = txProxy.Process.Signal(os.Interrupt); _ = txProxy.Wait() }()

	if err := explainPair(dir, txEnv, direct); err != nil {
		return err
	}
	// Memory first, on a proxy that has served nothing yet.
	if idle > 0 {
		if err := idleClients(txProxy.Process.Pid, txEnv, idle); err != nil {
			return err
		}
	}

	targets := []target{{name: "direct", env: direct}}
	bouncer, bouncerPid, stop, why := startPgBouncer(dir, host, port)
	if bouncer != nil {
		defer stop()
		targets = append(targets, target{name: "pgbouncer (transaction)", env: bouncer, pid: bouncerPid})
	} else {
		fmt.Println("pgbouncer: not measured:", why)
	}
	relayTarget, stopRelay, err := startRelay(dir, host, port, direct)
	if err != nil {
		return err
	}
	defer stopRelay()
	targets = append(targets, relayTarget)
	targets = append(targets, target{name: "tenantproxy (session)", env: sessionEnv, pid: sessionProxy.Process.Pid},
		target{name: "tenantproxy (transaction)", env: txEnv, pid: txProxy.Process.Pid})

	fmt.Printf("pgbench -S -n -T %s, %d alternating rounds, 2 threads; scale 1; tenantproxy rewrites, verifies and audits every statement\n\n", duration, rounds)
	fmt.Printf("| clients | protocol | target | TPS | p50 ms | p99 ms | TPS vs direct | CPU µs/tx | CPU vs pgbouncer |\n|---|---|---|---|---|---|---|---|---|\n")
	for _, cs := range strings.Split(clientList, ",") {
		c := strings.TrimSpace(cs)
		for _, mode := range []string{"simple", "prepared"} {
			all := map[string][]result{}
			for r := 0; r < rounds; r++ {
				for _, t := range targets {
					if mode == "prepared" && strings.HasPrefix(t.name, "pgbouncer") {
						continue // PgBouncer before 1.21 cannot keep prepared statements in transaction mode
					}
					if n, _ := strconv.Atoi(c); n > maxConnections-20 && !pooled(t.name) {
						continue // one Postgres backend per client: more than max_connections
					}
					var profiled chan error
					if metricsAddr != "" && r == 0 && cs == strings.Split(clientList, ",")[0] && t.name == "tenantproxy (transaction)" {
						profiled = profile(metricsAddr, filepath.Join(profileDir, fmt.Sprintf("cpu-%s-%s.pprof", c, mode)), duration)
					}
					res, err := bench(dir, t, c, mode, duration)
					if profiled != nil {
						if perr := <-profiled; perr != nil {
							fmt.Println("profile:", perr)
						}
					}
					if err != nil {
						return fmt.Errorf("%s, %s clients, %s: %w", t.name, c, mode, err)
					}
					all[t.name] = append(all[t.name], res)
				}
			}
			base := mean(all["direct"]).tps
			bouncerCPU := mean(all["pgbouncer (transaction)"]).cpuUS
			if mode == "prepared" { // PgBouncer relays -M prepared only in its simple-protocol figure
				bouncerCPU = 0
			}
			for _, t := range targets {
				rs, ok := all[t.name]
				switch {
				case !ok && pooled(t.name):
					fmt.Printf("| %s | %s | %s | – | – | – | not supported by this version | – | – |\n", c, mode, t.name)
					continue
				case !ok:
					fmt.Printf("| %s | %s | %s | – | – | – | needs a backend per client (max_connections %d) | – | – |\n", c, mode, t.name, maxConnections)
					continue
				}
				m := mean(rs)
				ratio := "–"
				if base > 0 {
					ratio = fmt.Sprintf("%.2f×", m.tps/base)
				}
				cpu, cpuRatio := "–", "–"
				if t.pid != 0 {
					cpu = fmt.Sprintf("%.1f", m.cpuUS)
					if bouncerCPU > 0 {
						cpuRatio = fmt.Sprintf("%.2f×", m.cpuUS/bouncerCPU)
					}
				}
				fmt.Printf("| %s | %s | %s | %.0f | %.2f | %.2f | %s | %s | %s |\n", c, mode, t.name, m.tps, m.p50, m.p99, ratio, cpu, cpuRatio)
			}
		}
	}
	return nil
}

// pooled reports whether a target shares upstream connections.
func pooled(name string) bool {
	return strings.HasPrefix(name, "pgbouncer") || strings.Contains(name, "transaction")
}

func mean(rs []result) result {
	var m result
	for _, r := range rs {
		m.tps += r.tps / float64(len(rs))
		m.p50 += r.p50 / float64(len(rs))
		m.p99 += r.p99 / float64(len(rs))
		m.cpuUS += r.cpuUS / float64(len(rs))
	}
	return m
}

// bench runs one pgbench -S and reads TPS and the per-transaction log.
func bench(dir string, t target, clients, mode string, d time.Duration) (result, error) {
	logDir, err := os.MkdirTemp(dir, "log-")
	if err != nil {
		return result{}, err
	}
	defer os.RemoveAll(logDir)
	cpuBefore := cpuTime(t.pid)
	out, err := pgbench(logDir, t.env, "-S", "-n", "-M", mode, "-c", clients, "-j", "2",
		"-T", strconv.Itoa(int(d.Seconds())), "-l", "--log-prefix", filepath.Join(logDir, "tx"))
	cpu := cpuTime(t.pid) - cpuBefore
	if err != nil {
		return result{}, fmt.Errorf("%v\n%s", err, out)
	}
	var res result
	var txs float64
	for _, line := range strings.Split(out, "\n") {
		if v, ok := strings.CutPrefix(line, "tps = "); ok {
			res.tps, _ = strconv.ParseFloat(strings.Fields(v)[0], 64)
		}
		if v, ok := strings.CutPrefix(line, "number of transactions actually processed: "); ok {
			txs, _ = strconv.ParseFloat(strings.Fields(v)[0], 64)
		}
	}
	if txs > 0 {
		res.cpuUS = float64(cpu.Microseconds()) / txs
	}
	var lat []float64
	files, _ := filepath.Glob(filepath.Join(logDir, "tx*"))
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			return result{}, err
		}
		sc := bufio.NewScanner(fh)
		for sc.Scan() {
			if fs := strings.Fields(sc.Text()); len(fs) >= 3 {
				us, _ := strconv.ParseFloat(fs[2], 64)
				lat = append(lat, us/1000)
			}
		}
		fh.Close()
	}
	if len(lat) == 0 {
		return result{}, fmt.Errorf("no transactions logged:\n%s", out)
	}
	slices.Sort(lat)
	res.p50, res.p99 = lat[len(lat)/2], lat[len(lat)*99/100]
	return res, nil
}

func pgbench(dir string, env []string, args ...string) (string, error) {
	cmd := exec.Command("pgbench", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// waitReady waits until pgbench's connection settings reach a server.
func waitReady(dir string, env []string) error {
	deadline := time.Now().Add(20 * time.Second)
	for {
		cmd := exec.Command("psql", "-X", "-q", "-c", "SELECT 1")
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), env...)
		out, err := cmd.CombinedOutput()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%v: %s", err, out)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// startPgBouncer runs Debian's pgbouncer in transaction mode with a pool
// of 20 in front of the cluster; as root it runs as the postgres user
// (pgbouncer refuses to run as root). It returns nil and why when it can't.
func startPgBouncer(dir, host, port string) ([]string, int, func(), string) {
	path, err := exec.LookPath("pgbouncer")
	if err != nil {
		return nil, 0, nil, "not installed (apt-get install pgbouncer)"
	}
	bport, err := pgtest.FreePort()
	if err != nil {
		return nil, 0, nil, err.Error()
	}
	ini := fmt.Sprintf(`[databases]
postgres = host=%s port=%s dbname=postgres user=postgres password=%s
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = %d
unix_socket_dir =
auth_type = plain
auth_file = %s/userlist.txt
pool_mode = transaction
default_pool_size = 20
max_client_conn = 10000
logfile = %s/pgbouncer.log
pidfile = %s/pgbouncer.pid
`, host, port, pgtest.Password, bport, dir, dir, dir)
	if err := os.WriteFile(filepath.Join(dir, "pgbouncer.ini"), []byte(ini), 0o644); err != nil {
		return nil, 0, nil, err.Error()
	}
	if err := os.WriteFile(filepath.Join(dir, "userlist.txt"), []byte(`"postgres" "`+pgtest.Password+`"`+"\n"), 0o644); err != nil {
		return nil, 0, nil, err.Error()
	}
	cmd := exec.Command(path, filepath.Join(dir, "pgbouncer.ini"))
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			return nil, 0, nil, "running as root and no postgres user to run pgbouncer as"
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
		_ = os.Chown(dir, uid, gid)
	}
	if err := cmd.Start(); err != nil { // it logs to pgbouncer.log
		return nil, 0, nil, err.Error()
	}
	env := []string{"PGHOST=127.0.0.1", "PGPORT=" + strconv.Itoa(bport), "PGUSER=postgres", "PGPASSWORD=" + pgtest.Password, "PGDATABASE=postgres", "PGSSLMODE=disable"}
	stop := func() { _ = cmd.Process.Signal(syscall.SIGINT); _ = cmd.Wait() }
	if err := waitReady(dir, env); err != nil {
		stop()
		return nil, 0, nil, "did not start: " + err.Error()
	}
	return env, cmd.Process.Pid, stop, ""
}

// idleClients opens n authenticated client connections to the proxy with
// process id pid, leaves them idle, and prints the proxy's memory before
// and after.
func idleClients(pid int, env []string, n int) error {
	before, _ := procStatus(pid, "VmRSS")
	vars := map[string]string{}
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		vars[k] = v
	}
	cfg, err := pgconn.ParseConfig(fmt.Sprintf("host=%s port=%s user=%s password=%s dbname=%s sslmode=disable",
		vars["PGHOST"], vars["PGPORT"], vars["PGUSER"], vars["PGPASSWORD"], vars["PGDATABASE"]))
	if err != nil {
		return err
	}
	ctx := context.Background()
	conns := make([]*pgconn.PgConn, n)
	start := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	sem := make(chan struct{}, 64)
	for i := range conns {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			c, err := pgconn.ConnectConfig(ctx, cfg)
			if err != nil {
				errs <- err
				return
			}
			conns[i] = c
		}()
	}
	wg.Wait()
	close(errs)
	defer func() {
		for _, c := range conns {
			if c != nil {
				c.Close(ctx)
			}
		}
	}()
	if err := <-errs; err != nil {
		return fmt.Errorf("opening %d idle clients: %w", n, err)
	}
	opened := time.Since(start)
	time.Sleep(2 * time.Second)
	after, _ := procStatus(pid, "VmRSS")
	if _, err := conns[n/2].Exec(ctx, "SELECT 1").ReadAll(); err != nil {
		return fmt.Errorf("an idle client cannot run a statement: %w", err)
	}
	fmt.Printf("\ntenantproxy (transaction) holding %d idle authenticated clients (opened in %s): RSS %d MiB (%d MiB before; %.1f KiB per client)\n",
		n, opened.Round(time.Millisecond), after>>10, before>>10, float64(after-before)/float64(n))
	return nil
}

// cpuTime is the user plus system CPU a process has used so far, from
// /proc/pid/stat (zero for pid 0 or when it cannot be read). Connection
// setup falls inside a run too, as it does for every middlebox measured.
func cpuTime(pid int) time.Duration {
	if pid == 0 {
		return 0
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// The command name, field 2, may hold spaces: count from its ')'.
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return 0
	}
	fs := strings.Fields(string(b[i+1:]))
	if len(fs) < 13 {
		return 0
	}
	utime, _ := strconv.ParseInt(fs[11], 10, 64)
	stime, _ := strconv.ParseInt(fs[12], 10, 64)
	return time.Duration(utime+stime) * time.Second / clockTicks
}

// clockTicks is USER_HZ, the unit of /proc/pid/stat's times (100 on Linux).
const clockTicks = 100

// procStatus reads a kB field of /proc/pid/status.
func procStatus(pid int, field string) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			return strconv.ParseInt(strings.Fields(v)[0], 10, 64)
		}
	}
	return 0, fmt.Errorf("no %s in /proc/%d/status", field, pid)
}

// profile saves a CPU profile of the proxy covering most of a run.
func profile(addr, file string, d time.Duration) chan error {
	done := make(chan error, 1)
	go func() {
		secs := max(1, int(d.Seconds())-1)
		resp, err := http.Get(fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", addr, secs))
		if err != nil {
			done <- err
			return
		}
		defer resp.Body.Close()
		if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
			done <- err
			return
		}
		f, err := os.Create(file)
		if err != nil {
			done <- err
			return
		}
		defer f.Close()
		_, err = io.Copy(f, resp.Body)
		if err == nil {
			fmt.Println("cpu profile:", file)
		}
		done <- err
	}()
	return done
}

// explainPair prints the plan Postgres chooses for pgbench's statement as
// the proxy rewrites it, and for the same statement with the tenant
// predicate written by hand.
func explainPair(dir string, proxied, direct []string) error {
	psql := func(env []string, sql string) (string, error) {
		cmd := exec.Command("psql", "-X", "-q", "-A", "-t", "-c", sql)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), env...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			return "", fmt.Errorf("psql %q: %v\n%s", sql, err, out)
		}
		return strings.TrimSpace(string(out)), nil
	}
	through, err := psql(proxied, "EXPLAIN SELECT abalance FROM pgbench_accounts WHERE aid = 42")
	if err != nil {
		return err
	}
	byHand, err := psql(direct, "EXPLAIN (COSTS OFF) SELECT abalance FROM pgbench_accounts WHERE aid = 42 AND bid = 1")
	if err != nil {
		return err
	}
	fmt.Printf("EXPLAIN SELECT abalance FROM pgbench_accounts WHERE aid = 42, through the proxy (tenant 1):\n%s\n\n", through)
	fmt.Printf("EXPLAIN (COSTS OFF) SELECT abalance FROM pgbench_accounts WHERE aid = 42 AND bid = 1, directly:\n%s\n\n", byHand)
	return nil
}
