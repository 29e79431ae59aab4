package main

import (
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"

	"github.com/tenantproxy/tenantproxy/internal/pgtest"
)

// The floor of any Go proxy: a relay that copies bytes both ways, one
// upstream connection per client, parsing nothing. Its CPU per
// transaction is what Go's runtime (the netpoller, the scheduler, a read
// that finds nothing before every wait) costs before a proxy does any
// work of its own; beside PgBouncer's, it shows how far per-statement
// work can go.

// serveRelay runs the relay (bench -relay ADDR -relay-upstream ADDR).
func serveRelay(listen, upstream string) error {
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return err
	}
	for {
		c, err := ln.Accept()
		if err != nil {
			return err
		}
		go func() {
			defer c.Close()
			u, err := net.Dial("tcp", upstream)
			if err != nil {
				return
			}
			defer u.Close()
			go func() { _, _ = io.Copy(u, c); u.Close() }()
			_, _ = io.Copy(c, u)
		}()
	}
}

// startRelay starts the relay in a process of its own, relaying to
// host:port; it returns the target and a stop function.
func startRelay(dir, host, port string, direct []string) (target, func(), error) {
	lport, err := pgtest.FreePort()
	if err != nil {
		return target{}, nil, err
	}
	self, err := os.Executable()
	if err != nil {
		return target{}, nil, err
	}
	cmd := exec.Command(self, "-relay", fmt.Sprintf("127.0.0.1:%d", lport), "-relay-upstream", net.JoinHostPort(host, port))
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return target{}, nil, err
	}
	env := append([]string{}, direct...)
	for i, e := range env {
		switch {
		case len(e) > 7 && e[:7] == "PGHOST=":
			env[i] = "PGHOST=127.0.0.1"
		case len(e) > 7 && e[:7] == "PGPORT=":
			env[i] = "PGPORT=" + strconv.Itoa(lport)
		}
	}
	stop := func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }
	if err := waitReady(dir, env); err != nil {
		stop()
		return target{}, nil, fmt.Errorf("the Go relay did not come up: %w", err)
	}
	return target{name: "go relay, parses nothing (floor)", env: env, pid: cmd.Process.Pid}, stop, nil
}
