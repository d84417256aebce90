package main

import (
	"context"
	"fmt"
	"io"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/vigil-sec/vigil/internal/agent"
	"github.com/vigil-sec/vigil/internal/capture"
	"github.com/vigil-sec/vigil/internal/controller"
	"github.com/vigil-sec/vigil/internal/dpi"
	"github.com/vigil-sec/vigil/internal/flow"
)

type flowsOptions struct {
	output   string
	follow   bool
	pcap     string
	stats    bool
	workload string
	group    string
	app      string
	proto    string
	since    string
	limit    int
}

func newFlowsCommand(g *globals) *cobra.Command {
	o := &flowsOptions{}
	cmd := &cobra.Command{
		Use:   "flows",
		Short: "Show the connections of the host's workloads, or analyse a capture file",
		Long: `Show recent flows (connections) with both ends, application and processes.

--follow streams flows as they start and end. --pcap FILE runs the same pipeline
(decoding, flow table, application identification, DNS naming) over a pcap or pcapng file
without a server; its endpoints are plain addresses. --stats prints only the totals.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkOutput(o.output); err != nil {
				return err
			}
			if o.pcap != "" {
				return analyzeFile(cmd.Context(), g.stdout, o)
			}
			if o.stats {
				return fmt.Errorf("--stats goes with --pcap")
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			q := url.Values{}
			for k, v := range map[string]string{"workload": o.workload, "group": o.group, "app": o.app, "proto": o.proto} {
				if v != "" {
					q.Set(k, v)
				}
			}
			if o.follow {
				return c.StreamFlows(cmd.Context(), q, func(ev flow.Event) error {
					if o.output == "json" {
						return writeJSONLine(g.stdout, ev)
					}
					fmt.Fprintln(g.stdout, eventLine(ev))
					return nil
				})
			}
			if o.since != "" {
				q.Set("since", o.since)
			}
			q.Set("limit", strconv.Itoa(o.limit))
			list, err := c.Flows(cmd.Context(), q)
			if err != nil {
				return err
			}
			if o.output == "json" {
				return writeJSONTo(g.stdout, list)
			}
			return printFlows(g.stdout, list)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&o.output, "output", "o", "table", "output format: table or json (with --follow: one JSON event per line)")
	f.BoolVarP(&o.follow, "follow", "f", false, "stream flows as they start, update and end")
	f.StringVar(&o.pcap, "pcap", "", "analyse this capture file (pcap or pcapng) offline instead of asking the server")
	f.BoolVar(&o.stats, "stats", false, "with --pcap: print only the totals")
	f.StringVar(&o.workload, "workload", "", "only flows of this workload (ID or name)")
	f.StringVar(&o.group, "group", "", "only flows of this group")
	f.StringVar(&o.app, "app", "", "only flows of this application (http, tls, dns, ...)")
	f.StringVar(&o.proto, "proto", "", "only flows of this protocol (tcp, udp, icmp, icmpv6)")
	f.StringVar(&o.since, "since", "", "only flows seen within this long (e.g. 5m) or since this RFC 3339 time")
	f.IntVar(&o.limit, "limit", 500, "at most this many flows")
	return cmd
}

// newInspector is the DPI of one flow, with every parser Vigil has.
func newInspector(onDNS func(*dpi.DNSMessage)) flow.Inspector {
	return dpi.NewInspector(nil, onDNS) // nil: the shared, stateless parser set
}

func analyzeFile(ctx context.Context, out io.Writer, o *flowsOptions) error {
	src, err := capture.OpenFile(o.pcap)
	if err != nil {
		return err
	}
	defer src.Close()
	records, st, err := agent.Analyze(ctx, src, flow.Config{}, newInspector)
	if err != nil {
		return err
	}
	switch {
	case o.stats && o.output == "json":
		return writeJSONTo(out, st)
	case o.stats:
		fmt.Fprintf(out, "packets      %d\nbytes        %d\nflows        %d\ndecode errors %d\nnot IP       %d\nseconds      %.3f\npackets/s    %.0f\n",
			st.Packets, st.Bytes, st.Flows, st.DecodeErrors, st.NotIP, st.Seconds, st.PacketsPerS)
		apps := make([]string, 0, len(st.FlowsPerApp))
		for a := range st.FlowsPerApp {
			apps = append(apps, a)
		}
		slices.Sort(apps)
		for _, a := range apps {
			fmt.Fprintf(out, "flows %-12s %d\n", a, st.FlowsPerApp[a])
		}
		return nil
	case o.output == "json":
		return writeJSONTo(out, records)
	}
	return printFlows(out, records)
}

func writeJSONLine(w io.Writer, v any) error {
	return writeJSONCompact(w, v)
}

func printFlows(out io.Writer, list []flow.Record) error {
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "FIRST SEEN\tPROTO\tCLIENT\tSERVER\tAPP\tDETAIL\tPKTS\tBYTES\tSTATE\tVERDICT")
	for _, r := range list {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%d\t%d\t%s\t%s\n",
			r.FirstSeen.Local().Format("15:04:05.000"), r.Proto, endpointText(r.Client), endpointText(r.Server),
			r.App, orDash(detailText(r)), r.Packets, r.Bytes, r.State, orDash(r.Verdict))
	}
	return tw.Flush()
}

func eventLine(ev flow.Event) string {
	r := ev.Record
	ts := r.LastSeen
	if ev.Type == flow.EventStart {
		ts = r.FirstSeen
	}
	return fmt.Sprintf("%s %-6s %-4s %s -> %s %s %s pkts=%d bytes=%d %s %s",
		ts.Local().Format("15:04:05.000"), strings.ToUpper(string(ev.Type)), r.Proto,
		endpointText(r.Client), endpointText(r.Server), r.App, orDash(detailText(r)), r.Packets, r.Bytes, r.State, orDash(r.Verdict))
}

// endpointText reads "web-1[vigil.shop-web] 172.17.0.2:80 (httpd/812)".
func endpointText(e flow.Endpoint) string {
	var b strings.Builder
	switch e.Kind {
	case flow.KindWorkload:
		b.WriteString(e.Name + "[" + e.Group + "] ")
	case flow.KindHost:
		b.WriteString("host ")
	case flow.KindExternal:
		if e.Name != "" {
			b.WriteString("external:" + e.Name + " ")
		} else {
			b.WriteString("external ")
		}
	case flow.KindAddress:
		if e.Name != "" {
			b.WriteString(e.Name + " ")
		}
	}
	if e.Port != 0 {
		b.WriteString(netAddrPort(e))
	} else {
		b.WriteString(e.IP.String())
	}
	if p := e.Process; p != nil {
		fmt.Fprintf(&b, " (%s/%d)", p.Comm, p.PID)
	}
	return b.String()
}

func netAddrPort(e flow.Endpoint) string {
	if e.IP.Is6() {
		return "[" + e.IP.String() + "]:" + strconv.Itoa(int(e.Port))
	}
	return e.IP.String() + ":" + strconv.Itoa(int(e.Port))
}

// detailText condenses what DPI found into a few words.
func detailText(r flow.Record) string {
	d := r.AppDetail
	if d == nil {
		return ""
	}
	var parts []string
	add := func(k, v string) {
		if v != "" {
			parts = append(parts, k+v)
		}
	}
	add("", d.Method)
	add("", d.Host)
	add("", d.Path)
	if d.Status != 0 {
		add("status=", strconv.Itoa(d.Status))
	}
	add("sni=", d.SNI)
	if len(d.ALPN) > 0 {
		add("alpn=", strings.Join(d.ALPN, ","))
	}
	add("", d.TLSVersion)
	if m := d.DNS; m != nil {
		add("", m.QType)
		add("", m.Query)
		var ans []string
		for _, a := range m.Answers {
			if a.Addr.IsValid() {
				ans = append(ans, a.Addr.String())
			} else if a.Target != "" {
				ans = append(ans, a.Target)
			}
		}
		if len(ans) > 0 {
			add("-> ", strings.Join(ans, ","))
		}
		if m.RCode != "" && m.RCode != "NOERROR" {
			add("", m.RCode)
		}
	}
	add("cmd=", d.Command)
	add("version=", d.Version)
	add("user=", d.User)
	add("db=", d.Database)
	return strings.Join(parts, " ")
}

func newGraphCommand(g *globals) *cobra.Command {
	var output string
	var workloads bool
	cmd := &cobra.Command{
		Use:   "graph",
		Short: "Print the connection graph (JSON, or Graphviz dot: vigil graph -o dot | dot -Tpng > map.png)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if output != "json" && output != "dot" {
				return fmt.Errorf("-o %q: want json or dot", output)
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			gr, err := c.Graph(cmd.Context())
			if err != nil {
				return err
			}
			if output == "json" {
				return writeJSONTo(g.stdout, gr)
			}
			return writeDot(g.stdout, gr, workloads)
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "json", "output format: json or dot")
	cmd.Flags().BoolVar(&workloads, "workloads", false, "with -o dot: draw workloads instead of groups")
	return cmd
}

func writeDot(out io.Writer, gr controller.Graph, workloads bool) error {
	edges := gr.Edges
	if workloads {
		edges = gr.WorkloadEdges
	}
	used := map[string]bool{}
	for _, e := range edges {
		used[e.Source], used[e.Target] = true, true
	}
	var b strings.Builder
	b.WriteString("digraph vigil {\n  rankdir=LR;\n  node [fontname=\"Helvetica\", fontsize=10];\n  edge [fontname=\"Helvetica\", fontsize=9];\n")
	for _, n := range gr.Nodes {
		if !used[n.ID] {
			continue
		}
		shape, color := "box", "black"
		switch n.Kind {
		case "group":
			shape, color = "box3d", "steelblue"
		case "workload":
			shape, color = "box", "steelblue"
		case "external":
			shape, color = "ellipse", "darkorange"
		case "host":
			shape, color = "house", "darkgreen"
		}
		fmt.Fprintf(&b, "  %s [label=%s, shape=%s, color=%s];\n", dotQuote(n.ID), dotQuote(n.Label), shape, color)
	}
	for _, e := range edges {
		fmt.Fprintf(&b, "  %s -> %s [label=%s];\n", dotQuote(e.Source), dotQuote(e.Target),
			dotQuote(fmt.Sprintf("%s (%d)", controller.EdgeLabel(e), e.Flows)))
	}
	b.WriteString("}\n")
	_, err := io.WriteString(out, b.String())
	return err
}

// dotQuote makes s a Graphviz quoted string.
func dotQuote(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`).Replace(s) + `"`
}
