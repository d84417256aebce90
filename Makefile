# Vigil: `make run` starts the server on this host, `make test` runs every test.
# Both first prepare the machine with scripts/setup.sh (idempotent: installs what is
# missing from Debian's packages and starts dockerd when it is not running).

SHELL   := /bin/bash
export PATH := /usr/local/go/bin:$(PATH)
GO      ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
BIN     := bin/vigil
PREFIX  ?= /usr/local
ARGS    ?=

.PHONY: all setup web webtest build install run test vet lint unit integration fuzz clean

all: build

setup:
	@bash scripts/setup.sh

# The web console: npm ci installs the locked dependencies, npm run build type-checks and
# bundles them into web/dist/app, which go:embed puts into the binary (see web/doc.go).
web:
	cd web && npm ci --no-audit --no-fund && npm run build

webtest: web
	cd web && npm test

build: web
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '-s -w -X main.version=$(VERSION)' -o $(BIN) ./cmd/vigil

install: build
	install -m 0755 $(BIN) $(PREFIX)/bin/vigil

# Builds, installs vigil on the PATH (so `vigil workloads` works from another shell) and
# runs the server in the foreground. Pass flags with ARGS='--listen 127.0.0.1:9000'.
run: setup install
	exec $(PREFIX)/bin/vigil up $(ARGS)

test: setup vet lint unit webtest integration

vet:
	$(GO) vet ./...
	$(GO) vet -tags integration ./test/... ./internal/audit/ ./internal/enforce/ ./internal/procmon/ ./internal/scan/inventory/

# staticcheck, pinned, installed into the Go bin dir the first time.
STATICCHECK_VERSION ?= v0.8.2
STATICCHECK := $(shell $(GO) env GOPATH)/bin/staticcheck
lint:
	@test -x $(STATICCHECK) || $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)
	$(STATICCHECK) ./...
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { echo "gofmt would change:"; gofmt -l $$(git ls-files '*.go'); exit 1; }

# The race detector needs cgo; the vigil binary itself is built without it.
unit:
	CGO_ENABLED=1 $(GO) test -count=1 -race ./...

# As root, against the real Docker daemon; fails (never skips) when something is missing.
# One package at a time (-p 1): several suites measure latencies and CPU budgets on the
# host, and running them side by side on a small machine made them measure each other.
integration: web
	$(GO) test -tags integration -count=1 -p 1 -timeout 20m ./test/... ./internal/audit/ ./internal/enforce/ ./internal/procmon/ ./internal/scan/inventory/

# Short fuzzing runs of every fuzz target; FUZZTIME=5m for a longer one.
FUZZTIME ?= 20s
fuzz:
	@set -e; for pkg in $$($(GO) list ./...); do \
		for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
			echo "fuzz $$pkg $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg; \
		done; \
	done

clean:
	rm -rf bin web/dist/app
