package procmon

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// The kernel's process events connector (drivers/connector/cn_proc.c): a netlink
// socket of family NETLINK_CONNECTOR bound to the multicast group CN_IDX_PROC receives
// one message per fork, exec, uid or gid change, exit and a few others, from every
// process on the host.
//
// Written on golang.org/x/sys/unix rather than on vishvananda/netlink's ProcEventMonitor:
// that one hides the socket, so it can neither force a large receive buffer nor tell an
// overrun (ENOBUFS) apart from an error, and it allocates per message. Loss is what this
// reader must report honestly.

// Constants of include/uapi/linux/connector.h and include/uapi/linux/cn_proc.h.
const (
	cnIdxProc         = 1
	cnValProc         = 1
	procCnMcastListen = 1
	procCnMcastIgnore = 2

	procEventFork = 0x00000001
	procEventExec = 0x00000002
	procEventUID  = 0x00000004
	procEventGID  = 0x00000040
	procEventExit = 0x80000000

	cnNlHdrLen   = 16
	cnMsgHdrLen  = 20 // struct cn_msg: cb_id{idx,val u32}, seq u32, ack u32, len u16, flags u16
	procEventHdr = 16 // struct proc_event: what u32, cpu u32, timestamp_ns u64
)

// connectorBuffer is the receive buffer asked for with SO_RCVBUFFORCE. Each event takes
// one socket buffer of about 1 KiB of accounting (truesize), so 32 MiB holds some 30,000
// events: a burst of thousands of execs a second while the readers are descheduled.
const connectorBuffer = 32 << 20

// EventKind is what a ProcEvent reports.
type EventKind uint8

const (
	EventFork EventKind = iota + 1
	EventExec
	EventUID // real or effective user ID changed (setuid and friends)
	EventGID
	EventExit
)

func (k EventKind) String() string {
	switch k {
	case EventFork:
		return "fork"
	case EventExec:
		return "exec"
	case EventUID:
		return "uid"
	case EventGID:
		return "gid"
	case EventExit:
		return "exit"
	}
	return "unknown"
}

// ProcEvent is one decoded connector message. Only the fields of its Kind are set.
// PIDs are thread IDs and TGIDs process IDs, in the host's PID namespace.
type ProcEvent struct {
	Kind EventKind
	CPU  uint32
	Seq  uint32
	// PID and TGID are the thread and process the event is about (for a fork: the child).
	PID, TGID int32
	// ParentPID and ParentTGID are set for a fork.
	ParentPID, ParentTGID int32
	// Real and Effective are the new user (EventUID) or group (EventGID) IDs.
	Real, Effective uint32
}

// errIdle is returned by read when no event came within the socket's receive timeout,
// so that the reader can notice that it should stop: closing a netlink socket does not
// wake a thread blocked on it.
var errIdle = errors.New("process events: idle")

// errOverrun is returned by decode's caller when the kernel dropped messages because the
// receive buffer was full.
var errOverrun = errors.New("process events: receive buffer overrun")

// decodeProcEvent decodes one netlink message of the connector (nlmsghdr, cn_msg,
// proc_event). ok is false for messages that are not process events or are cut short;
// it never panics on any input.
func decodeProcEvent(b []byte, ev *ProcEvent) (ok bool) {
	if len(b) < cnNlHdrLen+cnMsgHdrLen+procEventHdr {
		return false
	}
	ne := binary.NativeEndian
	if l := int(ne.Uint32(b)); l < cnNlHdrLen+cnMsgHdrLen || l > len(b) {
		return false
	} else {
		b = b[:l]
	}
	cn := b[cnNlHdrLen:]
	if ne.Uint32(cn) != cnIdxProc || ne.Uint32(cn[4:]) != cnValProc {
		return false
	}
	seq := ne.Uint32(cn[8:])
	dlen := int(ne.Uint16(cn[16:]))
	data := cn[cnMsgHdrLen:]
	if dlen < procEventHdr || dlen > len(data) {
		return false
	}
	data = data[:dlen]
	what := ne.Uint32(data)
	*ev = ProcEvent{CPU: ne.Uint32(data[4:]), Seq: seq}
	d := data[procEventHdr:]
	u32 := func(i int) uint32 { return ne.Uint32(d[4*i:]) }
	switch what {
	case procEventFork:
		if len(d) < 16 {
			return false
		}
		ev.Kind = EventFork
		ev.ParentPID, ev.ParentTGID, ev.PID, ev.TGID = int32(u32(0)), int32(u32(1)), int32(u32(2)), int32(u32(3))
	case procEventExec:
		if len(d) < 8 {
			return false
		}
		ev.Kind = EventExec
		ev.PID, ev.TGID = int32(u32(0)), int32(u32(1))
	case procEventUID, procEventGID:
		if len(d) < 16 {
			return false
		}
		ev.Kind = EventUID
		if what == procEventGID {
			ev.Kind = EventGID
		}
		ev.PID, ev.TGID, ev.Real, ev.Effective = int32(u32(0)), int32(u32(1)), u32(2), u32(3)
	case procEventExit:
		if len(d) < 8 {
			return false
		}
		ev.Kind = EventExit
		ev.PID, ev.TGID = int32(u32(0)), int32(u32(1))
	default:
		// Session, ptrace, comm, coredump events are counted for sequence gaps but not
		// reported.
		ev.Kind = 0
	}
	return true
}

