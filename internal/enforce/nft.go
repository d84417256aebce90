package enforce

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"syscall"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/mdlayher/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// ErrNetNSChanged is returned when the namespace at a plan's path is not the one the
// plan was made for.
var ErrNetNSChanged = errors.New("network namespace changed")

// ErrNoNetNS is returned when the namespace path does not exist (the process is gone).
var ErrNoNetNS = errors.New("network namespace is gone")

func table() *nftables.Table {
	return &nftables.Table{Name: TableName, Family: nftables.TableFamilyINet}
}

// conn opens an nftables connection inside the namespace at path without moving the
// calling thread there: the netlink socket is created in that namespace. The returned
// function closes the namespace handle.
func conn(path string, inode uint64) (*nftables.Conn, func(), error) {
	ns, err := netns.GetFromPath(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) || errors.Is(err, syscall.ESRCH) {
			return nil, nil, fmt.Errorf("open %s: %w", path, ErrNoNetNS)
		}
		return nil, nil, fmt.Errorf("open %s: %w", path, err)
	}
	if inode != 0 {
		var st unix.Stat_t
		if err := unix.Fstat(int(ns), &st); err != nil {
			ns.Close()
			return nil, nil, fmt.Errorf("stat %s: %w", path, err)
		}
		if st.Ino != inode {
			ns.Close()
			return nil, nil, fmt.Errorf("%s has inode %d, want %d: %w", path, st.Ino, inode, ErrNetNSChanged)
		}
	}
	c, err := nftables.New(nftables.WithNetNSFd(int(ns)), nftables.WithSockOptions(bigSendBuffer))
	if err != nil {
		ns.Close()
		return nil, nil, fmt.Errorf("nftables in %s: %w", path, err)
	}
	return c, func() { ns.Close() }, nil
}

// sendBuffer sizes the netlink socket's buffers: a plan is one batch, and the kernel
// refuses a message larger than the send buffer ("message too long") and drops
// acknowledgements that do not fit the receive buffer ("no buffer space"); thousands of
// rules need megabytes, beyond the default limits (net.core.[wr]mem_max), hence the
// FORCE options (root).
const sendBuffer = 64 << 20

func bigSendBuffer(c *netlink.Conn) error {
	rc, err := c.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		// The kernel acknowledges every message of the batch: the answers need room too.
		serr = errors.Join(
			unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, sendBuffer),
			unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, sendBuffer))
	}); err != nil {
		return err
	}
	return serr
}

// Apply installs p in its workload's namespace, replacing any table an earlier Apply
// left there, in one atomic batch.
func Apply(p Plan) error {
	if err := p.validate(); err != nil {
		return err
	}
	c, done, err := conn(p.NetNS, p.Inode)
	if err != nil {
		return fmt.Errorf("workload %s: %w", p.Workload, err)
	}
	defer done()
	if err := addPlan(c, p); err != nil {
		return fmt.Errorf("workload %s: %w", p.Workload, err)
	}
	if err := c.Flush(); err != nil {
		return fmt.Errorf("workload %s: apply table in %s: %w", p.Workload, p.NetNS, err)
	}
	return nil
}

// addPlan queues the batch that (re)creates the table. Adding the table before deleting
// it makes the delete valid whether or not the table exists, so the batch needs no
// prior read and is not racy.
func addPlan(c *nftables.Conn, p Plan) error {
	t := table()
	c.AddTable(t)
	c.DelTable(t)
	c.AddTable(t)

	names, members := p.peerSets()
	sets := map[string]map[family]*nftables.Set{}
	// Set IDs only tie rules to sets within one batch. We number them ourselves: the
	// library's own counter is a package variable shared unlocked by all connections.
	var id uint32
	for _, name := range names {
		sets[name] = map[family]*nftables.Set{}
		for _, f := range []family{ipv4, ipv6} {
			id++
			s := &nftables.Set{Table: t, ID: id, Name: name + f.suffix, KeyType: f.keyType, Interval: true}
			if err := c.AddSet(s, intervalElements(f, members[name])); err != nil {
				return fmt.Errorf("set %s: %w", s.Name, err)
			}
			sets[name][f] = s
		}
	}

	accept := nftables.ChainPolicyAccept
	for _, ingress := range []bool{true, false} {
		name, hook, allows := "output", nftables.ChainHookOutput, p.Egress
		if ingress {
			name, hook, allows = "input", nftables.ChainHookInput, p.Ingress
		}
		ch := c.AddChain(&nftables.Chain{
			Name: name, Table: t, Type: nftables.ChainTypeFilter,
			Hooknum: hook, Priority: nftables.ChainPriorityFilter, Policy: &accept,
		})
		for _, e := range chainExprs(ingress, allows, p.Log, sets) {
			c.AddRule(&nftables.Rule{Table: t, Chain: ch, Exprs: e})
		}
	}
	return nil
}

// chainExprs lists the rules of one chain, in order.
func chainExprs(ingress bool, allows []Allow, log bool, sets map[string]map[family]*nftables.Set) [][]expr.Any {
	rules := [][]expr.Any{ctEstablishedExprs(), loopbackExprs(ingress), neighborDiscoveryExprs()}
	for _, a := range allows {
		for _, f := range []family{ipv4, ipv6} {
			rules = append(rules, allowExprs(f, ingress, sets[a.Set][f], a))
		}
	}
	if log {
		rules = append(rules, logExprs())
	}
	return append(rules, rejectTCPExprs(), rejectExprs())
}

// UpdateSet replaces the members of a peer set that Apply created in the namespace at
// netns, in one atomic batch; the rules that use it are untouched.
func UpdateSet(netns string, set string, peers []netip.Prefix) error {
	if err := (Allow{Set: set, Peers: peers}).validate(); err != nil {
		return err
	}
	c, done, err := conn(netns, 0)
	if err != nil {
		return err
	}
	defer done()
	for _, f := range []family{ipv4, ipv6} {
		s := &nftables.Set{Table: table(), Name: set + f.suffix, KeyType: f.keyType, Interval: true}
		c.FlushSet(s)
		if elems := intervalElements(f, peers); len(elems) > 0 {
			if err := c.SetAddElements(s, elems); err != nil {
				return fmt.Errorf("set %s: %w", s.Name, err)
			}
		}
	}
	if err := c.Flush(); err != nil {
		return fmt.Errorf("update set %s in %s: %w", set, netns, err)
	}
	return nil
}

// Installed reports whether the namespace at netns holds Vigil's table.
func Installed(netns string) (bool, error) {
	c, done, err := conn(netns, 0)
	if err != nil {
		return false, err
	}
	defer done()
	tables, err := c.ListTablesOfFamily(nftables.TableFamilyINet)
	if err != nil {
		return false, fmt.Errorf("list tables in %s: %w", netns, err)
	}
	for _, t := range tables {
		if t.Name == TableName {
			return true, nil
		}
	}
	return false, nil
}

// Remove deletes Vigil's table from the namespace at netns; a namespace without it is
// not an error.
func Remove(netns string) error {
	c, done, err := conn(netns, 0)
	if err != nil {
		return err
	}
	defer done()
	// Adding first makes the delete valid when the table is absent; both happen at once.
	t := table()
	c.AddTable(t)
	c.DelTable(t)
	if err := c.Flush(); err != nil {
		return fmt.Errorf("remove table in %s: %w", netns, err)
	}
	return nil
}
