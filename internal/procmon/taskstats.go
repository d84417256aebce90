package procmon

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// Taskstats exit records (include/uapi/linux/taskstats.h, kernel/taskstats.c): a
// generic netlink family, "TASKSTATS", that sends a listener one message per exiting
// task on the CPUs it registered for. The record is filled in do_exit before the task
// releases its memory and long before it is reaped, so it is on the listener's socket
// by the time /proc/PID has gone: it gives back what a process that exited within a
// millisecond had — its command name (ac_comm, the applet's name for busybox), its real
// user and group (ac_uid, ac_gid; not the effective ones: taskstats does not carry
// them), its parent, start time and exit code.
//
// Written on golang.org/x/sys/unix, like the connector: one family lookup, one
// registration, then a receive loop with a large buffer that must count overruns
// (ENOBUFS) exactly and decode without allocating. mdlayher/genetlink would add a module
// for the lookup alone and allocate per message.

// Constants of include/uapi/linux/genetlink.h and taskstats.h.
const (
	genlIDCtrl            = 0x10
	ctrlCmdGetFamily      = 3
	ctrlAttrFamilyID      = 1
	ctrlAttrFamilyName    = 2
	genlHdrLen            = 4
	taskstatsCmdGet       = 1
	taskstatsCmdNew       = 2
	tsTypePID             = 1
	tsTypeTGID            = 2
	tsTypeStats           = 3
	tsTypeAggrPID         = 4
	tsTypeAggrTGID        = 5
	tsCmdAttrRegisterMask = 3
	tsCmdAttrDeregMask    = 4
)

// Offsets of struct taskstats (checked against the UAPI header with offsetof on
// x86-64 and arm64, whose alignment rules agree). Fields are read only when the record
// is long enough and its version has them.
const (
	tsOffVersion    = 0
	tsOffExitcode   = 4
	tsOffFlag       = 8
	tsOffComm       = 80
	tsCommLen       = 32
	tsOffUID        = 120
	tsOffGID        = 124
	tsOffPID        = 128
	tsOffPPID       = 132
	tsOffBtime      = 136
	tsOffEtime      = 144
	tsOffBtime64    = 344 // version 10
	tsOffTGID       = 368 // version 12
	tsOffExeDev     = 384 // version 12
	tsOffExeIno     = 392 // version 12
	tsMinLen        = tsOffEtime + 8
	tsVersionBtime  = 10
	tsVersionTGID   = 12
	taskstatsBuffer = 32 << 20
)

// ExitRecord is what a taskstats exit record says of a task. IDs are in the host's
// namespaces.
type ExitRecord struct {
	Version uint16
	// PID is the task (a thread ID); TGID its process (version 12 on; 0 before).
	PID, TGID, PPID int32
	// Group is set for the per-process (AGGR_TGID) record sent after the last thread:
	// it carries only the delay accounting summed over the threads, not the name or IDs.
	Group bool
	// UID and GID are the real IDs.
	UID, GID uint32
	ExitCode uint32
	Flag     uint8
	// BTime is the start time, seconds since 1970; Elapsed the time it ran.
	BTime   int64
	Elapsed time.Duration
	// ExeDev and ExeIno identify the executable (version 12 on; 0 before).
	ExeDev, ExeIno uint64
	comm           [tsCommLen]byte
	commLen        uint8
	// Received is when the record was read.
	Received time.Time
}

// Comm is the task's command name at exit.
func (r *ExitRecord) Comm() string { return string(r.comm[:r.commLen]) }

// errTaskstats prefixes the parser's errors.
var errTaskstats = errors.New("taskstats message")

