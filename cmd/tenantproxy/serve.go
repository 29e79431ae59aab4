package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/spf13/cobra"
	"github.com/tenantproxy/tenantproxy/audit"
	"github.com/tenantproxy/tenantproxy/auth"
	"github.com/tenantproxy/tenantproxy/catalog"
	"github.com/tenantproxy/tenantproxy/proxy"
	"github.com/tenantproxy/tenantproxy/rewrite"
)

type serveOptions struct {
	listen         string
	upstream       string
	jwtKeys        []string
	jwtIssuers     []string
	jwtAudience    string
	issuersFile    string
	tenantClaim    string
	roleClaim      string
	unscopedRole   string
	scopeClaim     string
	writeScope     string
	tlsCert        string
	tlsKey         string
	tlsSelfSigned  bool
	searchPath     []string
	allowPlaintext bool
	maxMessageSize int
	rewriteCache   int
	metricsListen  string
	startupTimeout time.Duration
	auditFile      string
	auditFsync     time.Duration
	auditOnFailure string
	auditQueue     int
	auditRedact    bool
	auditExecs     bool
	auditMaxSize   int64
	auditDSN       string
	auditGrace     time.Duration
	logLevel       string
	mode           string
	shadowPoolMode string
	poolMode       string
	poolSize       int
	tenantShare    int
	maxClientConn  int
	maxUnauthConn  int
	queryWait      time.Duration
	serverIdle     time.Duration
	serverLifetime time.Duration
	pprof          bool
	maxTenantConn  int
	isolation      string
	tenantSchema   string
	clientIdle     time.Duration
	clientWrite    time.Duration
	idleInTx       time.Duration
	shutdown       time.Duration
	expiryGrace    time.Duration
}

