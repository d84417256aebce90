// Package enforce installs a workload's allow-list in the kernel as one nftables table
// inside the workload's own network namespace, so it holds for any network driver, for
// peers on this host or elsewhere, and for traffic to the host itself.
//
// A Plan says what one protected workload may do; Apply turns it into table inet vigil
// with an input and an output chain: established and related traffic first, loopback, the
// allowed (peer set, protocol, port range) triples, then everything else logged (NFLOG
// group NFLogGroup, rate-limited) and rejected with a TCP reset or an ICMP port
// unreachable, so a refused client fails at once instead of timing out.
//
// Needs: CAP_NET_ADMIN in the workload's namespace and CAP_SYS_ADMIN to open it (root on
// the host), and nf_tables with the inet family, interval sets and reject support.
//
// Traps a caller must know:
//   - The table outlives Vigil: it is in the kernel, and stays there when Vigil stops or
//     crashes (fail static). Remove is the only way it goes, besides the namespace dying.
//   - Peer groups are named sets, each present twice in the table, as "<set>_v4" and
//     "<set>_v6", because an nftables set has one key type. UpdateSet changes a group's
//     members without touching any rule; it fails if Apply has not created the set.
//   - Every change is one netlink batch, which the kernel applies all or nothing: while a
//     table is replaced there is never a moment without rules.
//   - A namespace path of a process (/proc/PID/ns/net) can name a different namespace once
//     the process is gone and its PID reused; set Plan.Inode so Apply refuses it.
//
// The functions keep no state and are safe for concurrent use, but two concurrent
// changes to the same namespace are ordered only by the kernel: the last batch wins.
package enforce
