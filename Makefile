# proctrack: build, test and measure. Every target works on a fresh machine
# once .ci/setup has installed the system tools (see README).
GO      ?= go
PKGS    ?= ./...
STATICCHECK ?= $(shell command -v staticcheck 2>/dev/null || echo $(HOME)/go/bin/staticcheck)

.PHONY: all build test race bench lint generate generate-check run tools vmtest

all: build lint test

## build: compile everything without cgo, as users do, for amd64 and arm64
build:
	CGO_ENABLED=0 $(GO) build $(PKGS)
	CGO_ENABLED=0 GOOS=linux GOARCH=arm64 $(GO) build $(PKGS)

## test: every test, with the race detector, one package at a time (the method
## tests share the host's audit state and measure storms); root-only tests skip without root
test:
	$(GO) test -race -count=1 -p 1 -timeout 20m $(PKGS)

## bench: the benchmarks whose figures the README reports
bench:
	$(GO) test -run '^$$' -bench . -benchmem -count=1 -timeout 30m $(PKGS)

## lint: gofmt, go vet, staticcheck
lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)
	$(STATICCHECK) $(PKGS)

## tools: install the Go tools lint needs
tools:
	$(GO) install honnef.co/go/tools/cmd/staticcheck@v0.8.2

## generate: rebuild the generated files: the BPF objects and their Go
## bindings for amd64 and arm64 (bpf2go; needs clang, llvm-strip and libbpf
## headers) and the system call tables (internal/sysnum, from x/sys)
generate:
	$(GO) generate $(PKGS)

## generate-check: fail if the committed generated files are not what generate makes
generate-check: generate
	git diff --exit-code -- bpf/ internal/sysnum/ || { echo "generated files are stale: run make generate and commit"; exit 1; }

## run: the main example: stream process events with the best method available
## (ARGS="--method netlink --json"). Built, then run: `go run` exits 1 when
## interrupted, which made Ctrl-C an error of make's; the example exits 0.
run:
	$(GO) build -o .bin/tail ./examples/tail
	./.bin/tail $(ARGS)

## vmtest: boot Debian's 6.12 (bpf LSM, IMA) and 6.1 kernels, x86_64 and arm64,
## under qemu and run the VM tests: the runner's probe, the eBPF method's
## tiers, hooks and IMA, the exit counter's and the socket iterator's programs,
## the seccomp allow list (arm64)
VMTEST_ARGS ?= -pkg ./internal/vmtest,./methods/ebpf,./procmon,./internal/exits,./internal/sockfds,./procmon/seccomp -run '^TestVM'
vmtest:
	bash .ci/vmtest.sh $(VMTEST_ARGS)
