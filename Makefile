# provledger — build, run and test. Needs only Go (1.26+) on a Debian machine;
# `make proto` also needs Debian's protobuf-compiler (installed on demand).
export GOTOOLCHAIN := local
GO      ?= go
BIN     := bin
DATA    ?= ./data
PKGS    := ./...
# Packages with concurrency that also run under the race detector in `make test`
# (query and query/graph: the lock-free adjacency cache and parallel sessions;
# query/scanner's whole suite takes 3.5 min under -race: only the tests of its
# background prefetch, SCANNER_RACE_RE, run under the race detector here).
SCANNER_RACE_RE := TestPolicyThresholds|TestFastPathMatchesReference
RACE_PKGS_RE := /(ledger|api|raft)(/|$$)|/query(/graph)?$$

.PHONY: all build run cluster cluster-tls bench-cluster test fuzz proto bench bench-full bench-baseline bench-check bench-limits bench-append bench-go clean vet

all: build

build:
	$(GO) build -o $(BIN)/ ./cmd/... ./bench/cmd/...

## run: build and start one node (--dev) on loopback, data in ./data
run: build
	@echo "starting provd --dev (data in $(DATA); Ctrl-C stops it)"
	@echo "in another shell:  ./bin/prov keygen --out ./keys && ./bin/prov append --key ./keys/signer.key --type openlineage examples/openlineage-run.json"
	@echo "metrics:           http://127.0.0.1:7403/metrics  (pprof: http://127.0.0.1:7403/debug/pprof/; provd's banner shows the address in use)"
	$(BIN)/provd --dev --data $(DATA)

## cluster: build and start 3 provd nodes of one Raft cluster on 127.0.0.1
## (gRPC 7410/7420/7430, HTTP 7411/7421/7431, Raft 7412/7422/7432, admin
## 7413/7423/7433; data in
## $(DATA)/node1..3); prints how to use them; Ctrl-C stops all three
cluster: build
	@BIN=$(BIN) DATA=$(DATA) ./scripts/cluster.sh

## cluster-tls: the same 3 nodes with TLS everywhere (gRPC 7510/7520/7530):
## certificates made by `provd certs` in $(DATA)/tls/certs, node-to-node
## mutual TLS for Raft and forwarding, client certificates for the API;
## prints how to use them with prov --tls-ca/--tls-cert/--tls-key
cluster-tls: build
	@BIN=$(BIN) DATA=$(DATA) ./scripts/cluster-tls.sh

## test: the whole suite (unit, integration, fuzz seed corpora, race on concurrent packages)
test:
	$(GO) vet $(PKGS)
	$(GO) test -count=1 -timeout 12m $(PKGS)
	$(GO) test -race -count=1 -timeout 10m $$($(GO) list $(PKGS) | grep -E '$(RACE_PKGS_RE)')
	$(GO) test -race -count=1 -timeout 10m -run '$(SCANNER_RACE_RE)' ./query/scanner

vet:
	$(GO) vet $(PKGS)

## fuzz: run each fuzz target for FUZZTIME (default 30s)
FUZZTIME ?= 30s
fuzz:
	@for pkg in $$($(GO) list $(PKGS)); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg 2>/dev/null | grep '^Fuzz'); do \
	    echo "== $$pkg $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
	  done; \
	done

## proto: regenerate api/provledgerpb from api/proto (plugins pinned in go.mod)
proto:
	@command -v protoc >/dev/null || (apt-get update -qq && apt-get install -y -qq protobuf-compiler)
	protoc -I api/proto \
	  --plugin=protoc-gen-go="$$($(GO) tool -n protoc-gen-go)" \
	  --plugin=protoc-gen-go-grpc="$$($(GO) tool -n protoc-gen-go-grpc)" \
	  --go_out=. --go_opt=module=github.com/provledger/provledger \
	  --go-grpc_out=. --go-grpc_opt=module=github.com/provledger/provledger \
	  $$(find api/proto -name '*.proto')

## bench: the short suite (< 5 min on a quiet 2-core machine): machine limits,
## append matrix on 1 node and a 3-node cluster, proofs, disk, restart, audit,
## scanner, lineage, snapshot; JSON, report.md and SVG plots in
## bench/results/<UTC timestamp>/. BENCH_FLAGS adds provbench suite flags
## (e.g. BENCH_FLAGS='--data-root /mnt/ssd'); `nice -n -10` helps on a shared machine.
BENCH_FLAGS ?=
bench: build
	$(BIN)/provbench suite --profile short --provd $(BIN)/provd $(BENCH_FLAGS)

## bench-full: the whole matrix (144 append cells), a 10M-entry log for
## proofs, disk and restart, the issues' scales for the rest (~2-3 h)
bench-full: build
	$(BIN)/provbench suite --profile full --provd $(BIN)/provd $(BENCH_FLAGS)

## bench-baseline: a short run written also to bench/baseline/short.json, to
## commit as the baseline bench-check compares with (run it on a quiet machine)
BASELINE ?= bench/baseline/short.json
bench-baseline: build
	$(BIN)/provbench suite --profile short --provd $(BIN)/provd --baseline-out $(BASELINE) $(BENCH_FLAGS)

## bench-check: a fresh short run against $(BASELINE), benchstat-style; fails
## on a regression beyond THRESHOLD (a fraction: 0.15 = 15%); not part of make test
THRESHOLD ?= 0.15
bench-check: build
	$(BIN)/provbench check --profile short --provd $(BIN)/provd --baseline $(BASELINE) --threshold $(THRESHOLD) $(BENCH_FLAGS)

bench-limits: build
	$(BIN)/provbench limits

## bench-append: appends through gRPC in each mode, 64 clients, 15 s each
bench-append: build
	@for m in unary stream batch; do \
	  $(BIN)/provbench append --spawn --provd $(BIN)/provd --clients 64 --duration 15s --mode $$m || exit 1; \
	done

## bench-cluster: 3 provd nodes of one Raft cluster under 64 clients, then a leader kill (~1 min; results in bench/results/)
bench-cluster: build
	$(BIN)/provbench cluster --duration 15s --presign 120000

## bench-go: go benchmarks of the hot paths
bench-go:
	$(GO) test -run '^$$' -bench . -benchmem ./crypto/... ./ledger/...

clean:
	rm -rf $(BIN)
