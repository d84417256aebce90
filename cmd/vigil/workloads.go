package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/netip"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/vigil-sec/vigil/internal/api"
	"github.com/vigil-sec/vigil/internal/workload"
)

// client builds an API client from the shared flags.
func (g *globals) client() (*api.Client, error) {
	tok, err := api.ReadToken(g.tokenFile)
	if err != nil {
		switch {
		case errors.Is(err, fs.ErrNotExist):
			return nil, fmt.Errorf("no API token at %s: is 'vigil up' running with that data dir? (pass --token-file otherwise)", g.tokenFile)
		case errors.Is(err, fs.ErrPermission):
			return nil, fmt.Errorf("cannot read the API token at %s: permission denied; run as root or pass --token-file", g.tokenFile)
		}
		return nil, err
	}
	return api.NewClient(g.server, tok)
}

// clientFor checks the -o value of a table-or-JSON command, then builds its client.
func (g *globals) clientFor(output string) (*api.Client, error) {
	if err := checkOutput(output); err != nil {
		return nil, err
	}
	return g.client()
}

func checkOutput(o string) error {
	switch o {
	case "table", "json":
		return nil
	}
	return fmt.Errorf("-o %q: want table or json", o)
}

func writeJSONTo(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func writeJSONCompact(w io.Writer, v any) error {
	return json.NewEncoder(w).Encode(v)
}

func newWorkloadsCommand(g *globals) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:     "workloads [ID|NAME]",
		Aliases: []string{"workload", "wl"},
		Short:   "List the workloads on the host, or describe one",
		Args:    cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.clientFor(output)
			if err != nil {
				return err
			}
			var list []workload.Workload
			if len(args) == 1 {
				w, err := c.Workload(cmd.Context(), args[0])
				if err != nil {
					return err
				}
				if output == "json" {
					return writeJSONTo(g.stdout, w)
				}
				list = []workload.Workload{w}
			} else if list, err = c.Workloads(cmd.Context()); err != nil {
				return err
			}
			if output == "json" {
				return writeJSONTo(g.stdout, list)
			}
			return printWorkloads(g.stdout, list)
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "table", "output format: table or json")
	return cmd
}

func printWorkloads(out io.Writer, list []workload.Workload) error {
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tGROUP\tIMAGE\tSTATE\tNETWORK\tIPS\tINTERFACES\tPID")
	for _, w := range list {
		image := w.Image
		if w.Kind == workload.KindHost {
			image = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d\n",
			w.Name, w.Group, orDash(image), w.State, networkColumn(w), addrList(w.IPs), ifaceList(w.Interfaces), w.PID)
	}
	return tw.Flush()
}

func networkColumn(w workload.Workload) string {
	if w.SharesNetNSWith != "" && w.SharesNetNSWith != workload.HostID {
		return "container:" + short(w.SharesNetNSWith)
	}
	return orDash(w.NetworkMode)
}

func addrList(a []netip.Addr) string {
	s := make([]string, len(a))
	for i, ip := range a {
		s[i] = ip.String()
	}
	return orDash(strings.Join(s, ","))
}

func ifaceList(in []workload.Interface) string {
	s := make([]string, len(in))
	for i, f := range in {
		s[i] = f.Name + "(" + strconv.Itoa(f.Ifindex) + ")"
	}
	return orDash(strings.Join(s, ","))
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func short(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

func newGroupsCommand(g *globals) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "groups",
		Short: "List the groups and their member workloads",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := g.clientFor(output)
			if err != nil {
				return err
			}
			groups, err := c.Groups(cmd.Context())
			if err != nil {
				return err
			}
			if output == "json" {
				return writeJSONTo(g.stdout, groups)
			}
			tw := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "GROUP\tMEMBERS\tWORKLOADS")
			for _, gr := range groups {
				names := make([]string, len(gr.Members))
				for i, m := range gr.Members {
					names[i] = m.Name
				}
				fmt.Fprintf(tw, "%s\t%d\t%s\n", gr.Name, len(gr.Members), strings.Join(names, ","))
			}
			return tw.Flush()
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "table", "output format: table or json")
	return cmd
}
