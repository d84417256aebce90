// Package docker adapts the Docker Engine API to the workload registry's Runtime
// interface, with the official client (github.com/moby/moby/client).
//
// The client negotiates the API version with the daemon, so any Docker Engine that speaks
// API 1.40 or later (Docker 19.03 and up) works. The adapter only reads: it never creates,
// changes or removes anything in Docker. Close the Runtime to release the client's
// connections.
package docker
