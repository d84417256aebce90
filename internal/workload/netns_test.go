package workload

import (
	"net"
	"net/netip"
	"testing"
)

func mac(s string) net.HardwareAddr {
	hw, err := net.ParseMAC(s)
	if err != nil {
		panic(err)
	}
	return hw
}

func TestPairVeths(t *testing.T) {
	networks := []Network{
		{Name: "bridge", MAC: "02:42:ac:11:00:02"},
		{Name: "backend", MAC: "02:42:ac:12:00:05"},
	}
	inner := []Link{
		{Index: 1, Name: "lo", Type: "device"},
		{Index: 7, Name: "eth0", Type: "veth", PeerIndex: 12, MAC: mac("02:42:ac:11:00:02"), Addrs: []netip.Addr{netip.MustParseAddr("172.17.0.2")}},
		{Index: 9, Name: "eth1", Type: "veth", PeerIndex: 14, MAC: mac("02:42:ac:12:00:05"), Addrs: []netip.Addr{netip.MustParseAddr("172.18.0.5"), netip.MustParseAddr("fd00::5")}},
		// A veth whose peer ifindex exists on the host but belongs to another pair.
		{Index: 11, Name: "eth2", Type: "veth", PeerIndex: 20},
		// A veth whose peer is in a namespace other than the host's.
		{Index: 13, Name: "eth3", Type: "veth", PeerIndex: 99},
		// Not a veth at all, though its parent index points at a host veth.
		{Index: 15, Name: "vlan0", Type: "vlan", PeerIndex: 12},
	}
	host := []Link{
		{Index: 1, Name: "lo", Type: "device"},
		{Index: 2, Name: "eth0", Type: "device"},
		{Index: 12, Name: "vethabc", Type: "veth", PeerIndex: 7},
		{Index: 14, Name: "cali-xyz", Type: "veth", PeerIndex: 9},
		{Index: 20, Name: "vethother", Type: "veth", PeerIndex: 3},
	}
	got := pairVeths(inner, host, networks)
	want := []Interface{
		{Name: "vethabc", Ifindex: 12, IPs: []netip.Addr{netip.MustParseAddr("172.17.0.2")}, MAC: "02:42:ac:11:00:02", PeerName: "eth0", PeerIfindex: 7, Network: "bridge"},
		{Name: "cali-xyz", Ifindex: 14, IPs: []netip.Addr{netip.MustParseAddr("172.18.0.5"), netip.MustParseAddr("fd00::5")}, MAC: "02:42:ac:12:00:05", PeerName: "eth1", PeerIfindex: 9, Network: "backend"},
	}
	if len(got) != len(want) {
		t.Fatalf("pairVeths = %+v, want %+v", got, want)
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.Name != w.Name || g.Ifindex != w.Ifindex || g.MAC != w.MAC || g.PeerName != w.PeerName ||
			g.PeerIfindex != w.PeerIfindex || g.Network != w.Network || len(g.IPs) != len(w.IPs) {
			t.Errorf("interface %d = %+v, want %+v", i, g, w)
			continue
		}
		for j := range w.IPs {
			if g.IPs[j] != w.IPs[j] {
				t.Errorf("interface %d ips = %v, want %v", i, g.IPs, w.IPs)
			}
		}
	}
}

func TestPairVethsNoNetworkMatch(t *testing.T) {
	inner := []Link{{Index: 5, Name: "eth0", Type: "veth", PeerIndex: 30, MAC: mac("02:00:00:00:00:01")}}
	host := []Link{{Index: 30, Name: "veth1", Type: "veth", PeerIndex: 5}}
	got := pairVeths(inner, host, nil)
	if len(got) != 1 || got[0].Network != "" || got[0].IPs == nil {
		t.Fatalf("pairVeths = %+v, want one interface with no network and an empty (non-nil) address list", got)
	}
}

func TestHostInterfaces(t *testing.T) {
	links := []Link{
		{Index: 1, Name: "lo", Type: "device", Addrs: []netip.Addr{netip.MustParseAddr("127.0.0.1")}},
		{Index: 2, Name: "ifb0", Type: "ifb"},
		{Index: 3, Name: "eth0", Type: "device", MAC: mac("52:54:00:00:00:01"), Addrs: []netip.Addr{netip.MustParseAddr("192.0.2.2")}},
		{Index: 4, Name: "docker0", Type: "bridge", Addrs: []netip.Addr{netip.MustParseAddr("172.17.0.1")}},
		{Index: 5, Name: "veth1", Type: "veth", PeerIndex: 9},
	}
	got := hostInterfaces(links)
	if len(got) != 2 || got[0].Name != "eth0" || got[1].Name != "docker0" {
		t.Fatalf("hostInterfaces = %+v, want eth0 and docker0", got)
	}
	if got[0].MAC != "52:54:00:00:00:01" || got[0].IPs[0] != netip.MustParseAddr("192.0.2.2") {
		t.Errorf("eth0 = %+v", got[0])
	}
}
