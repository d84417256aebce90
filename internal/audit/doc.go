// Package audit checks a Docker host against the CIS Docker Benchmark (v1.8.0 control
// ids; titles and remediation in our own words): host configuration, daemon
// configuration, daemon files, images and container runtime. Checks are Go, not shell.
//
// Every check reads the system only through an [Env]: host files under Env.Root, the
// daemon's answers, its effective configuration (daemon.json merged with the dockerd
// command line) and the inspected containers and images. [LoadEnv] fills it from the
// real host; tests fill it from fixtures. A check that cannot tell (a file missing, a
// part of the Env that failed to load) says SKIP with the reason rather than guess.
package audit
