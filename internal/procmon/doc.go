// Package procmon watches the processes on a host. Its first job is socket attribution:
// [SocketOwners] answers "which process owns the TCP or UDP socket at this end of this flow,
// in this network namespace", so that a flow carries its owning process from its birth.
//
// Attribution has two steps. The kernel's sock_diag interface (NETLINK_INET_DIAG), asked
// from a netlink socket created inside the flow's network namespace, names the socket: its
// inode. The owner is then the process holding a file descriptor that links to
// "socket:[inode]", found by reading /proc/PID/fd of the processes whose network namespace
// is the flow's. Both steps are cached; see [SocketOwners] for the cost of each.
//
// What it needs: root (CAP_SYS_ADMIN to enter other network namespaces, CAP_SYS_PTRACE or
// CAP_DAC_READ_SEARCH to read other processes' descriptors), the host's /proc (the host PID
// namespace) at the procRoot given to [NewSocketOwners], and a kernel with inet_diag,
// tcp_diag and udp_diag (Debian loads them on first use).
//
// Traps:
//   - Each namespace Lookup has been asked about keeps an open netlink socket, and that
//     socket keeps the namespace alive after its last process has gone. Sockets idle for
//     30 seconds are closed on the next Lookup; Close releases them all.
//   - A socket is attributed only to a process whose main thread lives in the socket's
//     network namespace. Sockets made in a namespace by a process that lives elsewhere
//     (dockerd's embedded DNS server, a CNI plugin, a thread that called setns) are not
//     attributed: Lookup says so rather than guess.
//   - The network namespace of each process is remembered. One that moves to another
//     namespace long after it started (setns, unshare) is seen there at the next periodic
//     re-read, within 10 seconds; those that move at birth (runc, nsenter) are seen at once.
//   - The owner is found while it holds the socket. A client that has already closed the
//     socket or exited when Lookup runs cannot be attributed.
//   - The /proc work of misses has a CPU budget (5% of one CPU, shared fairly among
//     namespaces). A lookup over it returns false at once rather than wait;
//     Stats.ScansLimited counts them.
//
// Its second job is process security. [Monitor] follows every process on the host from
// the kernel's process events connector (fork, exec, uid/gid change, exit; one netlink
// socket with a 32 MiB receive buffer, losses counted from the gaps in each CPU's
// sequence numbers) after a scan of /proc, and keeps the process tree: parent, command
// line, executable, real and effective IDs, start time and container (from the cgroup
// path, v1 and v2). [Detector] judges each exec and uid change: privilege escalation,
// suspicious tools, reverse shells, shells started by services and binary drift.
// [Profile] is the set of programs a group runs.
//
// Traps of the process side:
//   - Each exec is read from /proc when its event arrives. A program that exits within
//     about a millisecond can be gone by then, all the more on a loaded host. In a
//     container the file guard's exec notifications (FAN_OPEN_EXEC, FileGuard.SetExecNotes
//     → Monitor.NoteExec) name the file each exec opened, readable after the process
//     has gone; the monitor pairs them with the connector's execs (execnotes.go) and
//     judges such an exec with what they give: the executable, the container, the name
//     read from /proc's stat when it could be, else the file's base name (wrong for
//     busybox's applets and other links: the profile then matches by executable and
//     user only), the user IDs inherited from the parent at the fork (a set-user-ID
//     file's owner as effective user), no command line. ProcessInfo.Inferred lists what
//     was not read; MonitorStats.Recovered counts these execs. The exec connector
//     message carries only the PID (no name: the connector's comm event is sent for
//     prctl(PR_SET_NAME), not at exec).
//   - The taskstats exit records (generic netlink family TASKSTATS, registered for the
//     online CPUs; taskstats.go, exitrecords.go) give such a process its real name and
//     real uid/gid: an exec judged from its notification waits for its record (at most
//     50 ms, bounded, off the workers) and is judged once, with them. Taskstats has no
//     effective IDs: the effective user stays inferred (the parent's when the real one
//     did not change, a set-user-ID file's owner). A host exec gone before its read is
//     observed from its record (name, real IDs; no executable), so that the escalation
//     rule sees a real uid that became 0 — not an effective one (a set-user-ID program
//     that exits at once is missed on the host). Without a record (CONFIG_TASKSTATS off,
//     the socket overran: MonitorStats.ExitRecords) such an exec is judged as guessed, or
//     on the host counted in MonitorStats.Unread. CPUs brought online after start are
//     not registered.
//   - What a process was between two reads (a setuid helper that execs a shell at once)
//     may be seen only as what it became; in a container the exec notifications give the
//     earlier program back.
//   - The connector sees the host's PID namespace only from the host's network
//     namespace: Vigil must run in both.
package procmon
