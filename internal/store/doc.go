// Package store owns Vigil's data directory: it creates it with mode 0700, makes sure only
// one server uses it at a time, and (as later parts land) keeps the embedded database of
// policy, events and results in it.
//
// A [Dir] holds an exclusive flock on <dir>/vigil.lock for as long as it is open; the
// kernel drops it when the process dies, so a crash never leaves a stale lock behind.
package store
