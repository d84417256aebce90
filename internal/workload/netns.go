package workload

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"syscall"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// NetResolver fills in what the kernel knows about a workload's network: its namespace,
// the host-side ends of its veth pairs and the addresses configured inside it.
type NetResolver interface {
	// ResolveNet completes w, which carries at least PID, Networks and NetworkMode.
	ResolveNet(w *Workload) error
	// Host describes the host itself as a workload.
	Host() (Workload, error)
}

// Link is what the resolver needs to know of one network interface. For a veth,
// PeerIndex is the ifindex of the other end (IFLA_LINK), in the peer's namespace.
type Link struct {
	Index     int
	Name      string
	Type      string
	PeerIndex int
	MAC       net.HardwareAddr
	Addrs     []netip.Addr
	// Subnets are the networks of Addrs (address masked by its prefix length).
	Subnets []netip.Prefix
}

// pairVeths matches each veth inside a workload's namespace with its other end among the
// host's links. The inner end's IFLA_LINK gives the host-side ifindex; the match holds only
// if the host link there is a veth whose own IFLA_LINK points back, so an ifindex that
// happens to exist in both namespaces is not taken for a peer. Names are never used: veth
// names are chosen by the runtime and can be anything.
func pairVeths(inner, host []Link, networks []Network) []Interface {
	byIndex := make(map[int]Link, len(host))
	for _, l := range host {
		byIndex[l.Index] = l
	}
	var out []Interface
	for _, in := range inner {
		if in.Type != "veth" || in.PeerIndex <= 0 {
			continue
		}
		h, ok := byIndex[in.PeerIndex]
		if !ok || h.Type != "veth" || h.PeerIndex != in.Index {
			continue
		}
		mac := formatMAC(in.MAC)
		out = append(out, Interface{
			Name:        h.Name,
			Ifindex:     h.Index,
			IPs:         uniqueAddrs(in.Addrs),
			MAC:         mac,
			PeerName:    in.Name,
			PeerIfindex: in.Index,
			Network:     networkByMAC(networks, mac),
			Subnets:     uniquePrefixes(in.Subnets),
		})
	}
	slices.SortFunc(out, func(a, b Interface) int { return a.Ifindex - b.Ifindex })
	return out
}

func networkByMAC(networks []Network, mac string) string {
	if mac == "" {
		return ""
	}
	for _, n := range networks {
		if n.MAC == mac {
			return n.Name
		}
	}
	return ""
}

// KernelResolver is the NetResolver that asks the kernel over rtnetlink. It must run as
// root in the host's network namespace (or with CAP_SYS_ADMIN and CAP_NET_ADMIN there).
// It is safe for concurrent use.
type KernelResolver struct {
	// ProcRoot is where the host's /proc is mounted; "/proc" unless Vigil runs in a
	// container with the host's proc mounted elsewhere.
	ProcRoot string
	// Hostname names the host workload; os.Hostname when empty.
	Hostname string
}

func (k *KernelResolver) procRoot() string {
	if k.ProcRoot == "" {
		return "/proc"
	}
	return k.ProcRoot
}

// ErrNoProcess is returned when the workload's process is gone, so its namespace cannot
// be opened; the runtime's exit event normally follows.
var ErrNoProcess = errors.New("workload process is gone")

// ResolveNet implements NetResolver.
func (k *KernelResolver) ResolveNet(w *Workload) error {
	if w.PID <= 0 {
		return fmt.Errorf("workload %s: %w (no pid)", w.ID, ErrNoProcess)
	}
	path := k.procRoot() + "/" + strconv.Itoa(w.PID) + "/ns/net"
	ino, err := nsInode(path)
	if err != nil {
		return fmt.Errorf("workload %s: %w", w.ID, err)
	}
	w.NetNS = NetNS{Path: path, Inode: ino}

	hostIno, err := nsInode(k.procRoot() + "/self/ns/net")
	if err != nil {
		return err
	}
	if ino == hostIno {
		// Host networking: the workload's traffic is the host's; it has no interfaces of
		// its own.
		w.Interfaces = []Interface{}
		w.collectIPs()
		return nil
	}

	inner, err := linksIn(path)
	if err != nil {
		return fmt.Errorf("workload %s: %w", w.ID, err)
	}
	host, err := linksIn("")
	if err != nil {
		return fmt.Errorf("host links: %w", err)
	}
	w.Interfaces = pairVeths(inner, host, w.Networks)
	w.collectIPs()
	return nil
}

