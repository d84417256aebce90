package enforce

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"slices"
	"syscall"

	"github.com/mdlayher/netlink"
	"github.com/ti-mo/conntrack"
	"github.com/vishvananda/netns"
)

// openNetNS opens the namespace at path, mapping a missing path to ErrNoNetNS. The
// caller closes the handle.
func openNetNS(path string) (netns.NsHandle, error) {
	ns, err := netns.GetFromPath(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) || errors.Is(err, syscall.ESRCH) {
			return ns, fmt.Errorf("open %s: %w", path, ErrNoNetNS)
		}
		return ns, fmt.Errorf("open %s: %w", path, err)
	}
	return ns, nil
}

// Cut deletes the conntrack entries, in the namespace at netnsPath, of the connections
// opened to local:localPort over proto by a peer that keep rejects, and returns how many
// it deleted. An invalid or unspecified local matches every local address.
//
// The table accepts established traffic before it looks at peers, so withdrawing a
// peer's rule leaves its open connections alone; deleting their entries makes their
// next packet new again, and the table's final rule resets them. Cut must therefore run
// after the Apply or UpdateSet that withdrew the peer: run before, the next packet
// recreates the entry as established and the connection survives.
//
// Entries that vanish between the dump and the delete (the connection closed) are not
// counted and are not an error.
func Cut(netnsPath string, local netip.Addr, localPort uint16, proto uint8, keep func(peer netip.Addr) bool) (int, error) {
	ns, err := openNetNS(netnsPath)
	if err != nil {
		return 0, err
	}
	defer ns.Close()
	// The socket is created in the namespace; the calling thread stays where it is.
	c, err := conntrack.Dial(&netlink.Config{NetNS: int(ns)})
	if err != nil {
		return 0, fmt.Errorf("conntrack in %s: %w", netnsPath, err)
	}
	defer c.Close()

	flows, err := c.Dump(nil)
	if err != nil {
		return 0, fmt.Errorf("dump conntrack in %s: %w", netnsPath, err)
	}
	anyLocal := !local.IsValid() || local.IsUnspecified()
	local = local.Unmap()
	n := 0
	for _, f := range flows {
		o := f.TupleOrig
		if o.Proto.Protocol != proto || o.Proto.DestinationPort != localPort {
			continue
		}
		if !anyLocal && o.IP.DestinationAddress.Unmap() != local {
			continue
		}
		if keep(o.IP.SourceAddress.Unmap()) {
			continue
		}
		if err := c.Delete(f); err != nil {
			if errors.Is(err, syscall.ENOENT) {
				continue
			}
			return n, fmt.Errorf("delete conntrack entry %v:%d -> %v:%d in %s: %w",
				o.IP.SourceAddress, o.Proto.SourcePort, o.IP.DestinationAddress, o.Proto.DestinationPort, netnsPath, err)
		}
		n++
	}
	return n, nil
}

// CutDisallowed deletes the conntrack entries, in p's namespace, of the connections p
// does not permit (Plan.Permits), and returns how many it deleted. Which end opened a
// connection is told by p.Addrs: an entry whose original source is one of them was
// opened by the workload. Entries of loopback traffic and those that name none of the
// workload's addresses are left alone.
//
// Like Cut, it must run after the Apply that installed p: the next packet of a cut
// connection is then new to the table, which resets it.
func CutDisallowed(p Plan) (int, error) {
	if len(p.Addrs) == 0 {
		return 0, nil
	}
	ns, err := openNetNS(p.NetNS)
	if err != nil {
		return 0, err
	}
	defer ns.Close()
	c, err := conntrack.Dial(&netlink.Config{NetNS: int(ns)})
	if err != nil {
		return 0, fmt.Errorf("conntrack in %s: %w", p.NetNS, err)
	}
	defer c.Close()
	flows, err := c.Dump(nil)
	if err != nil {
		return 0, fmt.Errorf("dump conntrack in %s: %w", p.NetNS, err)
	}
	n := 0
	for _, f := range flows {
		if !disallowed(p, f.TupleOrig) {
			continue
		}
		if err := c.Delete(f); err != nil {
			if errors.Is(err, syscall.ENOENT) {
				continue
			}
			o := f.TupleOrig
			return n, fmt.Errorf("delete conntrack entry %v:%d -> %v:%d in %s: %w",
				o.IP.SourceAddress, o.Proto.SourcePort, o.IP.DestinationAddress, o.Proto.DestinationPort, p.NetNS, err)
		}
		n++
	}
	return n, nil
}

// disallowed tells whether the connection whose original tuple is o is one p no
// longer permits.
func disallowed(p Plan, o conntrack.Tuple) bool {
	src, dst := o.IP.SourceAddress.Unmap(), o.IP.DestinationAddress.Unmap()
	if src.IsLoopback() || dst.IsLoopback() {
		return false
	}
	switch {
	case slices.Contains(p.Addrs, dst):
		return !p.Permits(true, src, o.Proto.Protocol, o.Proto.DestinationPort)
	case slices.Contains(p.Addrs, src):
		return !p.Permits(false, dst, o.Proto.Protocol, o.Proto.DestinationPort)
	}
	return false
}