// parseTaskstats decodes one netlink message of the taskstats family (nlmsghdr,
// genlmsghdr, attributes): up to two records (the task's, and the process's after its
// last thread) into out; n is how many. It never panics on any input.
func parseTaskstats(b []byte, family uint16, out *[2]ExitRecord) (n int, err error) {
	ne := binary.NativeEndian
	if len(b) < unix.NLMSG_HDRLEN+genlHdrLen {
		return 0, fmt.Errorf("%w: %d bytes, shorter than its headers", errTaskstats, len(b))
	}
	l := int(ne.Uint32(b))
	if l < unix.NLMSG_HDRLEN+genlHdrLen || l > len(b) {
		return 0, fmt.Errorf("%w: length %d of %d bytes", errTaskstats, l, len(b))
	}
	if t := ne.Uint16(b[4:]); t != family {
		return 0, fmt.Errorf("%w: type %d, not the family's %d", errTaskstats, t, family)
	}
	if cmd := b[unix.NLMSG_HDRLEN]; cmd != taskstatsCmdNew {
		return 0, fmt.Errorf("%w: command %d, not TASKSTATS_CMD_NEW", errTaskstats, cmd)
	}
	attrs := b[unix.NLMSG_HDRLEN+genlHdrLen : l]
	for len(attrs) > 0 {
		typ, val, rest, err := nextAttr(attrs)
		if err != nil {
			return n, err
		}
		attrs = rest
		if typ != tsTypeAggrPID && typ != tsTypeAggrTGID {
			continue
		}
		if n == len(out) {
			return n, fmt.Errorf("%w: more than %d records", errTaskstats, len(out))
		}
		r := &out[n]
		*r = ExitRecord{Group: typ == tsTypeAggrTGID}
		var id int32
		var stats []byte
		for len(val) > 0 {
			t, v, rest, err := nextAttr(val)
			if err != nil {
				return n, err
			}
			val = rest
			switch t {
			case tsTypePID, tsTypeTGID:
				if len(v) < 4 {
					return n, fmt.Errorf("%w: ID attribute of %d bytes", errTaskstats, len(v))
				}
				id = int32(ne.Uint32(v))
			case tsTypeStats:
				stats = v
			}
		}
		if stats == nil {
			return n, fmt.Errorf("%w: record without statistics", errTaskstats)
		}
		if err := decodeTaskstats(stats, r); err != nil {
			return n, err
		}
		if r.Group {
			r.TGID = id
		} else if id != 0 {
			r.PID = id
		}
		n++
	}
	return n, nil
}

// nextAttr splits the first netlink attribute off b.
func nextAttr(b []byte) (typ uint16, val, rest []byte, err error) {
	if len(b) < unix.SizeofNlAttr {
		return 0, nil, nil, fmt.Errorf("%w: %d bytes left, shorter than an attribute header", errTaskstats, len(b))
	}
	ne := binary.NativeEndian
	l := int(ne.Uint16(b))
	if l < unix.SizeofNlAttr || l > len(b) {
		return 0, nil, nil, fmt.Errorf("%w: attribute length %d of %d bytes", errTaskstats, l, len(b))
	}
	typ = ne.Uint16(b[2:]) &^ (unix.NLA_F_NESTED | unix.NLA_F_NET_BYTEORDER)
	val = b[unix.SizeofNlAttr:l]
	next := min((l+unix.NLA_ALIGNTO-1)&^(unix.NLA_ALIGNTO-1), len(b))
	return typ, val, b[next:], nil
}

// decodeTaskstats reads the fields Vigil uses from a struct taskstats, by offset.
func decodeTaskstats(s []byte, r *ExitRecord) error {
	if len(s) < tsMinLen {
		return fmt.Errorf("%w: struct taskstats of %d bytes, want at least %d", errTaskstats, len(s), tsMinLen)
	}
	ne := binary.NativeEndian
	r.Version = ne.Uint16(s[tsOffVersion:])
	if r.Version < 2 {
		return fmt.Errorf("%w: struct taskstats version %d has no accounting fields", errTaskstats, r.Version)
	}
	r.ExitCode = ne.Uint32(s[tsOffExitcode:])
	r.Flag = s[tsOffFlag]
	comm := s[tsOffComm : tsOffComm+tsCommLen]
	c := 0
	for c < len(comm) && comm[c] != 0 {
		c++
	}
	copy(r.comm[:], comm[:c])
	r.commLen = uint8(c)
	r.UID = ne.Uint32(s[tsOffUID:])
	r.GID = ne.Uint32(s[tsOffGID:])
	r.PID = int32(ne.Uint32(s[tsOffPID:]))
	r.PPID = int32(ne.Uint32(s[tsOffPPID:]))
	r.BTime = int64(ne.Uint32(s[tsOffBtime:]))
	if us := ne.Uint64(s[tsOffEtime:]); us < uint64(1<<63-1)/uint64(time.Microsecond) {
		r.Elapsed = time.Duration(us) * time.Microsecond
	}
	if r.Version >= tsVersionBtime && len(s) >= tsOffBtime64+8 {
		if b := ne.Uint64(s[tsOffBtime64:]); b != 0 && b < 1<<62 {
			r.BTime = int64(b)
		}
	}
	if r.Version >= tsVersionTGID && len(s) >= tsOffExeIno+8 {
		r.TGID = int32(ne.Uint32(s[tsOffTGID:]))
		r.ExeDev = ne.Uint64(s[tsOffExeDev:])
		r.ExeIno = ne.Uint64(s[tsOffExeIno:])
	}
	return nil
}