// Host implements NetResolver.
func (k *KernelResolver) Host() (Workload, error) {
	name := k.Hostname
	if name == "" {
		var err error
		if name, err = os.Hostname(); err != nil {
			return Workload{}, fmt.Errorf("hostname: %w", err)
		}
	}
	// Vigil runs in the host's network namespace; its own entry names it for others
	// (PID 1's is not always readable, e.g. under a hardened sandbox).
	path := k.procRoot() + "/" + strconv.Itoa(os.Getpid()) + "/ns/net"
	ino, err := nsInode(path)
	if err != nil {
		return Workload{}, err
	}
	links, err := linksIn("")
	if err != nil {
		return Workload{}, fmt.Errorf("host links: %w", err)
	}
	w := Workload{
		ID:          HostID,
		Name:        name,
		Kind:        KindHost,
		Group:       HostGroup,
		State:       "running",
		PID:         1,
		NetworkMode: "host",
		NetNS:       NetNS{Path: path, Inode: ino},
		Privileged:  true,
		User:        "root",
	}
	w.Interfaces = hostInterfaces(links)
	w.collectIPs()
	w.normalize()
	return w, nil
}

// hostInterfaces lists the host's own interfaces: everything but loopback, the host ends
// of workload veths (they belong to the workloads) and ifb devices, which only mirror
// other interfaces' traffic for shaping.
func hostInterfaces(links []Link) []Interface {
	var out []Interface
	for _, l := range links {
		if l.Type == "veth" || l.Type == "ifb" || l.Name == "lo" {
			continue
		}
		out = append(out, Interface{
			Name:    l.Name,
			Ifindex: l.Index,
			IPs:     uniqueAddrs(l.Addrs),
			MAC:     formatMAC(l.MAC),
			Subnets: uniquePrefixes(l.Subnets),
		})
	}
	return out
}

func nsInode(path string) (uint64, error) {
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		if errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ESRCH) {
			return 0, fmt.Errorf("%s: %w", path, ErrNoProcess)
		}
		return 0, fmt.Errorf("stat %s: %w", path, err)
	}
	return st.Ino, nil
}

// linksIn lists the links and their global addresses in the namespace at nsPath, or in
// the caller's namespace when nsPath is empty. It opens a netlink socket inside the
// target namespace rather than moving the calling thread there.
func linksIn(nsPath string) ([]Link, error) {
	var h *netlink.Handle
	if nsPath != "" {
		ns, err := netns.GetFromPath(nsPath)
		if err != nil {
			if errors.Is(err, os.ErrNotExist) || errors.Is(err, syscall.ESRCH) {
				return nil, fmt.Errorf("open %s: %w", nsPath, ErrNoProcess)
			}
			return nil, fmt.Errorf("open %s: %w", nsPath, err)
		}
		defer ns.Close()
		if h, err = netlink.NewHandleAt(ns); err != nil {
			return nil, fmt.Errorf("netlink in %s: %w", nsPath, err)
		}
	} else {
		var err error
		if h, err = netlink.NewHandle(); err != nil {
			return nil, fmt.Errorf("netlink: %w", err)
		}
	}
	defer h.Close()

	nl, err := h.LinkList()
	if err != nil {
		return nil, fmt.Errorf("list links: %w", err)
	}
	addrs, err := h.AddrList(nil, netlink.FAMILY_ALL)
	if err != nil {
		return nil, fmt.Errorf("list addresses: %w", err)
	}
	byLink := map[int][]netip.Addr{}
	subnets := map[int][]netip.Prefix{}
	for _, a := range addrs {
		if a.IPNet == nil || a.Scope != int(netlink.SCOPE_UNIVERSE) {
			continue
		}
		ip, ok := netip.AddrFromSlice(a.IP)
		if !ok {
			continue
		}
		ip = ip.Unmap()
		byLink[a.LinkIndex] = append(byLink[a.LinkIndex], ip)
		if ones, _ := a.IPNet.Mask.Size(); ones > 0 {
			if p, err := ip.Prefix(ones); err == nil {
				subnets[a.LinkIndex] = append(subnets[a.LinkIndex], p)
			}
		}
	}
	out := make([]Link, 0, len(nl))
	for _, l := range nl {
		attrs := l.Attrs()
		out = append(out, Link{
			Index:     attrs.Index,
			Name:      attrs.Name,
			Type:      l.Type(),
			PeerIndex: attrs.ParentIndex,
			MAC:       attrs.HardwareAddr,
			Addrs:     byLink[attrs.Index],
			Subnets:   subnets[attrs.Index],
		})
	}
	return out, nil
}
