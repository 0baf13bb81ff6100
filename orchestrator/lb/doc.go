// Package lb is the data plane of a group's load balancer: it listens on
// 127.0.0.1, spreads requests over the group's ready replicas, and keeps a
// failing replica from hurting more requests than it must.
package lb
