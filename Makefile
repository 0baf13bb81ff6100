# Flotilla: a container orchestration playground on a real Docker engine.
# `make help` lists the targets.

SHELL := /bin/bash
GO ?= go
BIN := bin/flotilla
ADDR ?= 127.0.0.1:8080
export CGO_ENABLED := 0

.DEFAULT_GOAL := help

##@ Run

.PHONY: run
run: build ## Build and start the controller on $(ADDR); it builds any missing image first
	$(BIN) serve --addr $(ADDR)

.PHONY: build
build: ## Build the flotilla binary into bin/
	$(GO) build -trimpath -o $(BIN) ./cmd/flotilla

.PHONY: images
images: build ## Build Flotilla's images (FROM scratch, never pulled) into the local engine
	$(BIN) images

VM_DIR ?= .flotilla/vm

.PHONY: vm
vm: ## Install QEMU and fetch a guest kernel into $(VM_DIR) for VM replicas (Debian, Ubuntu; apt-get, sudo when not root)
	bash images/vm/setup.sh $(VM_DIR)

.PHONY: down
down: build ## Remove every container and network this Flotilla instance owns
	$(BIN) down

##@ Test

.PHONY: test
test: ## Run every test, the bounded fuzzing, then every demo; Docker tests skip without an engine unless FLOTILLA_REQUIRE_DOCKER=1
	$(GO) vet ./...
	$(GO) test -count=1 -timeout 40m ./...
	$(MAKE) fuzz
	$(MAKE) demos

# A count, not a duration: a duration races the fuzzing coordinator's own
# deadline in Go 1.26 and can fail with "context deadline exceeded" having
# found nothing (go.dev/issue/75804).
FUZZTIME ?= 300000x
FUZZ_HTTP1 := FuzzParseRequest FuzzParseResponse FuzzChunkedEnd FuzzValidValue

.PHONY: fuzz
fuzz: ## Fuzz the balancer's HTTP/1.1 parser and the VM guest's command line, each target for $(FUZZTIME) inputs; crashes land in the package's testdata/fuzz
	@for f in $(FUZZ_HTTP1); do \
		echo "fuzz $$f"; \
		$(GO) test -run '^$$' -fuzz "^$$f\$$" -fuzztime $(FUZZTIME) ./orchestrator/lb/http1/ || exit 1; \
	done
	$(GO) test -run '^$$' -fuzz '^FuzzParseFormat$$' -fuzztime $(FUZZTIME) ./orchestrator/images/vmboot/

.PHONY: test-go
test-go: ## Run the Go tests only
	$(GO) test -count=1 -timeout 40m ./...

.PHONY: test-unit
test-unit: ## Run the tests that need no Docker engine
	$(GO) test -count=1 -short ./...

##@ Demos: each narrates a stage, breaks something and checks the lesson showed

.PHONY: demos
demos: build ## Every demo below, in order (starts a controller if none answers)
	$(BIN) demo all --addr $(ADDR)

.PHONY: demo-monolith
demo-monolith: build ## Stage 1: a crash in deals takes down the whole monolith
	$(BIN) demo monolith --addr $(ADDR)

.PHONY: demo-scaling
demo-scaling: build ## Stages 2 and 3: pinned clients without a balancer, then failover, carts and sticky with one
	$(BIN) demo scaling --addr $(ADDR)

.PHONY: demo-microservices
demo-microservices: build ## Stage 4: a crash in deals takes down only deals
	$(BIN) demo microservices --addr $(ADDR)

.PHONY: demo-clusters
demo-clusters: build ## Stage 6: per-service groups, scaling and healing, found by DNS; a dependency outage restarts nothing
	$(BIN) demo clusters --addr $(ADDR)

##@ Benchmarks

.PHONY: bench
bench: bench-scale bench-dashboard bench-lb ## Every benchmark below, in one run

.PHONY: bench-scale
bench-scale: ## Scale-out 0 -> 20: Flotilla vs the raw engine vs docker-compose, and kill to replacement
	$(GO) test -count=1 -run '^$$' -bench BenchmarkScaleOut -benchtime 1x -timeout 30m ./orchestrator/docker/

.PHONY: bench-dashboard
bench-dashboard: ## Kill to screen over the websocket, and 50 clients of which 5 never read
	$(GO) test -count=1 -run '^$$' -bench 'BenchmarkKillToScreen|BenchmarkSlowClients' -benchtime 1x -timeout 10m ./orchestrator/server/

.PHONY: bench-lb
bench-lb: build ## Balancer vs nginx and HAProxy: plain processes, then real replicas (installs them and wrk if missing)
	bash orchestrator/lb/lbbench/bench-lb.sh
	bash orchestrator/lb/lbbench/bench-lb-replicas.sh

##@ Help

.PHONY: help
help: ## Show this help
	@awk 'BEGIN {FS = ":.*##"; printf "Usage: make <target>\n"} \
		/^[a-zA-Z0-9_-]+:.*##/ { printf "  \033[36m%-19s\033[0m %s\n", $$1, $$2 } \
		/^##@/ { printf "\n%s\n", substr($$0, 5) }' $(MAKEFILE_LIST)
