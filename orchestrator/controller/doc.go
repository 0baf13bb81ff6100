// Package controller turns desired groups into running replicas.
//
// The reconcile is level-triggered: API writes, runtime events, probe
// verdicts and a resync ticker only mark a group dirty and poke the loop
// (loop.go). For each dirty group one reconcile lists the runtime once and
// goes through three steps:
//
//   - observe (observe.go) reads the group's replicas out of that list, folds
//     in runtime events that are ahead of it and returns an Observed value;
//     it changes nothing;
//   - MakePlan (plan.go) is a pure function of the desired spec and what was
//     observed: typed replica actions (create, remove, replace; or set count
//     and unplace for a placing runtime), the balancer's step (start, switch
//     policy, restart on a new port, close), the prober's targets and the
//     crash-loop records;
//   - apply (apply.go, balancers.go, probes.go) carries the plan out, with
//     bounded parallelism, and is the only step with side effects.
//
// Whatever happened before (a crash of the controller, a killed replica, a
// changed desire) ends in the same converge step, so adoption after a
// restart needs no special code: owned replicas are listed, matched by group
// and number, and kept.
//
// Everything the controller knows of one group is one value (group.go);
// what runtime events said of one replica ahead of the list is one note.
// The runtime is seen through small interfaces (runtime.go): a
// ReplicaRuntime runs replicas one by one as the controller tells it (the
// engine's containers), a PlacingRuntime is told a group's count and
// template and places and heals replicas itself.
//
// Errors requeue the group with backoff; a replica that keeps dying is
// replaced with a growing delay, and the group's status says crash-loop.
package controller
