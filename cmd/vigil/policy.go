package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/vigil-sec/vigil/internal/api"
	"github.com/vigil-sec/vigil/internal/controller"
	"github.com/vigil-sec/vigil/internal/export"
	"github.com/vigil-sec/vigil/internal/policy"
)

func newModeCommand(g *globals) *cobra.Command {
	var def string
	cmd := &cobra.Command{
		Use:   "mode [GROUP discover|monitor|protect]",
		Short: "Show the groups' modes, or set one (--default MODE: the mode of new groups)",
		Long: `Without arguments, list the default mode and every group's mode. With a group and a
mode, set it, for the group's connections and its processes alike: discover learns what
the group does (its connections become rules, its programs its process profile), monitor
reports what departs from them, protect blocks it (connections refused in the kernel by
an nftables table in each member's namespace, programs outside the profile refused or
killed) and reports it.`,
		Args: cobra.RangeArgs(0, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			switch {
			case def != "" && len(args) == 0:
				return c.SetDefaultMode(ctx, def)
			case def != "":
				return fmt.Errorf("--default takes no group")
			case len(args) == 2:
				return c.SetMode(ctx, args[0], args[1])
			case len(args) == 1:
				return fmt.Errorf("give a group and a mode (discover, monitor or protect)")
			}
			p, err := c.Policy(ctx)
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintf(tw, "GROUP\tMODE\n(default)\t%s\n", p.DefaultMode)
			for _, gr := range p.Groups {
				fmt.Fprintf(tw, "%s\t%s\n", gr.Name, gr.Mode)
			}
			return tw.Flush()
		},
	}
	cmd.Flags().StringVar(&def, "default", "", "set the mode of groups that have none of their own")
	return cmd
}

func newRulesCommand(g *globals) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "rules",
		Short: "List the policy's rules: user rules first, then learned ones",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if output != "yaml" {
				if err := checkOutput(output); err != nil {
					return fmt.Errorf("-o %q: want table, json or yaml", output)
				}
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			p, err := c.Policy(cmd.Context())
			if err != nil {
				return err
			}
			switch output {
			case "json":
				return writeJSONTo(g.stdout, p.Rules)
			case "yaml":
				out, err := export.MarshalYAML(policy.Policy{DefaultMode: p.DefaultMode, Groups: p.Groups, Rules: p.Rules})
				if err != nil {
					return err
				}
				_, err = g.stdout.Write(out)
				return err
			}
			return printRules(g.stdout, p.Rules)
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "table", "output format: table, json or yaml (the policy document)")
	return cmd
}

func printRules(out io.Writer, rules []policy.Rule) error {
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tFROM\tTO\tPORTS\tAPPS\tACTION\tORIGIN\tHITS\tLAST HIT")
	for _, r := range rules {
		last := "-"
		if !r.LastHit.IsZero() {
			last = r.LastHit.Local().Format(time.DateTime)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\n", r.ID, r.From, r.To, policy.FormatPorts(r.Ports),
			orDash(strings.Join(r.Apps, ",")), r.Action, r.Origin, r.Hits, last)
	}
	return tw.Flush()
}

func newRuleCommand(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "rule", Short: "Add, delete or promote a rule"}
	var req api.RuleRequest
	var deny bool
	add := &cobra.Command{
		Use:   "add --from GROUP --to GROUP --ports tcp/5432 [--apps postgresql] [--deny]",
		Short: "Add a user rule (allow unless --deny)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			if deny {
				req.Action = "deny"
			}
			r, err := c.AddRule(cmd.Context(), req)
			if err != nil {
				return err
			}
			fmt.Fprintln(g.stdout, r.ID)
			return nil
		},
	}
	add.Flags().StringVar(&req.From, "from", "", "client group or endpoint (group name, host, external, external:NAME, address:IP)")
	add.Flags().StringVar(&req.To, "to", "", "server group or endpoint")
	add.Flags().StringVar(&req.Ports, "ports", "", "ports: tcp/5432, udp/53, tcp/8000-8100, any (comma-separated)")
	add.Flags().StringSliceVar(&req.Apps, "apps", nil, "only these applications (http, postgresql, ...)")
	add.Flags().BoolVar(&deny, "deny", false, "a deny rule")
	del := &cobra.Command{
		Use:   "delete ID",
		Short: "Delete a rule",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			return c.DeleteRule(cmd.Context(), args[0])
		},
	}
	promote := &cobra.Command{
		Use:   "promote ID",
		Short: "Turn a learned rule into a user rule (it gets a new ID, printed)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			r, err := c.PromoteRule(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			fmt.Fprintln(g.stdout, r.ID)
			return nil
		},
	}
	cmd.AddCommand(add, del, promote)
	return cmd
}