// taskstatsConn is a generic netlink socket registered for the exit records of all
// online CPUs. read is for one goroutine.
type taskstatsConn struct {
	fd      int
	family  uint16
	mask    string
	buf     []byte
	rcvbuf  int
	overrun atomic.Uint64 // ENOBUFS: records lost
	msgs    atomic.Uint64
	bad     atomic.Uint64 // messages that did not decode
}

// openTaskstats opens the socket, resolves the family and registers for exits on the
// CPUs of cpuList (the kernel's list format, "0-1"; empty: the online CPUs).
func openTaskstats(cpuList string) (*taskstatsConn, error) {
	if cpuList == "" {
		b, err := os.ReadFile("/sys/devices/system/cpu/online")
		if err != nil {
			return nil, fmt.Errorf("taskstats: online CPUs: %w", err)
		}
		cpuList = strings.TrimSpace(string(b))
	}
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_GENERIC)
	if err != nil {
		return nil, fmt.Errorf("taskstats: open generic netlink socket: %w", err)
	}
	c := &taskstatsConn{fd: fd, mask: cpuList, buf: make([]byte, 64<<10)}
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, taskstatsBuffer); err != nil {
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, taskstatsBuffer)
	}
	_ = unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &unix.Timeval{Usec: 250000})
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("taskstats: bind: %w", err)
	}
	if c.family, err = c.resolve(); err != nil {
		unix.Close(fd)
		return nil, err
	}
	if err := c.request(taskstatsCmdGet, tsCmdAttrRegisterMask, cpuList, 2); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("taskstats: register for exits on CPUs %s: %w", cpuList, err)
	}
	c.rcvbuf, _ = unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF)
	return c, nil
}

// resolve asks the generic netlink controller for the TASKSTATS family's ID.
func (c *taskstatsConn) resolve() (uint16, error) {
	if err := c.send(genlIDCtrl, ctrlCmdGetFamily, ctrlAttrFamilyName, "TASKSTATS", 1, 0); err != nil {
		return 0, fmt.Errorf("taskstats: resolve the family: %w", err)
	}
	ne := binary.NativeEndian
	for {
		b, err := c.recv(0)
		if err != nil {
			return 0, fmt.Errorf("taskstats: resolve the family: %w", err)
		}
		for len(b) >= unix.NLMSG_HDRLEN {
			l := int(ne.Uint32(b))
			if l < unix.NLMSG_HDRLEN || l > len(b) {
				break
			}
			m := b[:l]
			b = b[min((l+unix.NLMSG_ALIGNTO-1)&^(unix.NLMSG_ALIGNTO-1), len(b)):]
			switch ne.Uint16(m[4:]) {
			case unix.NLMSG_ERROR:
				if len(m) >= unix.NLMSG_HDRLEN+4 {
					if e := int32(ne.Uint32(m[unix.NLMSG_HDRLEN:])); e != 0 {
						return 0, fmt.Errorf("taskstats: no TASKSTATS family (kernel without CONFIG_TASKSTATS?): %w", unix.Errno(-e))
					}
				}
			case genlIDCtrl:
				attrs := m[min(unix.NLMSG_HDRLEN+genlHdrLen, len(m)):]
				for len(attrs) > 0 {
					t, v, rest, err := nextAttr(attrs)
					if err != nil {
						return 0, err
					}
					attrs = rest
					if t == ctrlAttrFamilyID && len(v) >= 2 {
						return ne.Uint16(v), nil
					}
				}
				return 0, errors.New("taskstats: the controller's answer has no family ID")
			}
		}
	}
}

