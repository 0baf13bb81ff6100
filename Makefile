# Flotilla: a container orchestration playground on a real Docker engine.
# `make help` lists the targets.

SHELL := /bin/bash
GO ?= go
BIN := bin/flotilla
ADDR ?= 127.0.0.1:8080
# engine (each replica a container of the local engine) or swarm (each
# group a Docker Swarm-mode service; swarm mode must be active).
RUNTIME ?= engine
export CGO_ENABLED := 0

.DEFAULT_GOAL := help

##@ Run

.PHONY: run
run: build ## Build and start the controller on $(ADDR) with runtime $(RUNTIME); it builds any missing image first
	$(BIN) serve --addr $(ADDR) --runtime $(RUNTIME)

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
	FLOTILLA_SWARM_LATER=1 $(GO) test -count=1 -timeout 40m ./...
	$(MAKE) test-swarm
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

# Initialising and leaving a swarm rewrites the engine's network rules, so
# the tests that do it run alone, after the others.
.PHONY: test-swarm
test-swarm: ## Run the tests that use swarm mode (they initialise a single-node swarm and leave it, unless one is active)
	$(GO) test -count=1 -timeout 20m -run 'Swarm' ./orchestrator/docker/ ./dashboard/
	$(GO) test -count=1 -timeout 20m -run 'TestConformance/swarm' ./orchestrator/conformance/

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

.PHONY: demo-vms
demo-vms: build ## Stage 5: the same shop as a container, a pod and a VM: start, memory, CPU, what each sees, a guest kernel panic
	$(BIN) demo vms --addr $(ADDR)

.PHONY: demo-clusters
demo-clusters: build ## Stage 6: per-service groups, scaling and healing, found by DNS; a dependency outage restarts nothing
	$(BIN) demo clusters --addr $(ADDR)

.PHONY: demo-events
demo-events: build ## Stage 7: the message bus: a subscriber down stops checkout only over HTTP; fanout, redelivery, dead letters, shared carts
	$(BIN) demo events --addr $(ADDR)

.PHONY: demo-serverless
demo-serverless: build ## Stage 8: functions at zero: a cold start's waterfall, idle to zero, a burst scales out, a herd wakes once, a warm pool, receipt follows its queue
	$(BIN) demo serverless --addr $(ADDR)

.PHONY: demo-rollout
demo-rollout: build ## Stage 9: v1 to v2 under shoppers: recreate loses requests, rolling loses none, a bad canary rolled back on its own, blue-green switches at once and back
	$(BIN) demo rollout --addr $(ADDR)

.PHONY: demo-swarm
demo-swarm: build ## Past one machine: the same group on Docker Swarm mode (a controller of its own, a single-node swarm made and left if none is active): Swarm heals a kill, rolls v1 to v2, a drained node empties
	$(BIN) demo swarm --addr $(ADDR)

##@ Benchmarks

.PHONY: bench
bench: bench-scale bench-isolation bench-dashboard bench-lb bench-bus bench-coldstart bench-rollout bench-swarm ## Every benchmark below, in one run

.PHONY: bench-scale
bench-scale: ## Scale-out 0 -> 20: Flotilla vs the raw engine vs docker-compose, and kill to replacement
	$(GO) test -count=1 -run '^$$' -bench BenchmarkScaleOut -benchtime 1x -timeout 30m ./orchestrator/docker/

TRIALS ?= 5

.PHONY: bench-isolation
bench-isolation: ## One replica of each kind vs its floor (docker run, a hand-made pod, bare QEMU), TRIALS=5 each: start to 200, memory, idle CPU, req/s; vm rows need make vm
	FLOTILLA_BENCH_TRIALS=$(TRIALS) $(GO) test -count=1 -run '^$$' -bench BenchmarkIsolation -benchtime 1x -timeout 60m ./orchestrator/docker/

.PHONY: bench-dashboard
bench-dashboard: ## Kill to screen over the websocket, and 50 clients of which 5 never read
	$(GO) test -count=1 -run '^$$' -bench 'BenchmarkKillToScreen|BenchmarkSlowClients' -benchtime 1x -timeout 10m ./orchestrator/server/

.PHONY: bench-bus
bench-bus: ## The bus: fanout to 3 subscribers vs bare nats.go (through the containers, then the consume loop alone in this process), checkout with a slow subscriber (bus vs http), the bus's memory at 1 M messages
	$(GO) test -count=1 -run '^$$' -bench BenchmarkBus -benchtime 1x -timeout 30m ./orchestrator/controller/
	$(GO) test -count=1 -run '^$$' -bench BenchmarkFanout -benchtime 3x -timeout 10m ./sample-services/bus/consume/

# The cold-start benchmark's trials: 20 unless TRIALS is given.
COLD_TRIALS := $(if $(filter command line environment,$(origin TRIALS)),$(TRIALS),20)

.PHONY: bench-coldstart
bench-coldstart: ## Serverless, TRIALS=20 each, p50/p99: cold start from zero vs the engine's floor, wake from a warm pool, a herd of 100 at zero, 0 -> 20 from a pool vs docker-compose
	FLOTILLA_BENCH_TRIALS=$(COLD_TRIALS) $(GO) test -count=1 -run '^$$' -bench BenchmarkColdStart -benchtime 1x -timeout 60m ./orchestrator/docker/

# The rollout benchmark's rounds: 3 unless TRIALS is given.
ROLLOUT_TRIALS := $(if $(filter command line environment,$(origin TRIALS)),$(TRIALS),3)

.PHONY: bench-rollout
bench-rollout: ## Rolling update of 10 replicas v1 -> v2 under 200 req/s, TRIALS=3 rounds, p50/max: failed requests (target 0), time, p99 before vs during; docker-compose's recreate beside it
	FLOTILLA_BENCH_TRIALS=$(ROLLOUT_TRIALS) $(GO) test -count=1 -run '^$$' -bench '^BenchmarkRollingUpdate$$' -benchtime 1x -timeout 60m ./orchestrator/docker/

# The swarm benchmark's rounds: 3 unless TRIALS is given.
SWARM_TRIALS := $(if $(filter command line environment,$(origin TRIALS)),$(TRIALS),3)

.PHONY: bench-swarm
bench-swarm: ## Scale-out 0 -> 20 and kill -> replacement, TRIALS=3 rounds: Flotilla on the engine and on Swarm mode vs plain docker service create/scale, with the ratios
	FLOTILLA_BENCH_ROUNDS=$(SWARM_TRIALS) $(GO) test -count=1 -run '^$$' -bench '^BenchmarkSwarm$$' -benchtime 1x -timeout 30m ./orchestrator/conformance/

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
