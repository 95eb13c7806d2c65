# ctlab — an interactive container-internals lab.
# `make help` lists the targets.

SHELL     := /bin/bash
GO        ?= go
BIN       ?= bin/ctlab
# ctlab is bound into containers as /.ctlab/ctlab, whose rootfs has no libc:
# build it (and test binaries, which play its role in tests) fully static.
# cgo stays on for the nsexec constructor.
TAGS      := netgo,osusergo
# ctlab version/--version: the version (.ci/dist/version.sh) and commit.
VERSION   := $(shell bash .ci/dist/version.sh 2>/dev/null || echo 0.1.0)
VERSION_X := -X main.version=$(VERSION) -X main.commit=$(shell git rev-parse HEAD 2>/dev/null)
STATIC    := -ldflags '-linkmode external -extldflags "-static" $(VERSION_X)'
GOFLAGS_B := -tags $(TAGS) $(STATIC)
# ctlab-oci is built without cgo (static all the same): each of its calls
# then skips libc's start-up, which probes the CPU's caches with cpuid (slow
# in a VM), about 0.5 ms of every create, start and delete. Its containers'
# init and exec helper are ctlab-init, which has the C stage.
GOFLAGS_OCI := -tags $(TAGS) -ldflags '$(VERSION_X)'
# ctlab-init is linked against musl where musl-gcc is installed (make deps):
# its C stage runs libc's start-up once per container start, and glibc's
# asks the CPU for its cache sizes with ~30 cpuid instructions, each a trap
# to the hypervisor in a VM (0.6 ms here, musl's 0.1 ms). Without musl-gcc
# it is built with glibc, as everything else. (Looked up by the shell when
# the line runs, after deps.sh has installed musl-tools; CC_INIT overrides.)
CC_INIT   ?=
PKGS      := ./...

export CGO_ENABLED=1
# sudo resets PATH (secure_path): find a Go installed the usual way anyway.
export PATH := $(PATH):/usr/local/go/bin

.PHONY: help build run test test-root test-v2 test-oci test-systemd bench lint deps clean dist test-dist

help: ## show this help
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z0-9_-]+:.*## / {printf "  \033[36m%-16s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

deps: ## install the system packages the tests and benchmarks use (Debian/Ubuntu, as root)
	@bash .ci/deps.sh

build: ## build bin/ctlab, bin/ctlab-tui (the UI), bin/ctlab-init (the container init) and bin/ctlab-oci (the OCI runtime), all static
	@bash .ci/deps.sh build
	$(GO) build $(GOFLAGS_B) -o $(BIN) ./cmd/ctlab
	$(GO) build $(GOFLAGS_B) -o $(BIN)-tui ./cmd/ctlab-tui
	CC="$(or $(CC_INIT),$$(command -v musl-gcc || echo $${CC:-gcc}))" $(GO) build $(GOFLAGS_B) -o $(BIN)-init ./cmd/ctlab-init
	CGO_ENABLED=0 $(GO) build $(GOFLAGS_OCI) -o $(BIN)-oci ./cmd/ctlab-oci

run: build ## build and start the lessons (TUI)
	./$(BIN)

test: deps lint build test-root test-v2 test-oci test-systemd test-dist ## everything: vet, unit + root kernel tests here, the cgroup v2 VM, containerd/podman + the OCI suite on ctlab-oci, the systemd VM, the packages
	@bash .ci/systemdvm/summary.sh
	@echo "make test: all suites passed"

test-root: build ## unit and kernel tests on this host (as root; build first: the OCI-runtime lesson runs bin/ctlab-oci)
	$(GO) test $(GOFLAGS_B) -p 1 -v -count=1 -timeout 30m $(PKGS) 2>&1 | tee .ci/last-host-test.log; exit $${PIPESTATUS[0]}
	@bash .ci/check-skips.sh .ci/last-host-test.log

test-oci: build ## ctlab-oci under podman and a private containerd, and the OCI validation suite vs runc (~5 min)
	timeout 300 bash .ci/oci/clients.sh
	timeout 900 bash .ci/oci/validation.sh

test-v2: build ## the sandbox's kernel tests inside a qemu VM with pure cgroup v2
	bash .ci/v2vm/run.sh ./sandbox/... ./lab

test-systemd: build ## kernel tests + every scenario in a Debian 12 VM booted with systemd, pure v2, run via sudo from a login session and from a service
	bash .ci/systemdvm/run.sh

dist: ## dist/: .deb and static tarball (amd64, arm64), man pages, completions, SHA256SUMS
	@bash .ci/deps.sh dist
	VERSION=$(VERSION) bash .ci/dist/build.sh

test-dist: dist ## install the .deb in a clean Debian 12 chroot (no Go), use it, purge it; lintian
	bash .ci/dist/test.sh

bench: deps build ## benchmarks: ctlab vs runc start, exec vs runc exec/nsenter, ctlab-oci vs runc create+start+delete, grading vs umoci, TUI frames
	$(GO) test $(GOFLAGS_B) -run '^$$' -bench . -benchtime 40x -timeout 30m ./cmd/ctlab/
	$(GO) test $(GOFLAGS_B) -run '^$$' -bench . -benchtime 20x -count 3 -timeout 30m ./cmd/ctlab-oci/
	$(GO) test $(GOFLAGS_B) -run '^$$' -bench . -benchtime 20x -timeout 30m ./sandbox/...
	$(GO) test $(GOFLAGS_B) -run '^$$' -bench . -benchtime 3x -timeout 30m ./lab/...
	$(GO) test $(GOFLAGS_B) -run '^$$' -bench . -timeout 30m ./tui/...

lint: ## gofmt and go vet
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet -tags $(TAGS) $(PKGS)

clean: ## remove build outputs (not ctlab's state: see ctlab cleanup)
	rm -rf bin dist