// connector is an open, subscribed connector socket. Read is for one goroutine.
type connector struct {
	fd  int
	buf []byte
	// last sequence number seen per CPU, plus one (0: none yet), to count the messages
	// the kernel dropped: it numbers the events of each CPU consecutively.
	last    []uint32
	lost    atomic.Uint64 // events missing from the per-CPU sequences
	overrun atomic.Uint64 // ENOBUFS returned by recv
	msgs    atomic.Uint64
	rcvbuf  int // the receive buffer the kernel granted
}

func openConnector() (*connector, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, unix.NETLINK_CONNECTOR)
	if err != nil {
		return nil, fmt.Errorf("process events: open netlink connector socket: %w", err)
	}
	c := &connector{fd: fd, buf: make([]byte, 64<<10), last: make([]uint32, 1024)}
	// FORCE passes the net.core.rmem_max cap (needs CAP_NET_ADMIN); fall back to what
	// the cap allows.
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, connectorBuffer); err != nil {
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, connectorBuffer)
	}
	_ = unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &unix.Timeval{Usec: 250000})
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK, Groups: cnIdxProc, Pid: 0}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("process events: bind to the proc connector group: %w", err)
	}
	if err := c.send(procCnMcastListen); err != nil {
		unix.Close(fd)
		return nil, err
	}
	c.rcvbuf, _ = unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF)
	return c, nil
}

// send asks the kernel to start (or stop) sending process events.
func (c *connector) send(op uint32) error {
	ne := binary.NativeEndian
	msg := make([]byte, cnNlHdrLen+cnMsgHdrLen+4)
	ne.PutUint32(msg[0:], uint32(len(msg)))
	ne.PutUint16(msg[4:], unix.NLMSG_DONE)
	ne.PutUint32(msg[12:], uint32(os.Getpid()))
	cn := msg[cnNlHdrLen:]
	ne.PutUint32(cn[0:], cnIdxProc)
	ne.PutUint32(cn[4:], cnValProc)
	ne.PutUint16(cn[16:], 4)
	ne.PutUint32(cn[cnMsgHdrLen:], op)
	if err := unix.Sendto(c.fd, msg, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return fmt.Errorf("process events: subscribe to the proc connector (PROC_CN_MCAST_LISTEN): %w", err)
	}
	return nil
}

// bufferSize is the receive buffer the kernel granted (it reports twice the request).
func (c *connector) bufferSize() int { return c.rcvbuf }

// read blocks for the next process event. It returns errOverrun after the kernel
// dropped messages (the loss is counted) and another error when the socket fails or was
// closed.
func (c *connector) read(ev *ProcEvent) error {
	for {
		n, _, err := unix.Recvfrom(c.fd, c.buf, 0)
		switch {
		case err == unix.EINTR:
			continue
		case err == unix.EAGAIN:
			return errIdle
		case err == unix.ENOBUFS:
			c.overrun.Add(1)
			return errOverrun
		case err != nil:
			return fmt.Errorf("process events: read: %w", err)
		case n == 0:
			return errors.New("process events: socket closed")
		}
		if !decodeProcEvent(c.buf[:n], ev) {
			continue
		}
		c.msgs.Add(1)
		c.count(ev.CPU, ev.Seq)
		if ev.Kind != 0 {
			return nil
		}
	}
}

// count notes sequence number seq from cpu and counts the numbers skipped since the last.
func (c *connector) count(cpu, seq uint32) {
	if int(cpu) >= len(c.last) {
		return
	}
	if prev := c.last[cpu]; prev != 0 {
		if gap := seq - prev; gap > 0 && gap < 1<<30 {
			c.lost.Add(uint64(gap))
		}
	}
	c.last[cpu] = seq + 1
}

// close unsubscribes and closes the socket. Call it after the reader has returned.
func (c *connector) close() {
	_ = c.send(procCnMcastIgnore)
	unix.Close(c.fd)
}
