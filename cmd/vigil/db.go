package main

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/vigil-sec/vigil/internal/scan/vulndb"
)

type dbOptions struct {
	dir        string
	from       string
	ecosystems []string
	output     string
}

func newDBCommand(g *globals) *cobra.Command {
	o := &dbOptions{}
	cmd := &cobra.Command{
		Use:   "db",
		Short: "Manage the offline vulnerability database the scanner uses",
		Long: `The vulnerability database holds OSV advisories (https://osv.dev) in an index on disk.
A fresh install starts from the starter database built into vigil (Go, crates.io and
Debian 12 advisories); 'vigil db update' fetches the OSV project's current records, and
'vigil db import' adds records from a directory or an all.zip, so scans work offline.`,
	}
	cmd.PersistentFlags().StringVar(&o.dir, "db", vulndb.DefaultDir(), "directory of the vulnerability database")

	importCmd := &cobra.Command{
		Use:   "import PATH",
		Short: "Add OSV records from a directory of JSON records, an all.zip, or a directory of <Ecosystem>/all.zip",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			log, err := g.logger()
			if err != nil {
				return err
			}
			stats, err := vulndb.Import(cmd.Context(), o.dir, args[0], log)
			if err != nil {
				return err
			}
			return writeImportStats(g.stdout, o.dir, stats)
		},
	}

	updateCmd := &cobra.Command{
		Use:   "update",
		Short: "Fetch current OSV records (or read them from --from DIR, offline)",
		Long: `Fetch each ecosystem's all.zip from the OSV project's public bucket (` + vulndb.DefaultURL + `)
and import it. --from names another base URL, the URL of one zip, or a local directory or
file, which works without a network.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := g.logger()
			if err != nil {
				return err
			}
			stats, err := vulndb.UpdateEcosystems(cmd.Context(), o.dir, o.from, o.ecosystems, log)
			if err != nil {
				return err
			}
			return writeImportStats(g.stdout, o.dir, stats)
		},
	}
	updateCmd.Flags().StringVar(&o.from, "from", "", "base URL, zip URL, directory or file to update from (default "+vulndb.DefaultURL+")")
	updateCmd.Flags().StringSliceVar(&o.ecosystems, "ecosystem", nil,
		"ecosystems to fetch from a base URL, repeatable or comma-separated (default "+strings.Join(vulndb.DefaultEcosystems, ",")+")")

	statusCmd := &cobra.Command{
		Use:   "status",
		Short: "Show the database's sources, record counts per ecosystem and age",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.output != "table" && o.output != "json" {
				return fmt.Errorf("-o %q: want table or json", o.output)
			}
			db, err := vulndb.Open(o.dir)
			if err != nil {
				return err
			}
			defer db.Close()
			st, err := db.Status()
			if err != nil {
				return err
			}
			if o.output == "json" {
				enc := json.NewEncoder(g.stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(statusJSON{Status: st, AgeSeconds: int64(st.Age().Seconds()), Stale: st.Stale()})
			}
			return writeDBStatus(g.stdout, st)
		},
	}
	statusCmd.Flags().StringVarP(&o.output, "output", "o", "table", "output format: table or json")

	cmd.AddCommand(importCmd, updateCmd, statusCmd)
	return cmd
}

// statusJSON is `vigil db status -o json`: the status plus its age, for scripts.
type statusJSON struct {
	vulndb.Status
	AgeSeconds int64 `json:"age_seconds"`
	Stale      bool  `json:"stale"`
}

func writeImportStats(w io.Writer, dir string, st vulndb.ImportStats) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SOURCE\tRECORDS\tWITHDRAWN\tSKIPPED\tECOSYSTEMS")
	for _, s := range st.Sources {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%s\n", s.Name, s.Records, s.Withdrawn, s.Skipped, ecosystemList(s.Ecosystems))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintf(w, "%d records imported into %s in %s", st.Records, dir, st.Duration.Round(time.Millisecond))
	if err == nil && len(st.Warnings) > 0 {
		_, err = fmt.Fprintf(w, "; %d warnings (logged)", len(st.Warnings))
	}
	if err == nil {
		_, err = fmt.Fprintln(w)
	}
	return err
}

func ecosystemList(m map[string]int) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, fmt.Sprintf("%s %d", k, m[k]))
	}
	return strings.Join(parts, ", ")
}

func writeDBStatus(w io.Writer, st vulndb.Status) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "Database:\t%s\n", st.Path)
	if st.Temporary {
		fmt.Fprintf(tw, "\t(a temporary copy of the starter database: the directory could not be written)\n")
	}
	age := "unknown"
	if !st.Updated.IsZero() {
		age = fmt.Sprintf("%s (%s old)", st.Updated.Format(time.RFC3339), dbAge(st.Age()))
	}
	if st.Stale() {
		age += fmt.Sprintf("; older than %s: run 'vigil db update'", dbAge(vulndb.StaleAfter))
	}
	fmt.Fprintf(tw, "Data as of:\t%s\n", age)
	fmt.Fprintf(tw, "Records:\t%d\n", st.Records)
	fmt.Fprintln(tw)
	fmt.Fprintln(tw, "ECOSYSTEM\tRECORDS")
	for _, eco := range slices.Sorted(maps.Keys(st.Ecosystems)) {
		fmt.Fprintf(tw, "%s\t%d\n", eco, st.Ecosystems[eco])
	}
	fmt.Fprintln(tw)
	fmt.Fprintln(tw, "SOURCE\tIMPORTED\tDATA AS OF\tRECORDS")
	for _, s := range st.Sources {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\n", s.Name, s.ImportedAt.Format(time.RFC3339), s.DataTime.Format(time.RFC3339), s.Records)
	}
	return tw.Flush()
}

func dbAge(d time.Duration) string {
	switch {
	case d >= 48*time.Hour:
		return fmt.Sprintf("%d days", int(d/(24*time.Hour)))
	case d >= time.Hour:
		return fmt.Sprintf("%d hours", int(d/time.Hour))
	}
	return d.Round(time.Minute).String()
}
