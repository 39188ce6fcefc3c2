# rpacloud — the two commands of the README are `make run` and `make test`.
SHELL := /bin/bash
GO ?= go
BIN := $(HOME)/.cache/rpacloud/bin
# Nested Go modules (third-party plugin examples): not part of ./...
EXAMPLE_MODULES := $(patsubst %/go.mod,%,$(wildcard examples/*/go.mod))

.PHONY: run build vault test test-short check generate generate-check lint windows bench proto clean

## run: build and start the embedded platform on http://127.0.0.1:8080 (with Vault: built once on a new machine)
run: build vault
	$(BIN)/rpacloud dev --data-dir .rpacloud

## build: the rpacloud binary (daemon, robot agent, built-in plugins, CLI)
build:
	@mkdir -p $(BIN)
	@# -buildvcs=auto: the version command shows the commit even where GOFLAGS turns VCS stamping off
	$(GO) build -buildvcs=auto -o $(BIN)/rpacloud ./cmd/rpacloud

## vault: build the real Vault server once into ~/.cache/rpacloud/bin/vault (rpacloud dev and the tests use it)
vault:
	bash deploy/vault/build.sh

## image: the daemon and robot images from deploy/image/Containerfile without a container engine (as root; mmdebstrap), as one OCI layout in ~/.cache/rpacloud/image/out
.PHONY: image
image:
	@command -v mmdebstrap >/dev/null || { echo "make image needs Debian's mmdebstrap: apt-get install mmdebstrap"; exit 1; }
	$(GO) run ./cmd/rpacloud-image --out $(HOME)/.cache/rpacloud/image/out

## test: every test, with PostgreSQL (installed and started by .ci/services.sh)
test:
	bash .ci/services.sh $(GO) test -race -count=1 -timeout 20m ./...

## test-short: unit tests only, SQLite only, no services
test-short:
	$(GO) test -short ./...

## check: formatting, vet, staticcheck, the Windows build, and generated code up to date
check: lint windows generate-check

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	@# ent/ is generated (except ent/schema), and staticcheck flags patterns in it we cannot change.
	$(GO) tool staticcheck $$($(GO) list ./... | grep -vE '/rpacloud/ent(/|$$)') ./ent/schema/...
	@# Example plugins are modules of their own, outside the root's ./...:
	@# vetted and checked in their directory, with the root's staticcheck.
	@for m in $(EXAMPLE_MODULES); do (cd $$m && $(GO) vet ./... && $$(cd $(CURDIR) && $(GO) tool -n staticcheck) ./...) || exit 1; done

## windows: the binary cross-compiled for Windows, and the packages with Windows-only code vetted for Windows (the robot service)
windows:
	GOOS=windows GOARCH=amd64 $(GO) build -o /dev/null ./cmd/rpacloud
	@# Vet the package with Windows-only code; cmd/rpacloud's and robotagent's tests use Unix-only helpers (syscall.Kill).
	GOOS=windows GOARCH=amd64 $(GO) vet ./core/robotagent/winsvc/

## generate: regenerate ent and gqlgen output
generate:
	$(GO) generate ./...

## generate-check: fail when go generate changes any tracked file
generate-check: generate
	@git diff --exit-code --stat -- ent graph schema || (echo "generated code is stale: run make generate and commit"; exit 1)
	@test -z "$$(git status --porcelain -- ent graph schema)" || (git status --porcelain -- ent graph schema; echo "go generate created untracked files"; exit 1)

## bench: the benchmarks of the README's performance section
bench:
	bash .ci/services.sh $(GO) test -run '^$$' -bench . -benchmem ./core/... ./graph/dashboard/

clean:
	rm -rf .rpacloud

-include plugins/sdk/proto/Makefile.inc

## migration: after an ent/schema change, write the next migration files of both databases (NAME=add_x), with a PostgreSQL from .ci/services.sh
.PHONY: migration
migration:
	@test -n "$(NAME)" || { echo "usage: make migration NAME=add_something"; exit 1; }
	bash .ci/services.sh $(GO) run ./core/store/migrategen $(NAME)