func newEventsCommand(g *globals) *cobra.Command {
	var output, typ string
	var limit int
	var follow bool
	cmd := &cobra.Command{
		Use:   "events",
		Short: "List events: policy violations, compliance changes (--follow to keep watching)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := g.clientFor(output)
			if err != nil {
				return err
			}
			q := url.Values{"limit": {strconv.Itoa(limit)}}
			if typ != "" {
				q.Set("type", typ)
			}
			evs, err := c.Events(cmd.Context(), q)
			if err != nil {
				return err
			}
			if !follow {
				if output == "json" {
					return writeJSONTo(g.stdout, evs)
				}
				return printEvents(g.stdout, evs)
			}
			for i := len(evs) - 1; i >= 0; i-- {
				if output == "json" {
					err = writeJSONCompact(g.stdout, evs[i])
				} else {
					_, err = fmt.Fprintln(g.stdout, eventLine1(evs[i]))
				}
				if err != nil {
					return err
				}
			}
			return followEvents(cmd.Context(), g.stdout, c, q, output)
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "table", "output format: table or json (with --follow: one JSON event per line)")
	cmd.Flags().StringVar(&typ, "type", "", "only events of this type and its subtypes: violation, process (process.drift, ...), escalation, file, audit.changed")
	cmd.Flags().IntVar(&limit, "limit", 100, "at most this many events")
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "keep printing events as they come (violations are re-printed when their count grows)")
	return cmd
}

func eventLine1(ev controller.Event) string {
	line := fmt.Sprintf("%s  %-8s %-13s %s", ev.Time.Local().Format("15:04:05"), ev.Severity, ev.Type, ev.Summary)
	if n, ok := ev.Detail["count"]; ok {
		line += fmt.Sprintf(" (x%v)", n)
	}
	return line
}

func printEvents(out io.Writer, evs []controller.Event) error {
	for i := len(evs) - 1; i >= 0; i-- {
		fmt.Fprintln(out, eventLine1(evs[i]))
	}
	return nil
}

// followEvents prints the recent events, then each new event (and each new count of an
// aggregated one) as the server streams it.
func followEvents(ctx context.Context, out io.Writer, c *api.Client, q url.Values, output string) error {
	show := func(ev controller.Event) error {
		if output == "json" {
			return writeJSONCompact(out, ev)
		}
		_, err := fmt.Fprintln(out, eventLine1(ev))
		return err
	}
	stream := url.Values{}
	if t := q.Get("type"); t != "" {
		stream.Set("type", t)
	}
	return c.StreamEvents(ctx, stream, show)
}

