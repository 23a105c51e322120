# MCP Mediator — the things people run. `make help` lists them.
.DEFAULT_GOAL := help
GO ?= go

.PHONY: help run test test-go deps lint fuzz bench bench-report bench-instructions bench-stdio-fleet build

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "}; {printf "  %-10s %s\n", $$1, $$2}'

run: ## run the mediator on the embedded default (demo upstream, example policy, ./mediator.db)
	$(GO) run ./cmd/mediator serve

build: ## build ./bin/mediator
	$(GO) build -buildvcs=auto -o bin/mediator ./cmd/mediator # -buildvcs: the VCS revision in `mediator version`, even under GOFLAGS=-buildvcs=false

deps: ## install what the tests need (Node packages for interop tests)
	./scripts/install-test-deps.sh

test: deps test-go ## install test dependencies, then run every test

# ./... skips testdata/, which holds a real program with its own tests.
TEST_PKGS := ./... ./tools/testdata/conformance-upstream/
# Programs under testdata without tests of their own, checked by lint too.
LINT_PKGS := $(TEST_PKGS) ./tools/testdata/fakeupstream/ ./tools/testdata/mcpgorelay/

test-go: ## run the Go tests only (Node-based tests skip if deps are missing)
	$(GO) test -race -count=1 $(TEST_PKGS)

lint: ## gofmt, go vet, staticcheck
	@test -z "$$(gofmt -l .)" || (gofmt -l .; exit 1)
	$(GO) vet $(LINT_PKGS)
	$(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2 $(LINT_PKGS)

fuzz: ## run each fuzz target for 30s
	@for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
	    echo "== $$pkg $$f"; $(GO) test -run XXX -fuzz "^$$f$$" -fuzztime 30s $$pkg || exit 1; \
	  done; \
	done

bench: ## run the Go micro-benchmarks
	$(GO) test -run XXX -bench . -benchmem ./...

bench-report: ## measure direct vs relayed vs mediated calls, and count instructions per call, into BENCHMARKS.md (~20 min; QUICK=1: ~4 min)
	./scripts/bench.sh $(if $(QUICK),--quick)

bench-instructions: ## count instructions per call of the mediator and the bare relay under callgrind, into BENCHMARKS.md (~8 min; valgrind, installed when missing)
	./scripts/instructions.sh --out BENCHMARKS.md

bench-stdio-fleet: ## 32 stdio agents sharing one database, one each, and attached to a serve, into BENCHMARKS.md (~1 min)
	./scripts/stdio-fleet.sh --out BENCHMARKS.md
