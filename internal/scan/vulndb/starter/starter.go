// Package starter holds the starter vulnerability database that ships inside the vigil
// binary, so that a fresh install finds real vulnerabilities without internet access.
//
// osv-starter.zip holds real OSV advisories, one JSON member per record named
// <Ecosystem>/<ID>.json: the Go vulnerability database (CC-BY-4.0), the RustSec
// advisory database (CC0-1.0) and Debian 12 records derived from Debian's changelogs
// (see NOTICE). Its zip comment is the time the newest record was modified, which is how
// old the data is (vulndb reports it as the database's age).
//
// Rebuild it from a directory of OSV records grouped by ecosystem with
//
//	go run ./internal/scan/vulndb/starter/gen -src ../shared/fixtures/osv \
//	    -out internal/scan/vulndb/starter/osv-starter.zip
//
// The output is deterministic: the same records give the same bytes.
package starter

import _ "embed"

// Zip is the starter database, an OSV all.zip-style archive.
//
//go:embed osv-starter.zip
var Zip []byte
