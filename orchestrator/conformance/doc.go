// Package conformance is the suite every runtime passes, written once
// against Flotilla's REST API: a whole controller (server.Serve) is started
// on the runtime under test, and each case goes through api.Client and the
// group's balancer on 127.0.0.1 only, never through the runtime itself, so
// the same case runs on the local engine and on Docker Swarm mode.
//
// The cases: create a group and wait until it is ready; scale it up and
// down; kill a replica under a bounded load of GETs (none may fail, and a
// new replica becomes ready: made by Flotilla on the engine, by Swarm in
// swarm mode); pause a replica (it leaves rotation, GETs keep working) and
// unpause it; switch scenarios (the groups follow); restart the controller
// on the same state directory and project (it adopts every replica and
// creates or removes none); delete a group (its replicas go).
//
// `go test ./orchestrator/conformance/` runs it as TestConformance/<runtime>/<case>;
// `make bench-swarm` runs BenchmarkSwarm beside it: scale-out and healing
// on both runtimes and on plain `docker service` commands.
package conformance
