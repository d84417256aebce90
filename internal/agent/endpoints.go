package agent

import (
	"net/netip"
	"slices"

	"github.com/vigil-sec/vigil/internal/flow"
	"github.com/vigil-sec/vigil/internal/workload"
)

// ExternalGroup is the group of addresses outside every local network.
const ExternalGroup = "external"

// index answers, for an address, which endpoint it is. It is immutable once built and
// replaced whole when the registry changes, so the packet path reads it without a lock.
type index struct {
	byIP    map[netip.Addr]*endpointInfo
	subnets []netip.Prefix
	// captured holds the addresses of workloads whose veth is captured: a frame from
	// one of them seen arriving at another veth was already counted at its sender's.
	captured map[netip.Addr]struct{}
}

type endpointInfo struct {
	kind  flow.EndpointKind
	id    string
	name  string
	group string
	netns workload.NetNS
}

func buildIndex(ws []workload.Workload) *index {
	idx := &index{byIP: map[netip.Addr]*endpointInfo{}, captured: map[netip.Addr]struct{}{}}
	seen := map[netip.Prefix]bool{}
	for _, w := range ws {
		kind := flow.KindWorkload
		if w.Kind == workload.KindHost {
			kind = flow.KindHost
		}
		info := &endpointInfo{kind: kind, id: w.ID, name: w.Name, group: w.Group, netns: w.NetNS}
		for _, ip := range w.IPs {
			// A container that joined another's namespace shares its addresses; the
			// owner (who has the interfaces) stands for them.
			if old, ok := idx.byIP[ip]; ok && w.SharesNetNSWith != "" && old.kind == flow.KindWorkload {
				continue
			}
			idx.byIP[ip] = info
		}
		for _, in := range w.Interfaces {
			if w.Kind == workload.KindContainer {
				for _, ip := range in.IPs {
					idx.captured[ip] = struct{}{}
				}
			}
			for _, p := range in.Subnets {
				if !seen[p] {
					seen[p] = true
					idx.subnets = append(idx.subnets, p)
				}
			}
		}
		for _, n := range w.Networks {
			for _, p := range []netip.Prefix{prefix(n.IPv4, n.IPv4Prefix), prefix(n.IPv6, n.IPv6Prefix)} {
				if p.IsValid() && !seen[p] {
					seen[p] = true
					idx.subnets = append(idx.subnets, p)
				}
			}
		}
	}
	return idx
}

func prefix(a netip.Addr, bits int) netip.Prefix {
	if !a.IsValid() || bits <= 0 {
		return netip.Prefix{}
	}
	p, err := a.Prefix(bits)
	if err != nil {
		return netip.Prefix{}
	}
	return p
}

// endpoint classifies one end of a flow.
func (idx *index) endpoint(ap netip.AddrPort, names *Names, now nowFunc) (flow.Endpoint, *endpointInfo) {
	ip := ap.Addr()
	e := flow.Endpoint{IP: ip, Port: ap.Port()}
	if info, ok := idx.byIP[ip]; ok {
		e.Kind, e.Workload, e.Name, e.Group = info.kind, info.id, info.name, info.group
		if info.kind == flow.KindHost {
			e.Workload = ""
		}
		return e, info
	}
	if ip.IsLoopback() || ip.IsLinkLocalUnicast() || ip.IsMulticast() || ip.IsUnspecified() || idx.local(ip) {
		e.Kind = flow.KindInternal
		return e, nil
	}
	e.Kind = flow.KindExternal
	e.Group = ExternalGroup
	if name, ok := names.Lookup(ip, now()); ok {
		e.Name = name
	}
	return e, nil
}

func (idx *index) local(ip netip.Addr) bool {
	for _, p := range idx.subnets {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

func sortByFirstSeen(rs []flow.Record) {
	slices.SortStableFunc(rs, func(a, b flow.Record) int {
		if c := a.FirstSeen.Compare(b.FirstSeen); c != 0 {
			return c
		}
		return int(a.ID) - int(b.ID)
	})
}

// Endpoint classifies one end of a connection as the flow path does: a workload, the
// host, an external address (named by the DNS answers workloads received) or an
// internal one. The enforcer's deny log uses it for connections capture never sees.
func (a *Agent) Endpoint(ap netip.AddrPort) flow.Endpoint {
	ep, _ := a.idx.Load().endpoint(ap, a.names, a.now)
	return ep
}
