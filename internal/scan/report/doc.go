// Package report writes a scan.Report for people and for machines: a table, JSON, SARIF
// 2.1.0 (code-scanning dashboards), CycloneDX 1.6 JSON (components and vulnerabilities)
// and SPDX 2.3 JSON (the package list). It also holds what every output shares: the
// severity order, the filters (--ignore-unfixed, --severity), the --fail-on threshold,
// the order findings are shown in and the summary counts.
//
// It does no I/O beyond the writer it is given and needs nothing from the kernel.
//
// Traps:
//   - The writers do not filter: apply a Filter to the report first, so that every format
//     and the --fail-on decision see the same findings.
//   - CycloneDX and SPDX documents carry a random serial number / namespace, so two runs
//     over the same target never produce byte-identical files; compare them parsed.
//   - A package found twice (the same stdlib in two Go binaries) is two components with
//     distinct bom-refs and SPDX ids; the purl alone is not a key.
package report
