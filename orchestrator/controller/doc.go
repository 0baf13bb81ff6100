// Package controller turns desired groups into running replicas.
//
// The reconcile is level-triggered: API writes, engine events, probe verdicts
// and a resync ticker only mark a group dirty and poke the loop. For each
// dirty group the loop observes (a label-filtered list), plans (MakePlan, a
// pure function) and applies the plan with bounded parallelism. Whatever
// happened before (a crash of the controller, a killed container, a changed
// desire) ends in the same converge step, so adoption after a restart needs
// no special code: owned containers are listed, matched by group and number,
// and kept.
//
// Errors requeue the group with backoff; a replica that keeps dying is
// replaced with a growing delay, and the group's status says crash-loop.
package controller
