package scan

import "time"

// Package is one installed package found in a target.
type Package struct {
	Name    string `json:"name"`
	Version string `json:"version"`
	// Ecosystem is the OSV ecosystem the package is matched in: "Debian:12",
	// "Alpine:v3.19", "Red Hat", "Go", "npm", "PyPI", "Maven", "crates.io", "RubyGems",
	// "Packagist", "NuGet". Distro packages carry the release, so they are matched only
	// against their distro's advisories.
	Ecosystem string `json:"ecosystem"`
	PURL      string `json:"purl"`
	// SourceName and SourceVersion name the distro source package a binary package was
	// built from (dpkg's Source: field); distro advisories name source packages.
	SourceName    string `json:"source_name,omitempty"`
	SourceVersion string `json:"source_version,omitempty"`
	// Location is the file the package was found in, as a path inside the target
	// ("/var/lib/dpkg/status", "/usr/local/bin/app").
	Location string `json:"location"`
	// Layer is the diff ID of the image layer that introduced the package (images only).
	Layer string `json:"layer,omitempty"`
	// Files are the paths inside the target the package owns, where the package
	// database says (dpkg .list, apk, rpm) or the file itself for a binary; they map a
	// running process's mapped files back to packages.
	Files []string `json:"-"`
}

// OS is the target's operating system, from os-release.
type OS struct {
	ID         string `json:"id"`                    // "debian", "alpine"
	VersionID  string `json:"version_id,omitempty"`  // "12", "3.19.1"
	PrettyName string `json:"pretty_name,omitempty"` // "Debian GNU/Linux 12 (bookworm)"
}

// Layer is one image layer, in order from the base.
type Layer struct {
	DiffID    string `json:"diff_id"`
	CreatedBy string `json:"created_by,omitempty"`
}

// Target says what was scanned.
type Target struct {
	Kind string `json:"kind"` // image, archive, container, host, dir
	Name string `json:"name"` // reference, path or container name
	// ID is the image ID (sha256:...) for images, the container ID for containers.
	ID string `json:"id,omitempty"`
}

// Inventory is what a target holds.
type Inventory struct {
	Target   Target    `json:"target"`
	OS       *OS       `json:"os,omitempty"`
	Layers   []Layer   `json:"layers,omitempty"`
	Packages []Package `json:"packages"`
	// Warnings are problems that did not stop the scan: a malformed database record,
	// an unreadable file, a file over the size bound. Each names the file.
	Warnings []string `json:"warnings,omitempty"`
}

// Severity levels, ordered.
const (
	SeverityUnknown  = "unknown"
	SeverityLow      = "low"
	SeverityMedium   = "medium"
	SeverityHigh     = "high"
	SeverityCritical = "critical"
)

// Finding is one vulnerability affecting one package.
type Finding struct {
	ID       string   `json:"id"` // the OSV record ID, e.g. "GO-2024-2687", "CVE-2023-2975"
	Aliases  []string `json:"aliases,omitempty"`
	Summary  string   `json:"summary,omitempty"`
	Severity string   `json:"severity"` // one of the Severity constants
	// Score is the CVSS base score computed from the record's vector, 0 when the record
	// has none.
	Score      float64 `json:"score,omitempty"`
	CVSSVector string  `json:"cvss_vector,omitempty"`
	Package    Package `json:"package"`
	// FixedVersion is the lowest version that fixes it, empty when there is no fix.
	FixedVersion string   `json:"fixed_version,omitempty"`
	References   []string `json:"references,omitempty"`
	// InUse says a running process maps a file of the package.
	InUse bool `json:"in_use,omitempty"`
}

// Report is a scan's result.
type Report struct {
	Inventory
	Findings  []Finding `json:"findings"`
	ScannedAt time.Time `json:"scanned_at"`
	// DBAge is how old the newest record source of the database was at scan time.
	DBAge time.Duration `json:"db_age_ns,omitempty"`
}
