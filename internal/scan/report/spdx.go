package report

import (
	"encoding/json"
	"io"
	"net/url"
	"regexp"
	"strconv"
	"time"

	"github.com/vigil-sec/vigil/internal/scan"
)

// SPDX 2.3 JSON (https://spdx.github.io/spdx-spec/v2.3/): the document, its packages and
// their relationships.
type spdxDoc struct {
	SPDXVersion       string         `json:"spdxVersion"`
	DataLicense       string         `json:"dataLicense"`
	SPDXID            string         `json:"SPDXID"`
	Name              string         `json:"name"`
	DocumentNamespace string         `json:"documentNamespace"`
	CreationInfo      spdxCreation   `json:"creationInfo"`
	Packages          []spdxPackage  `json:"packages"`
	Relationships     []spdxRelation `json:"relationships"`
}

type spdxCreation struct {
	Created  string   `json:"created"`
	Creators []string `json:"creators"`
	Comment  string   `json:"comment,omitempty"`
}

type spdxPackage struct {
	SPDXID                string       `json:"SPDXID"`
	Name                  string       `json:"name"`
	VersionInfo           string       `json:"versionInfo,omitempty"`
	DownloadLocation      string       `json:"downloadLocation"`
	FilesAnalyzed         bool         `json:"filesAnalyzed"`
	SourceInfo            string       `json:"sourceInfo,omitempty"`
	LicenseConcluded      string       `json:"licenseConcluded"`
	LicenseDeclared       string       `json:"licenseDeclared"`
	CopyrightText         string       `json:"copyrightText"`
	PrimaryPackagePurpose string       `json:"primaryPackagePurpose,omitempty"`
	ExternalRefs          []spdxExtRef `json:"externalRefs,omitempty"`
}

type spdxExtRef struct {
	ReferenceCategory string `json:"referenceCategory"`
	ReferenceType     string `json:"referenceType"`
	ReferenceLocator  string `json:"referenceLocator"`
}

type spdxRelation struct {
	SPDXElementID      string `json:"spdxElementId"`
	RelationshipType   string `json:"relationshipType"`
	RelatedSPDXElement string `json:"relatedSpdxElement"`
}

// spdxNoAssertion is SPDX's "this tool makes no claim".
const spdxNoAssertion = "NOASSERTION"

// spdxIDUnsafe is what an SPDX identifier may not hold (idstring = 1*(ALPHA / DIGIT / "-" / ".")).
var spdxIDUnsafe = regexp.MustCompile(`[^A-Za-z0-9.-]+`)

// WriteSPDX writes the report's package list as an SPDX 2.3 JSON document: the target as
// the package the document DESCRIBES, which CONTAINS the operating system (when known)
// and every package found, each with its purl as a PACKAGE-MANAGER external reference.
// SPDX 2.3 has no place for vulnerabilities; use CycloneDX for those.
func WriteSPDX(w io.Writer, r *scan.Report, tool Tool) error {
	ts := r.ScannedAt
	if ts.IsZero() {
		ts = time.Now()
	}
	created := ts.UTC().Format("2006-01-02T15:04:05Z")
	name := r.Target.Kind + " " + r.Target.Name
	doc := spdxDoc{
		SPDXVersion: "SPDX-2.3",
		DataLicense: "CC0-1.0",
		SPDXID:      "SPDXRef-DOCUMENT",
		Name:        name,
		DocumentNamespace: "https://vigil.dev/spdx/" + url.PathEscape(r.Target.Kind) + "/" +
			url.PathEscape(spdxIDUnsafe.ReplaceAllString(r.Target.Name, "-")) + "-" + newUUID(),
		CreationInfo: spdxCreation{
			Created:  created,
			Creators: []string{"Tool: " + tool.Name + "-" + tool.Version},
		},
		Packages:      []spdxPackage{},
		Relationships: []spdxRelation{},
	}
	targetID := "SPDXRef-Target"
	target := spdxPackage{
		SPDXID:           targetID,
		Name:             r.Target.Name,
		VersionInfo:      r.Target.ID,
		DownloadLocation: spdxNoAssertion,
		LicenseConcluded: spdxNoAssertion, LicenseDeclared: spdxNoAssertion, CopyrightText: spdxNoAssertion,
		PrimaryPackagePurpose: spdxTargetPurpose(r.Target.Kind),
	}
	doc.Packages = append(doc.Packages, target)
	doc.Relationships = append(doc.Relationships, spdxRelation{SPDXElementID: doc.SPDXID, RelationshipType: "DESCRIBES", RelatedSPDXElement: targetID})
	used := map[string]bool{"SPDXRef-DOCUMENT": true, targetID: true}
	if r.OS != nil && r.OS.ID != "" {
		id := uniqueRef(used, "SPDXRef-OperatingSystem-"+spdxIDUnsafe.ReplaceAllString(r.OS.ID, "-"))
		doc.Packages = append(doc.Packages, spdxPackage{
			SPDXID: id, Name: r.OS.ID, VersionInfo: r.OS.VersionID, DownloadLocation: spdxNoAssertion,
			LicenseConcluded: spdxNoAssertion, LicenseDeclared: spdxNoAssertion, CopyrightText: spdxNoAssertion,
			PrimaryPackagePurpose: "OPERATING-SYSTEM", SourceInfo: "from /etc/os-release",
		})
		doc.Relationships = append(doc.Relationships, spdxRelation{SPDXElementID: targetID, RelationshipType: "CONTAINS", RelatedSPDXElement: id})
	}
	for i, p := range occurrences(r) {
		// uniqueRef's "#n" is no SPDX id character; the index makes the id unique.
		id := "SPDXRef-Package-" + strconv.Itoa(i+1) + "-" + spdxIDUnsafe.ReplaceAllString(p.Name, "-")
		pkg := spdxPackage{
			SPDXID: id, Name: p.Name, VersionInfo: p.Version, DownloadLocation: spdxNoAssertion,
			LicenseConcluded: spdxNoAssertion, LicenseDeclared: spdxNoAssertion, CopyrightText: spdxNoAssertion,
			PrimaryPackagePurpose: "LIBRARY",
			SourceInfo:            "found in " + p.Location,
		}
		if p.Layer != "" {
			pkg.SourceInfo += " (layer " + p.Layer + ")"
		}
		if p.SourceName != "" {
			pkg.SourceInfo += "; built from source package " + p.SourceName + " " + p.SourceVersion
		}
		if p.PURL != "" {
			pkg.ExternalRefs = []spdxExtRef{{ReferenceCategory: "PACKAGE-MANAGER", ReferenceType: "purl", ReferenceLocator: p.PURL}}
		}
		doc.Packages = append(doc.Packages, pkg)
		doc.Relationships = append(doc.Relationships, spdxRelation{SPDXElementID: targetID, RelationshipType: "CONTAINS", RelatedSPDXElement: id})
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(doc)
}

func spdxTargetPurpose(kind string) string {
	switch kind {
	case "image", "archive", "container":
		return "CONTAINER"
	case "host":
		return "OPERATING-SYSTEM"
	}
	return "FILE"
}
