GO      ?= go
BIN     := bin/tenantproxy
PKGS    := ./...

.PHONY: build test test-clients clients memory unit e2e differential demo bench soak fuzz vet fmt clean

build:
	$(GO) build -o $(BIN) ./cmd/tenantproxy

## test: vet, then every unit and end-to-end test (starts its own PostgreSQL),
## the client compatibility matrix included.
test: vet clients
	$(GO) test -count=1 -timeout 14m $(PKGS)

## test-clients: only the client compatibility matrix.
test-clients: clients
	$(GO) test -count=1 -timeout 10m -v -run 'TestClientMatrix' ./e2e/ | grep -Ev 'level=|^=== RUN'

## clients: the matrix's npm packages (the other clients come from Debian: see .ci/run).
clients: e2e/clients/node/node_modules/.package-lock.json

e2e/clients/node/node_modules/.package-lock.json: e2e/clients/node/package-lock.json
	npm ci --prefix e2e/clients/node --no-audit --no-fund

unit:
	$(GO) test -count=1 ./auth/... ./audit/... ./catalog/... ./rewrite/... ./proxy/...

e2e:
	$(GO) test -count=1 -timeout 14m -v ./e2e/...

## differential: the isolation-equivalence suites, with accepted/refused counts per category.
differential:
	$(GO) test -count=1 -v -run 'TestDifferential' ./e2e/ ./rewrite/ | grep -Ev 'level=|^=== RUN'

vet:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)

## demo: a throwaway Postgres with two tenants behind the proxy; Ctrl-C cleans up.
demo: build
	$(GO) run ./internal/demo -bin $(BIN)

## memory: the proxy's peak memory through a 1 GiB COPY FROM and a 10-million-row SELECT.
memory:
	TENANTPROXY_MEMORY_COPY_MB=1024 TENANTPROXY_MEMORY_ROWS=10000000 $(GO) test -count=1 -timeout 30m -v -run 'TestStreamingMemoryIsBounded' ./e2e/ | grep -Ev 'level=|^=== RUN'

## bench: Go benchmarks, then pgbench -S against direct Postgres, PgBouncer (if installed) and tenantproxy side by side.
BENCHTIME ?= 10s
BENCHCLIENTS ?= 16,200,2000
BENCHIDLE ?= 10000
bench: build
	$(GO) test -run '^$$' -bench . -benchmem ./rewrite/... ./e2e/...
	$(GO) run ./internal/bench -bin $(BIN) -duration $(BENCHTIME) -clients $(BENCHCLIENTS) -idle-clients $(BENCHIDLE)

## fuzz: run each fuzz target for FUZZTIME (default 30s).
FUZZTIME ?= 30s
## soak: 1,000 clients over 50 tenants for 60 s through one proxy (make test runs 10 s).
soak:
	TENANTPROXY_SOAK_SECONDS=60 $(GO) test -count=1 -timeout 10m -v -run 'TestSoak' ./e2e/ | grep -Ev 'level=|^=== RUN'

fuzz:
	$(GO) test -run '^$$' -fuzz FuzzRewrite -fuzztime $(FUZZTIME) ./rewrite
	$(GO) test -run '^$$' -fuzz FuzzCache -fuzztime $(FUZZTIME) ./rewrite
	$(GO) test -run '^$$' -fuzz FuzzModes -fuzztime $(FUZZTIME) ./rewrite
	$(GO) test -run '^$$' -fuzz FuzzReferences -fuzztime $(FUZZTIME) ./rewrite
	$(GO) test -run '^$$' -fuzz FuzzCheck -fuzztime $(FUZZTIME) ./rewrite/verify
	$(GO) test -run '^$$' -fuzz FuzzScan -fuzztime $(FUZZTIME) ./rewrite/leakproof
	$(GO) test -run '^$$' -fuzz FuzzVerify -fuzztime $(FUZZTIME) ./auth
	$(GO) test -run '^$$' -fuzz FuzzClaims -fuzztime $(FUZZTIME) ./auth
	$(GO) test -run '^$$' -fuzz FuzzCopyFilter -fuzztime $(FUZZTIME) ./proxy
	$(GO) test -run '^$$' -fuzz FuzzClientWire -fuzztime $(FUZZTIME) ./proxy
	$(GO) test -run '^$$' -fuzz FuzzAppendEvent -fuzztime $(FUZZTIME) ./audit
	$(GO) test -run '^$$' -fuzz FuzzStartup -fuzztime $(FUZZTIME) ./proxy
	$(GO) test -count=1 -run '^$$' -fuzz FuzzSessionMessages -fuzztime $(FUZZTIME) ./e2e

clean:
	rm -rf bin
