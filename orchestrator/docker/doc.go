// Package docker is Flotilla's runtime driver and the only importer of the
// Docker SDK. It creates, starts, stops, lists and watches replicas, builds
// Flotilla's images, and returns Flotilla's own types and errors.
//
// Every object it creates carries io.flotilla.managed=true and the
// controller's instance label; every list is filtered by both, and an object
// without them is never touched. Volumes exist only as the stores of
// replicas that need one (volume.go): named, labelled, never bind mounts.
package docker