// request sends a command with one string attribute and waits for its acknowledgement
// (records that arrive meanwhile are skipped: registration comes before they matter).
func (c *taskstatsConn) request(cmd uint8, attr uint16, val string, seq uint32) error {
	if err := c.send(c.family, cmd, attr, val, seq, unix.NLM_F_ACK); err != nil {
		return err
	}
	ne := binary.NativeEndian
	for {
		b, err := c.recv(0)
		if err != nil {
			return err
		}
		for len(b) >= unix.NLMSG_HDRLEN {
			l := int(ne.Uint32(b))
			if l < unix.NLMSG_HDRLEN || l > len(b) {
				break
			}
			m := b[:l]
			b = b[min((l+unix.NLMSG_ALIGNTO-1)&^(unix.NLMSG_ALIGNTO-1), len(b)):]
			if ne.Uint16(m[4:]) == unix.NLMSG_ERROR && ne.Uint32(m[8:]) == seq && len(m) >= unix.NLMSG_HDRLEN+4 {
				if e := int32(ne.Uint32(m[unix.NLMSG_HDRLEN:])); e != 0 {
					return unix.Errno(-e)
				}
				return nil
			}
		}
	}
}

func (c *taskstatsConn) send(typ uint16, cmd uint8, attr uint16, val string, seq uint32, flags uint16) error {
	ne := binary.NativeEndian
	alen := unix.SizeofNlAttr + len(val) + 1
	msg := make([]byte, unix.NLMSG_HDRLEN+genlHdrLen+((alen+3)&^3))
	ne.PutUint32(msg[0:], uint32(len(msg)))
	ne.PutUint16(msg[4:], typ)
	ne.PutUint16(msg[6:], unix.NLM_F_REQUEST|flags)
	ne.PutUint32(msg[8:], seq)
	msg[unix.NLMSG_HDRLEN] = cmd
	msg[unix.NLMSG_HDRLEN+1] = 1 // version
	a := msg[unix.NLMSG_HDRLEN+genlHdrLen:]
	ne.PutUint16(a[0:], uint16(alen))
	ne.PutUint16(a[2:], attr)
	copy(a[unix.SizeofNlAttr:], val)
	return unix.Sendto(c.fd, msg, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK})
}

// recv reads one datagram, retrying on EINTR; errIdle on the receive timeout (or, with
// MSG_DONTWAIT in flags, when none is queued).
func (c *taskstatsConn) recv(flags int) ([]byte, error) {
	for {
		n, _, err := unix.Recvfrom(c.fd, c.buf, flags)
		switch {
		case err == unix.EINTR:
			continue
		case err == unix.EAGAIN:
			return nil, errIdle
		case err == unix.ENOBUFS:
			c.overrun.Add(1)
			return nil, errOverrun
		case err != nil:
			return nil, fmt.Errorf("taskstats: read: %w", err)
		case n == 0:
			return nil, errors.New("taskstats: socket closed")
		}
		return c.buf[:n], nil
	}
}

// read decodes the next exit message into out: blocking (up to the receive timeout),
// or with wait false, errIdle at once when none is queued.
func (c *taskstatsConn) read(out *[2]ExitRecord, wait bool) (int, error) {
	flags := 0
	if !wait {
		flags = unix.MSG_DONTWAIT
	}
	for {
		b, err := c.recv(flags)
		if err != nil {
			return 0, err
		}
		// An ack or error of the registration is not a record.
		if len(b) >= unix.NLMSG_HDRLEN && binary.NativeEndian.Uint16(b[4:]) != c.family {
			continue
		}
		c.msgs.Add(1)
		n, err := parseTaskstats(b, c.family, out)
		if err != nil {
			c.bad.Add(1)
			if n == 0 {
				continue
			}
		}
		return n, nil
	}
}

// close deregisters and closes the socket. Call it after the reader has returned.
func (c *taskstatsConn) close() {
	_ = c.send(c.family, taskstatsCmdGet, tsCmdAttrDeregMask, c.mask, 3, 0)
	unix.Close(c.fd)
}
