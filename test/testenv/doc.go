// Package testenv gives integration tests real things to work on: a Docker daemon, a
// test image built without a registry, containers, networks and network namespaces, each
// removed when the test ends, pass or fail.
//
// Nothing here skips: a missing prerequisite (not root, no Docker, no busybox-static)
// fails the test with a message saying what to install, because an integration suite
// that quietly skips proves nothing. Everything a test creates carries the label
// vigil.test=1 so that leftovers of a killed run can be found and removed
// ([Docker.RemoveLeftovers]).
package testenv