func newPolicyCommand(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "policy", Short: "Work with the policy as a whole"}
	var req api.SimulateRequest
	var output string
	sim := &cobra.Command{
		Use:   "simulate [--mode protect|monitor] [--group G]... [--since 24h]",
		Short: "List what the recorded flows would have met under another mode: what would break",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := g.clientFor(output)
			if err != nil {
				return err
			}
			res, err := c.Simulate(cmd.Context(), req)
			if err != nil {
				return err
			}
			if output == "json" {
				return writeJSONTo(g.stdout, res)
			}
			fmt.Fprintf(g.stdout, "%d recorded flows replayed in %s mode; %d kinds of connection would not be allowed\n",
				res.FlowsReplayed, res.Mode, len(res.NotAllowed))
			tw := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "FROM\tTO\tPORT\tAPP\tVERDICT\tFLOWS\tCLIENTS\tLAST SEEN")
			for _, s := range res.NotAllowed {
				fmt.Fprintf(tw, "%s\t%s\t%s/%d\t%s\t%s\t%d\t%s\t%s\n", s.From, s.To, s.Proto, s.Port, s.App, s.Verdict, s.Flows,
					strings.Join(s.Clients, ","), s.LastSeen.Local().Format(time.DateTime))
			}
			return tw.Flush()
		},
	}
	sim.Flags().StringVar(&req.Mode, "mode", "protect", "the mode to try: protect or monitor")
	sim.Flags().StringSliceVar(&req.Groups, "group", nil, "the groups to switch (all when none)")
	sim.Flags().StringVar(&req.Since, "since", "24h", "how far back to replay the recorded flows")
	sim.Flags().StringVarP(&output, "output", "o", "table", "output format: table or json")
	var format, namespace, file string
	exportCmd := &cobra.Command{
		Use:   "export [--format yaml|networkpolicy|cilium] [--namespace NS]",
		Short: "Write the policy as one YAML document (or as Kubernetes NetworkPolicy / CiliumNetworkPolicy objects)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			v, err := c.Policy(cmd.Context())
			if err != nil {
				return err
			}
			p := policy.Policy{DefaultMode: v.DefaultMode, Groups: v.Groups, Rules: v.Rules}
			var out []byte
			switch format {
			case "yaml":
				if out, err = export.MarshalYAML(p); err == nil {
					out, err = appendProcessProfiles(cmd.Context(), c, out)
				}
			case "networkpolicy":
				out, err = export.NetworkPolicies(p, namespace)
			case "cilium":
				out, err = export.CiliumPolicies(p, namespace)
			default:
				return fmt.Errorf("--format %q: want yaml, networkpolicy or cilium", format)
			}
			if err != nil {
				return err
			}
			_, err = g.stdout.Write(out)
			return err
		},
	}
	exportCmd.Flags().StringVar(&format, "format", "yaml", "yaml (Vigil's own), networkpolicy or cilium")
	exportCmd.Flags().StringVarP(&format, "output", "o", "yaml", "same as --format")
	exportCmd.Flags().StringVar(&namespace, "namespace", "default", "namespace of the Kubernetes objects")
	apply := &cobra.Command{
		Use:   "apply -f FILE",
		Short: "Validate a policy file and replace the policy with it, atomically (nothing changes on an error)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if file == "" {
				return fmt.Errorf("give the policy file with -f (- for standard input)")
			}
			var data []byte
			var err error
			if file == "-" {
				data, err = io.ReadAll(io.LimitReader(cmd.InOrStdin(), export.MaxYAMLSize+1))
			} else {
				data, err = readFileLimited(file, export.MaxYAMLSize+1)
			}
			if err != nil {
				return err
			}
			p, err := export.UnmarshalYAML(data)
			if err != nil {
				var fe *export.FileError
				if errors.As(err, &fe) {
					fe.File = file
				}
				return err
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			profiles, err := export.UnmarshalProcessProfiles(data)
			if err != nil {
				return err
			}
			if err := c.ApplyPolicy(cmd.Context(), controller.PolicyView{DefaultMode: p.DefaultMode, Groups: p.Groups, Rules: p.Rules}); err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "applied: %d groups, %d rules, default mode %s\n", len(p.Groups), len(p.Rules), p.DefaultMode)
			if len(profiles) == 0 {
				return nil
			}
			req := api.ProfilesRequest{}
			for _, pp := range profiles {
				req.Profiles = append(req.Profiles, api.ProfileBody{Group: pp.Group, Entries: pp.Entries})
			}
			if err := c.ReplaceProfiles(cmd.Context(), req); err != nil {
				return fmt.Errorf("the policy was applied, its process profiles were not: %w", err)
			}
			fmt.Fprintf(g.stdout, "applied: the process profiles of %d groups\n", len(profiles))
			return nil
		},
	}
	apply.Flags().StringVarP(&file, "file", "f", "", "the policy file (YAML, as export writes it)")
	cmd.AddCommand(sim, exportCmd, apply)
	return cmd
}

func readFileLimited(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, limit))
}

func newGroupCommand(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "group", Short: "Create custom groups"}
	var req api.GroupRequest
	create := &cobra.Command{
		Use:   "create NAME --criteria label:tier=web [--criteria image:acme/*] [--mode monitor]",
		Short: "Create (or replace) a custom group chosen by criteria",
		Long: `Create a custom group. Criteria: label:KEY=GLOB, image:GLOB, name:GLOB, service:GLOB,
address:CIDR, dns:GLOB. Criteria of one kind (one label key) are alternatives; of
different kinds, all must hold. Rules may then name the group; its members keep their
learned group too.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(req.Criteria) == 0 {
				return fmt.Errorf("give at least one --criteria")
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			return c.PutGroup(cmd.Context(), args[0], req)
		},
	}
	create.Flags().StringArrayVar(&req.Criteria, "criteria", nil, "a criterion (repeatable)")
	create.Flags().StringVar(&req.Mode, "mode", "", "the group's mode: discover, monitor or protect")
	cmd.AddCommand(create)
	return cmd
}
