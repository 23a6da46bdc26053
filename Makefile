# wasmserve: `make run` serves the default example, `make test` runs every test.
GO ?= go
EXAMPLES := $(sort $(dir $(wildcard guests/examples/*/Makefile)))
export WASMSERVE_TEST_CACHE ?= $(CURDIR)/.cache/wazero
# An execution count, not a duration: Go 1.26's fuzz coordinator can fail a duration-bounded
# run with "context deadline exceeded" when a worker is mid-call at the deadline (go.dev/issue/75804).
FUZZTIME ?= 3000x

all: build

## build: bin/wasmserve and every example guest, each next to its source
build: bin/wasmserve guests

bin/wasmserve: FORCE
	$(GO) build -trimpath -ldflags "-X main.sourceDir=$(CURDIR)" -o bin/wasmserve ./cmd/wasmserve

guests:
	@for d in $(EXAMPLES); do $(MAKE) --no-print-directory -C $$d all abi2 || exit 1; done

## run: build the Go example guest and serve it on 127.0.0.1:9090
run: bin/wasmserve
	$(MAKE) --no-print-directory -C guests/examples/hello-go
	bin/wasmserve guests/examples/hello-go/app.ini

## deps: install the Debian packages the tests need (as root), or name them
deps:
	scripts/ensure-deps.sh

## test: every test, from a fresh machine
test: deps build
	$(GO) mod tidy -diff
	cd bench && $(GO) mod tidy -diff
	cd deploy && $(GO) mod tidy -diff
	$(GO) vet ./...
	$(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2 ./...
	GOOS=wasip1 GOARCH=wasm $(GO) vet ./abi/... ./guests/...
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "gofmt needed"; exit 1; }
	$(GO) test -race -count=1 -timeout 15m ./...
	cd bench && $(GO) vet ./... && $(GO) test -count=1 -timeout 10m ./...
	cd deploy && $(GO) vet ./... && $(GO) test -count=1 -timeout 10m ./...
	$(MAKE) --no-print-directory fuzz

## bench: the side-by-side benchmarks; writes bench/RESULTS.md and bench/charts/
bench: build
	cd bench && $(GO) run . -rounds 3 -duration 3s

## fuzz: run every fuzz target briefly
fuzz:
	@for t in $$(grep -rl --include='*_test.go' '^func Fuzz' . | xargs -n1 dirname | sort -u); do \
	  for f in $$(grep -ho '^func Fuzz[A-Za-z0-9_]*' $$t/*_test.go | sed 's/func //'); do \
	    echo "fuzz $$t $$f"; $(GO) test -run='^$$' -fuzz="^$$f$$" -fuzztime=$(FUZZTIME) $$t || exit 1; \
	  done; done

## image: the container image as an OCI tarball, bin/wasmserve-image.tar, without a Docker engine
image:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags=-s -o bin/wasmserve-static ./cmd/wasmserve
	$(MAKE) --no-print-directory -C guests/examples/hello-go
	cd deploy && $(GO) run ./cmd/image -binary ../bin/wasmserve-static -module ../guests/examples/hello-go/hello.wasm -ini app.ini -out ../bin/wasmserve-image.tar

clean:
	rm -rf bin .cache
	@for d in $(EXAMPLES); do $(MAKE) --no-print-directory -C $$d clean; done

FORCE:
.PHONY: all build guests run deps test fuzz bench image clean FORCE
