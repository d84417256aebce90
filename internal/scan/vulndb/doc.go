// Package vulndb is Vigil's offline vulnerability database: OSV advisories
// (https://ossf.github.io/osv-schema/) imported from directories of JSON records or the
// per-ecosystem all.zip archives the OSV project publishes, kept in an on-disk index, and
// matched against the packages of an inventory by each ecosystem's own version rules
// (package version).
//
// It needs nothing from the kernel. It reads and writes one directory (DefaultDir):
// index.db, a bbolt file keyed by (ecosystem, package name, record id) whose values are
// the compressed parts of a record that matching needs, so a scan reads only the
// records of the packages it asks about.
//
// Traps:
//   - Readers open index.db read-only; Import and Update never write it in place. They
//     copy it, apply the new records to the copy and rename the copy over it, under a
//     lock file that keeps two writers apart. An open DB keeps reading the file it
//     opened: Open again to see an import.
//   - Open seeds an empty directory from the starter database compiled into the binary
//     (package starter). When the directory cannot be written (a user without rights to
//     /var/lib/vigil), the index is built in a temporary directory that Close removes.
//   - Distro packages ("Debian:12", "Alpine:v3.19") match only advisories of their own
//     release, never upstream ranges; Debian and Alpine advisories name source packages,
//     so a package's SourceName/SourceVersion is used when the inventory set it.
//   - A record or version that cannot be read is a warning naming the file or record,
//     never the end of an import or a scan.
package vulndb
