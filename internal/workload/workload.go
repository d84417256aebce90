package workload

import (
	"net"
	"net/netip"
	"slices"
	"time"
)

// Kind says what sort of workload a Workload is.
type Kind string

const (
	KindContainer Kind = "container"
	KindHost      Kind = "host"
)

// HostID is the ID of the workload that stands for the host itself.
const HostID = "host"

// HostGroup is the group of the host workload. It is a special endpoint, not a learned
// group, so it carries no "vigil." prefix.
const HostGroup = "host"

// Workload is one thing on the host that sends and receives traffic.
type Workload struct {
	ID      string `json:"id"`
	Name    string `json:"name"`
	Kind    Kind   `json:"kind"`
	Runtime string `json:"runtime,omitempty"`
	// Image is the reference the container was created from, as the user gave it.
	Image string `json:"image"`
	// ImageID is the content-addressed ID of that image.
	ImageID string            `json:"image_id,omitempty"`
	Group   string            `json:"group"`
	Labels  map[string]string `json:"labels"`
	State   string            `json:"state"`
	PID     int               `json:"pid"`
	// NetworkMode is the runtime's network mode: "default" or "bridge" (the default
	// bridge), "host", "none", "container:<id>" or the name of a user-defined network.
	NetworkMode string `json:"network_mode"`
	NetNS       NetNS  `json:"netns"`
	// SharesNetNSWith names the workload whose network namespace this one joined:
	// "host" for host networking, a container ID for container:<id>. Traffic in a shared
	// namespace belongs to both; capture attaches to the owner's interfaces.
	SharesNetNSWith string `json:"shares_netns_with,omitempty"`
	// Networks are the runtime networks the workload is attached to.
	Networks []Network `json:"networks"`
	// Interfaces are the host-side ends of the workload's veth pairs (for the host
	// workload: its own non-loopback interfaces).
	Interfaces []Interface     `json:"interfaces"`
	IPs        []netip.Addr    `json:"ips"`
	Ports      []PublishedPort `json:"ports"`
	Privileged bool            `json:"privileged"`
	User       string          `json:"user"`
	Created    time.Time       `json:"created,omitzero"`
	Started    time.Time       `json:"started,omitzero"`
}

// NetNS identifies a network namespace. Inode is what identifies it; Path is one way to
// open it while the workload's process lives.
type NetNS struct {
	Path  string `json:"path"`
	Inode uint64 `json:"inode"`
}

// Network is an attachment of a workload to a runtime network.
type Network struct {
	Name        string     `json:"name"`
	ID          string     `json:"id"`
	IPv4        netip.Addr `json:"ipv4,omitzero"`
	IPv4Prefix  int        `json:"ipv4_prefix_len,omitempty"`
	IPv6        netip.Addr `json:"ipv6,omitzero"`
	IPv6Prefix  int        `json:"ipv6_prefix_len,omitempty"`
	Gateway     netip.Addr `json:"gateway,omitzero"`
	IPv6Gateway netip.Addr `json:"ipv6_gateway,omitzero"`
	MAC         string     `json:"mac,omitempty"`
	Aliases     []string   `json:"aliases,omitempty"`
}

// Interface is a network interface in the host's namespace through which a workload's
// traffic passes: for a container, the host-side end of one of its veth pairs.
type Interface struct {
	Name    string       `json:"name"`
	Ifindex int          `json:"ifindex"`
	IPs     []netip.Addr `json:"ips"`
	// MAC is the workload-side address (the container's eth0), which is what appears as
	// the source of the workload's frames.
	MAC string `json:"mac,omitempty"`
	// PeerName and PeerIfindex are the workload-side end, inside its namespace.
	PeerName    string `json:"peer_name,omitempty"`
	PeerIfindex int    `json:"peer_ifindex,omitempty"`
	// Network is the runtime network this interface belongs to, matched by MAC.
	Network string `json:"network,omitempty"`
	// Subnets are the networks of the interface's addresses: what counts as local,
	// rather than external, when flows are classified.
	Subnets []netip.Prefix `json:"subnets,omitempty"`
}

// PublishedPort is a container port published on the host.
type PublishedPort struct {
	Protocol      string     `json:"protocol"`
	ContainerPort uint16     `json:"container_port"`
	HostIP        netip.Addr `json:"host_ip,omitzero"`
	HostPort      uint16     `json:"host_port,omitempty"`
}

// Clone returns a deep copy, so that callers can keep a workload without holding the
// registry's lock or racing with its updates.
func (w Workload) Clone() Workload {
	c := w
	if w.Labels != nil {
		c.Labels = make(map[string]string, len(w.Labels))
		for k, v := range w.Labels {
			c.Labels[k] = v
		}
	}
	c.Networks = slices.Clone(w.Networks)
	for i := range c.Networks {
		c.Networks[i].Aliases = slices.Clone(w.Networks[i].Aliases)
	}
	c.Interfaces = slices.Clone(w.Interfaces)
	for i := range c.Interfaces {
		c.Interfaces[i].IPs = slices.Clone(w.Interfaces[i].IPs)
		c.Interfaces[i].Subnets = slices.Clone(w.Interfaces[i].Subnets)
	}
	c.IPs = slices.Clone(w.IPs)
	c.Ports = slices.Clone(w.Ports)
	return c
}

// normalize makes slices non-nil (so JSON shows [] rather than null) and sorts the
// address list, so that two descriptions of the same workload compare equal.
func (w *Workload) normalize() {
	if w.Labels == nil {
		w.Labels = map[string]string{}
	}
	if w.Networks == nil {
		w.Networks = []Network{}
	}
	if w.Interfaces == nil {
		w.Interfaces = []Interface{}
	}
	for i := range w.Interfaces {
		if w.Interfaces[i].IPs == nil {
			w.Interfaces[i].IPs = []netip.Addr{}
		}
	}
	if w.Ports == nil {
		w.Ports = []PublishedPort{}
	}
	w.IPs = uniqueAddrs(w.IPs)
}

// collectIPs sets IPs to every address the runtime and the kernel report for the workload.
func (w *Workload) collectIPs() {
	var all []netip.Addr
	for _, n := range w.Networks {
		all = appendValid(all, n.IPv4, n.IPv6)
	}
	for _, in := range w.Interfaces {
		all = appendValid(all, in.IPs...)
	}
	w.IPs = uniqueAddrs(all)
}

func appendValid(dst []netip.Addr, addrs ...netip.Addr) []netip.Addr {
	for _, a := range addrs {
		if a.IsValid() {
			dst = append(dst, a.Unmap())
		}
	}
	return dst
}

func uniquePrefixes(ps []netip.Prefix) []netip.Prefix {
	out := slices.Clone(ps)
	slices.SortFunc(out, func(a, b netip.Prefix) int {
		if c := a.Addr().Compare(b.Addr()); c != 0 {
			return c
		}
		return a.Bits() - b.Bits()
	})
	return slices.Compact(out)
}

func uniqueAddrs(addrs []netip.Addr) []netip.Addr {
	out := slices.Clone(addrs)
	slices.SortFunc(out, func(a, b netip.Addr) int { return a.Compare(b) })
	out = slices.Compact(out)
	if out == nil {
		out = []netip.Addr{}
	}
	return out
}

// formatMAC renders a hardware address the way the runtime and the kernel both print it,
// so that the two can be matched as strings.
func formatMAC(hw net.HardwareAddr) string {
	if len(hw) == 0 {
		return ""
	}
	return hw.String()
}