func newServeCmd() *cobra.Command {
	var o serveOptions
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the proxy",
		Long: `Run the proxy. Clients connect as to Postgres and send a JWT as their password;
every statement is confined to the tenant the token names.

Every flag can also be set as an environment variable TENANTPROXY_<FLAG>
(upper case, dashes as underscores; repeatable flags take a comma-separated list).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return serve(cmd.Context(), o) },
	}
	f := cmd.Flags()
	f.StringVar(&o.listen, "listen", "127.0.0.1:6432", "address to accept clients on")
	f.StringVar(&o.upstream, "upstream", "", "Postgres URL or DSN with the proxy's own credentials (required)")
	f.StringArrayVar(&o.jwtKeys, "jwt-key", nil, "file with a PEM public key, a JWKS JSON document or an HMAC secret (repeatable; required unless --issuers is given)")
	f.StringArrayVar(&o.jwtIssuers, "jwt-issuer", nil, "accepted token issuer (repeatable; any issuer when none is given)")
	f.StringVar(&o.issuersFile, "issuers", "", "YAML file binding each token issuer to its keys (files or a jwks_url) and the tenants it may speak for; replaces --jwt-key and --jwt-issuer")
	f.StringVar(&o.jwtAudience, "jwt-audience", "", "required token audience")
	f.StringVar(&o.tenantClaim, "tenant-claim", auth.DefaultTenantClaim, "claim naming the tenant; a dotted path reaches nested claims")
	f.StringVar(&o.roleClaim, "role-claim", auth.DefaultRoleClaim, "claim naming the token's role; a dotted path reaches nested claims")
	f.StringVar(&o.unscopedRole, "unscoped-role", "", "role claim value that marks a token as unscoped (no tenant needed); only issuers allowed to issue it (unscoped: true in --issuers) are accepted; off when empty")
	f.StringVar(&o.scopeClaim, "scope-claim", auth.DefaultScopeClaim, "claim holding the token's OAuth scopes (a space-separated string or an array of strings)")
	f.StringVar(&o.writeScope, "write-scope", auth.DefaultWriteScope, "scope a token must hold to write when it carries the scope claim; without it the session is read-only")
	f.StringVar(&o.tlsCert, "tls-cert", "", "TLS certificate file for client connections")
	f.StringVar(&o.tlsKey, "tls-key", "", "TLS key file for client connections")
	f.BoolVar(&o.tlsSelfSigned, "tls-self-signed", false, "offer TLS with a throwaway self-signed certificate (development)")
	f.StringSliceVar(&o.searchPath, "search-path", []string{"public"}, "schemas that resolve unqualified table names, in order")
	f.BoolVar(&o.allowPlaintext, "allow-plaintext-password", false, "accept tokens without TLS on a non-loopback listener")
	f.IntVar(&o.maxMessageSize, "max-message-size", 64<<20, "largest client message in bytes")
	f.StringVar(&o.metricsListen, "metrics-listen", "", "address for Prometheus /metrics, /healthz and /readyz (e.g. 127.0.0.1:9187; off when empty)")
	f.BoolVar(&o.pprof, "pprof", false, "also serve Go's profiler at /debug/pprof/ on --metrics-listen (keep that address private)")
	f.IntVar(&o.rewriteCache, "rewrite-cache-size", 10000, "rewritten statements kept as templates shared by every tenant (0 turns the cache off)")
	f.DurationVar(&o.startupTimeout, "startup-timeout", 10*time.Second, "time a client has to finish TLS, startup and authentication")
	f.StringVar(&o.auditFile, "audit-file", "-", "where audit events go as JSON lines; - is stdout")
	f.DurationVar(&o.auditFsync, "audit-fsync-interval", 100*time.Millisecond, "longest time between fsyncs of the audit file (0: after every batch)")
	f.StringVar(&o.auditOnFailure, "audit-on-failure", "reject", "while the audit stream cannot be written: reject (refuse statements) or block (hold them); no mode drops events")
	f.IntVar(&o.auditQueue, "audit-queue-size", 10000, "audit events that may wait to be written")
	f.BoolVar(&o.auditRedact, "audit-redact", false, "replace constants in audited SQL with placeholders")
	f.BoolVar(&o.auditExecs, "audit-executions", false, "record every execution of a prepared statement, not only its totals")
	f.DurationVar(&o.expiryGrace, "token-expiry-grace", 0, "how long past its token's expiry a session may go on; its next statement after that ends it (FATAL 28P01)")
	f.DurationVar(&o.shutdown, "shutdown-timeout", 30*time.Second, "on SIGTERM or SIGINT, how long sessions may finish their transactions before they are closed")
	f.DurationVar(&o.auditGrace, "audit-shutdown-timeout", 30*time.Second, "at shutdown, how long to keep retrying audit events that are not yet written")
	f.StringVar(&o.auditDSN, "audit-dsn", "", "write the audit stream to table tenantproxy.audit_events of this database instead of a file")
	f.Int64Var(&o.auditMaxSize, "audit-rotate-size", 1<<30, "rotate the audit file when it reaches this many bytes (0: never; SIGHUP always rotates)")
	f.StringVar(&o.logLevel, "log-level", "info", "log level: debug, info, warn, error")
	f.StringVar(&o.mode, "mode", proxy.ModeEnforce, "enforce: scope every statement and refuse what cannot be scoped; shadow: send statements unchanged and only audit what enforce would do (protects nothing; needs --pool-mode session)")
	f.StringVar(&o.shadowPoolMode, "shadow-pool-mode", proxy.PoolTransaction, "with --mode shadow: the --pool-mode enforce mode will run with, whose refusals shadow mode reports (transaction also refuses SQL PREPARE/EXECUTE/DEALLOCATE and DECLARE ... WITH HOLD)")
	f.StringVar(&o.poolMode, "pool-mode", proxy.PoolTransaction, "transaction: clients share --pool-size upstream connections, one per transaction; session: one upstream connection per client")
	f.IntVar(&o.poolSize, "pool-size", 20, "upstream connections in transaction mode")
	f.IntVar(&o.tenantShare, "pool-tenant-share", 0, "upstream connections one tenant's clients may hold at once in transaction mode (0: three quarters of --pool-size, at least 1)")
	f.IntVar(&o.maxClientConn, "max-client-conn", 10000, "authenticated client connections the proxy accepts at once")
	f.IntVar(&o.maxUnauthConn, "max-unauthenticated-conn", 100, "connections still authenticating, counted apart from --max-client-conn; past it the oldest is closed")
	f.IntVar(&o.maxTenantConn, "max-tenant-conn", 0, "client connections one tenant may hold at once (0: no cap)")
	f.StringVar(&o.isolation, "isolation", "row", "row: tenants share tables, rows carry the tenant; schema: each tenant has a schema of its own (--tenant-schema)")
	f.StringVar(&o.tenantSchema, "tenant-schema", "tenant_"+rewrite.TenantPlaceholder, "with --isolation schema, the name of each tenant's schema; "+rewrite.TenantPlaceholder+" is the tenant value")
	f.DurationVar(&o.clientIdle, "client-idle-timeout", 0, "end a session whose client sends nothing this long outside a transaction (0: never)")
	f.DurationVar(&o.clientWrite, "client-write-timeout", 30*time.Second, "end a session whose client does not read its results this long, freeing its database connection (0: never)")
	f.DurationVar(&o.idleInTx, "idle-in-transaction-timeout", 0, "end a session that leaves a transaction open and silent this long, rolling it back (0: never)")
	f.DurationVar(&o.queryWait, "query-wait-timeout", 10*time.Second, "how long a client waits for a free upstream connection before its statement fails (transaction mode)")
	f.DurationVar(&o.serverIdle, "server-idle-timeout", 10*time.Minute, "close upstream connections idle this long (transaction mode; 0: never)")
	f.DurationVar(&o.serverLifetime, "server-lifetime", time.Hour, "close upstream connections this old once they are idle (transaction mode; 0: never)")
	return cmd
}

func serve(ctx context.Context, o serveOptions) error {
	var level slog.Level
	if err := level.UnmarshalText([]byte(o.logLevel)); err != nil {
		return fmt.Errorf("--log-level: %w", err)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	if o.upstream == "" {
		return errors.New("set --upstream or TENANTPROXY_UPSTREAM to the database's URL")
	}
	if o.issuersFile == "" && len(o.jwtKeys) == 0 {
		return errors.New("set --jwt-key (or TENANTPROXY_JWT_KEY) to the key that verifies client tokens, or --issuers to a file of issuers and their keys")
	}
	for name, v := range map[string]string{"--tenant-claim": o.tenantClaim, "--role-claim": o.roleClaim, "--scope-claim": o.scopeClaim, "--write-scope": o.writeScope} {
		if strings.TrimSpace(v) == "" {
			return fmt.Errorf("%s is empty; give a claim name (or leave the flag out for its default)", name)
		}
	}
	if err := checkModeFlags(o); err != nil {
		return err
	}
	// Every flag is checked before the proxy connects anywhere.
	if err := checkPoolFlags(o); err != nil {
		return err
	}
	upCfg, err := pgconn.ParseConfig(o.upstream)
	if err != nil {
		return fmt.Errorf("--upstream: %w", err)
	}
	verifierConfig := auth.Config{KeyFiles: o.jwtKeys, Issuers: o.jwtIssuers, IssuersFile: o.issuersFile,
		JWKSCache: auth.NewJWKSCache(), Logger: log, Audience: o.jwtAudience,
		TenantClaim: o.tenantClaim, RoleClaim: o.roleClaim, UnscopedRole: o.unscopedRole,
		ScopeClaim: o.scopeClaim, WriteScope: o.writeScope}
	verifier, err := auth.NewVerifier(verifierConfig)
	if err != nil {
		return err
	}
	if o.issuersFile != "" {
		log.Info("issuers file loaded", "file", o.issuersFile, "issuers", strings.Join(verifier.Issuers(), ","))
	}
	if o.unscopedRole != "" && o.issuersFile == "" {
		log.Warn("--unscoped-role without --issuers: every accepted token whose role claim is the unscoped role is unscoped; bind it to one issuer with an issuers file (unscoped: true)",
			"unscoped_role", o.unscopedRole, "role_claim", o.roleClaim)
	}
	tlsCfg, certFiles, err := serverTLS(o)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()

	cat, err := catalog.NewWatcher(ctx, o.upstream, log)
	if err != nil {
		return err
	}
	snap := cat.Snapshot()

	onFailure := audit.OnFailure(o.auditOnFailure)
	if onFailure != audit.Reject && onFailure != audit.Block {
		return fmt.Errorf("--audit-on-failure %q: use reject or block", o.auditOnFailure)
	}
	sink, err := openAuditSink(ctx, o)
	if err != nil {
		return err
	}
	fsync := o.auditFsync
	if fsync == 0 {
		fsync = -1 // every batch
	}
	queue := audit.NewQueue(sink, audit.QueueConfig{Size: o.auditQueue, FsyncInterval: fsync, OnFailure: onFailure, Logger: log})
	cat.OnSwap = func(old, new *catalog.Snapshot, changes []catalog.Change) {
		// Catalog changes made with the CLI reach the audit stream.
		events := []audit.Event{{Kind: "catalog.changed", Reason: fmt.Sprintf("reloaded version %d (was %d)", new.Version(), old.Version()), CatalogVersion: new.Version()}}
		if len(changes) > 0 {
			events = events[:0]
		}
		for _, c := range changes {
			events = append(events, audit.Event{Kind: "catalog.changed", Time: c.At.UTC(), Subject: c.By, Reason: c.Action + " " + c.Detail, CatalogVersion: c.Version})
		}
		for _, e := range events {
			if o.mode == proxy.ModeShadow {
				e.Mode = proxy.ModeShadow
			}
			queue.Record(e) // it happened: never refused, written when the stream can be
		}
	}
	go cat.Run(ctx)
	defer func() {
		// Everything acknowledged is written and synced before exit.
		if err := queue.Close(o.auditGrace); err != nil {
			log.Error("closing the audit stream", "err", err)
		}
	}()
	if o.auditFile == "-" && o.auditDSN == "" {
		log.Info("auditing to stdout; set --audit-file to write the audit stream to a file")
	}

	if o.pprof && o.metricsListen == "" {
		return errors.New("--pprof needs --metrics-listen")
	}
	tenantSchema, err := isolationPattern(o)
	if err != nil {
		return err
	}
	// The rewriter decides as enforce mode would: in shadow mode, for the
	// pool mode enforce mode will run with.
	scopedPoolMode := o.poolMode
	if o.mode == proxy.ModeShadow {
		scopedPoolMode = o.shadowPoolMode
	}
	var rewriter proxy.StatementRewriter = rewrite.New(rewrite.Config{SearchPath: o.searchPath, Database: upCfg.Database,
		TransactionPooling: scopedPoolMode == proxy.PoolTransaction, TenantSchema: tenantSchema})
	var cache *rewrite.Cache
	if o.rewriteCache < 0 {
		return fmt.Errorf("--rewrite-cache-size must be 0 (off) or more, got %d", o.rewriteCache)
	}
	if o.rewriteCache > 0 {
		if cache, err = rewrite.NewCache(rewriter.(*rewrite.Rewriter), o.rewriteCache); err != nil {
			return err
		}
		rewriter = cache
	}
	var metrics *proxy.Metrics
	if o.metricsListen != "" {
		metrics = newMetrics(queue, cache, cat)
		if err := serveMetrics(ctx, o.metricsListen, metrics, queue, cat, o.pprof, log); err != nil {
			return err
		}
	}
	srv, err := proxy.NewServer(proxy.Config{
		Upstream:               upCfg,
		TLS:                    tlsCfg,
		AllowPlaintextPassword: o.allowPlaintext,
		MaxMessageSize:         o.maxMessageSize,
		StartupTimeout:         o.startupTimeout,
		Verifier:               verifier,
		Rewriter:               rewriter,
		Catalog:                cat,
		Audit:                  queue,
		AuditRedact:            o.auditRedact,
		AuditExecutions:        o.auditExecs,
		Logger:                 log,
		Metrics:                metrics,
		Mode:                   o.mode,
		PoolMode:               o.poolMode,
		Pool: proxy.PoolConfig{Size: o.poolSize, WaitTimeout: o.queryWait,
			IdleTimeout: o.serverIdle, Lifetime: o.serverLifetime, TenantShare: o.tenantShare},
		MaxClientConn:          o.maxClientConn,
		MaxUnauthenticatedConn: o.maxUnauthConn,
		MaxTenantConn:          o.maxTenantConn,
		TenantSchema:           tenantSchema,

		ShutdownTimeout:          o.shutdown,
		TokenExpiryGrace:         o.expiryGrace,
		ClientIdleTimeout:        o.clientIdle,
		ClientWriteTimeout:       o.clientWrite,
		IdleInTransactionTimeout: o.idleInTx,
	})
	if err != nil {
		return err
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go func() {
		for {
			select {
			case <-hup:
				log.Info("SIGHUP: reloading the catalog, the JWT keys (and the issuers file, fetching every jwks_url) and the TLS certificate, and rotating the audit file")
				cat.Reload()
				if err := queue.Rotate(); err != nil {
					log.Error("rotating the audit file", "err", err)
				}
				if v, err := auth.NewVerifier(verifierConfig); err != nil {
					log.Error("reloading the JWT keys or the issuers file failed; the previous ones stay", "err", err)
				} else {
					srv.SetVerifier(v)
					if o.issuersFile != "" {
						log.Info("issuers file reloaded", "file", o.issuersFile, "issuers", strings.Join(v.Issuers(), ","))
					}
				}
				if certFiles != nil {
					if err := certFiles.Reload(); err != nil {
						log.Error("reloading the TLS certificate failed; the previous one stays", "err", err)
					}
				}
			case <-ctx.Done():
				return
			}
		}
	}()
	ln, err := net.Listen("tcp", o.listen)
	if err != nil {
		return fmt.Errorf("--listen: %w", err)
	}
	log.Info("tenantproxy listening", "addr", ln.Addr().String(), "database", upCfg.Database,
		"catalog_version", snap.Version(), "tables", len(snap.Tables()), "tls", tlsCfg != nil,
		"search_path", strings.Join(o.searchPath, ","), "pool_mode", o.poolMode, "pool_size", o.poolSize, "mode", o.mode)
	if o.mode == proxy.ModeShadow {
		log.Warn("SHADOW MODE: THIS PROXY PROTECTS NOTHING. Statements go to the database exactly as clients send them: "+
			"no tenant is confined, nothing is refused. The audit stream records what --mode enforce would do "+
			"(decisions would-rewrite and would-reject; tenantproxy audit report FILE sums them up).",
			"predicting_pool_mode", o.shadowPoolMode)
	}
	err = srv.Serve(ctx, ln)
	if ctx.Err() != nil {
		log.Info("tenantproxy stopped")
		return nil
	}
	return err
}

// checkPoolFlags refuses pooling flags that make no sense.
func checkPoolFlags(o serveOptions) error {
	switch {
	case o.poolMode != proxy.PoolTransaction && o.poolMode != proxy.PoolSession:
		return fmt.Errorf("--pool-mode must be %s or %s, got %q", proxy.PoolTransaction, proxy.PoolSession, o.poolMode)
	case o.poolSize < 1:
		return fmt.Errorf("--pool-size must be at least 1, got %d", o.poolSize)
	case o.tenantShare < 0:
		return fmt.Errorf("--pool-tenant-share must be 0 (the default share) or more, got %d", o.tenantShare)
	case o.maxClientConn < 1:
		return fmt.Errorf("--max-client-conn must be at least 1, got %d", o.maxClientConn)
	case o.maxUnauthConn < 1:
		return fmt.Errorf("--max-unauthenticated-conn must be at least 1, got %d", o.maxUnauthConn)
	case o.queryWait <= 0:
		return fmt.Errorf("--query-wait-timeout must be positive, got %s", o.queryWait)
	case o.serverIdle < 0 || o.serverLifetime < 0:
		return errors.New("--server-idle-timeout and --server-lifetime must be 0 (never) or positive")
	case o.maxTenantConn < 0:
		return fmt.Errorf("--max-tenant-conn must be 0 (no cap) or more, got %d", o.maxTenantConn)
	case o.expiryGrace < 0:
		return fmt.Errorf("--token-expiry-grace must be 0 or positive, got %s", o.expiryGrace)
	case o.clientIdle < 0 || o.idleInTx < 0:
		return errors.New("--client-idle-timeout and --idle-in-transaction-timeout must be 0 (never) or positive")
	}
	return nil
}

// checkModeFlags refuses a --mode the proxy cannot run safely.
func checkModeFlags(o serveOptions) error {
	switch {
	case o.mode != proxy.ModeEnforce && o.mode != proxy.ModeShadow:
		return fmt.Errorf("--mode must be %s or %s, got %q", proxy.ModeEnforce, proxy.ModeShadow, o.mode)
	case o.shadowPoolMode != proxy.PoolTransaction && o.shadowPoolMode != proxy.PoolSession:
		return fmt.Errorf("--shadow-pool-mode must be %s or %s, got %q", proxy.PoolTransaction, proxy.PoolSession, o.shadowPoolMode)
	case o.mode == proxy.ModeShadow && o.poolMode != proxy.PoolSession:
		return errors.New("--mode shadow needs --pool-mode session: statements enforce mode would refuse do run in shadow mode, " +
			"and the session state they can leave (SET search_path, PREPARE, LISTEN, advisory locks, temporary tables) must not reach " +
			"another client's transaction on a shared connection; --shadow-pool-mode (default transaction) says which pool mode to predict")
	}
	return nil
}

func serverTLS(o serveOptions) (*tls.Config, *proxy.CertFiles, error) {
	switch {
	case o.tlsCert != "" || o.tlsKey != "":
		if o.tlsCert == "" || o.tlsKey == "" {
			return nil, nil, errors.New("--tls-cert and --tls-key go together")
		}
		return proxy.LoadTLS(o.tlsCert, o.tlsKey)
	case o.tlsSelfSigned:
		host, _, _ := net.SplitHostPort(o.listen)
		cfg, err := proxy.SelfSignedTLS(host)
		return cfg, nil, err
	}
	return nil, nil, nil
}

// openAuditSink opens the audit table (--audit-dsn) or file (--audit-file).
func openAuditSink(ctx context.Context, o serveOptions) (*audit.JSONLSink, error) {
	if o.auditDSN != "" {
		if o.auditFile != "-" {
			return nil, errors.New("give --audit-file or --audit-dsn, not both")
		}
		sink, err := audit.OpenPostgres(ctx, o.auditDSN)
		if err != nil {
			return nil, fmt.Errorf("--audit-dsn: %w", err)
		}
		return sink, nil
	}
	sink, err := audit.OpenFile(o.auditFile)
	if err != nil {
		return nil, fmt.Errorf("--audit-file: %w", err)
	}
	sink.MaxSize = o.auditMaxSize
	return sink, nil
}

// isolationPattern checks --isolation and --tenant-schema and returns the
// schema pattern the rewriter and the sessions use (empty: row isolation).
func isolationPattern(o serveOptions) (string, error) {
	switch o.isolation {
	case "row":
		return "", nil
	case "schema":
		if err := rewrite.ValidateTenantSchema(o.tenantSchema); err != nil {
			return "", fmt.Errorf("--tenant-schema: %w", err)
		}
		return o.tenantSchema, nil
	}
	return "", fmt.Errorf("--isolation %q: use row or schema", o.isolation)
}
