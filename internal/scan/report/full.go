package report

import (
	"encoding/json"
	"fmt"
	"io"

	"github.com/vigil-sec/vigil/internal/scan"
)

// fullReport is the JSON output plus what it leaves out: the files each package owns
// (scan.Package.Files is not part of the public JSON, since a host's packages own
// hundreds of thousands of files). The server needs them to tell which findings a
// running process uses, across the process boundary of its scans and in its store.
type fullReport struct {
	jsonReport
	// PackageFiles[i] are the files of Packages[i]; FindingFiles[i] those of the
	// package of Findings[i].
	PackageFiles [][]string `json:"package_files"`
	FindingFiles [][]string `json:"finding_files"`
}

// maxFull bounds what ReadFull accepts, so that a broken child process or a damaged
// store cannot make the server read without end.
const maxFull = 512 << 20

// WriteFull writes r as JSON with every package's files, for ReadFull.
func WriteFull(w io.Writer, r *scan.Report) error {
	rep := *r
	full := fullReport{jsonReport: jsonReport{Report: &rep, Summary: Summarize(&rep)},
		PackageFiles: make([][]string, len(rep.Packages)), FindingFiles: make([][]string, len(rep.Findings))}
	for i := range rep.Packages {
		full.PackageFiles[i] = rep.Packages[i].Files
	}
	for i := range rep.Findings {
		full.FindingFiles[i] = rep.Findings[i].Package.Files
	}
	return json.NewEncoder(w).Encode(full)
}

// ReadFull reads what WriteFull wrote, files included.
func ReadFull(rd io.Reader) (*scan.Report, error) {
	var full fullReport
	full.Report = &scan.Report{}
	dec := json.NewDecoder(io.LimitReader(rd, maxFull))
	if err := dec.Decode(&full); err != nil {
		return nil, fmt.Errorf("read scan report: %w", err)
	}
	r := full.Report
	if full.PackageFiles != nil && len(full.PackageFiles) != len(r.Packages) ||
		full.FindingFiles != nil && len(full.FindingFiles) != len(r.Findings) {
		return nil, fmt.Errorf("read scan report: %d package file lists for %d packages, %d finding file lists for %d findings",
			len(full.PackageFiles), len(r.Packages), len(full.FindingFiles), len(r.Findings))
	}
	for i, fs := range full.PackageFiles {
		r.Packages[i].Files = fs
	}
	for i, fs := range full.FindingFiles {
		r.Findings[i].Package.Files = fs
	}
	return r, nil
}
