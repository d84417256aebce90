package procmon

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"runtime"
	"sync"
	"syscall"
	"time"

	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// The sock_diag side: a NETLINK_INET_DIAG socket per namespace, made inside it, and the
// kernel's own demultiplexing asked through it.

// sockDiag answers sock_diag queries inside one network namespace.
type sockDiag interface {
	// query returns the socket the kernel finds for q, errNoSocket when there is none.
	query(q diagQuery) (diagSocket, error)
	close() error
}

var (
	errNoSocket   = errors.New("no such socket")
	errDiagClosed = errors.New("sock_diag socket closed")
	errNetNSGone  = errors.New("network namespace is gone")
)

type diagConn struct {
	diag    sockDiag
	lastUse time.Time
}

// findSocket asks the kernel for the socket of the flow. fallback says that the answer is
// the listening socket because no connected socket with an owner matched.
func (s *SocketOwners) findSocket(ns NetNSRef, inode uint64, proto uint8, local, remote netip.AddrPort) (sk diagSocket, fallback bool, err error) {
	for attempt := 0; ; attempt++ {
		var d sockDiag
		if d, err = s.diag(ns, inode); err != nil {
			return diagSocket{}, false, err
		}
		sk, fallback, err = resolveSocket(d, proto, local, remote)
		if !errors.Is(err, errDiagClosed) || attempt > 0 {
			return sk, fallback, err
		}
		// Closed under us for being idle or the least recently used: open a new one.
	}
}

// resolveSocket is the kernel's own demultiplexing, asked twice at most. The exact query
// already falls back to listeners and unconnected UDP sockets when nothing in the
// established table matches; the second query covers a TCP flow whose connected socket
// exists but has no owner yet (SYN_RECV, or established and waiting in the accept queue:
// inode 0), where the listener's owner is the one that will accept it.
func resolveSocket(d sockDiag, proto uint8, local, remote netip.AddrPort) (diagSocket, bool, error) {
	sk, err := d.query(diagQuery{proto: proto, local: local, remote: remote})
	if err == nil && sk.inode != 0 && sk.matches(proto, local, remote) {
		return sk, sk.listening(proto), nil
	}
	if err != nil && !errors.Is(err, errNoSocket) {
		return diagSocket{}, false, err
	}
	if proto != protoTCP {
		return diagSocket{}, false, errNoSocket
	}
	unspecified := netip.IPv4Unspecified()
	if local.Addr().Is6() {
		unspecified = netip.IPv6Unspecified()
	}
	sk, err = d.query(diagQuery{proto: proto, local: local, remote: netip.AddrPortFrom(unspecified, 0)})
	if err != nil {
		return diagSocket{}, false, err
	}
	if sk.inode == 0 || sk.state != tcpListen || sk.local.Port() != local.Port() {
		return diagSocket{}, false, errNoSocket
	}
	return sk, true, nil
}

// diag returns the sock_diag socket of the namespace, opening it when needed.
func (s *SocketOwners) diag(ns NetNSRef, inode uint64) (sockDiag, error) {
	now := time.Now()
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, errDiagClosed
	}
	if c, ok := s.conns[inode]; ok {
		c.lastUse = now
		var idle []sockDiag
		if now.After(s.nextPrune) {
			idle = s.pruneConnsLocked(now)
		}
		s.mu.Unlock()
		closeAll(idle)
		return c.diag, nil
	}
	s.mu.Unlock()

	d, err := s.open(ns, inode)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		d.close()
		return nil, errDiagClosed
	}
	if c, ok := s.conns[inode]; ok { // opened concurrently
		c.lastUse = now
		s.mu.Unlock()
		d.close()
		return c.diag, nil
	}
	s.conns[inode] = &diagConn{diag: d, lastUse: now}
	idle := s.pruneConnsLocked(now)
	s.mu.Unlock()
	closeAll(idle)
	return d, nil
}

// pruneConnsLocked removes the sockets idle for too long and, beyond maxConns, the least
// recently used ones, and returns them for closing outside the lock.
func (s *SocketOwners) pruneConnsLocked(now time.Time) []sockDiag {
	s.nextPrune = now.Add(s.lim.connIdle / 2)
	var out []sockDiag
	for ino, c := range s.conns {
		if now.Sub(c.lastUse) > s.lim.connIdle {
			out = append(out, c.diag)
			delete(s.conns, ino)
		}
	}
	for len(s.conns) > s.lim.maxConns {
		var oldest uint64
		var at time.Time
		for ino, c := range s.conns {
			if at.IsZero() || c.lastUse.Before(at) {
				oldest, at = ino, c.lastUse
			}
		}
		out = append(out, s.conns[oldest].diag)
		delete(s.conns, oldest)
	}
	return out
}

func closeAll(ds []sockDiag) {
	for _, d := range ds {
		d.close()
	}
}

// diagQuery is one exact sock_diag request.
type diagQuery struct {
	proto         uint8
	local, remote netip.AddrPort
}

// diagSocket is what the kernel says of a socket; it mirrors struct inet_diag_msg
// (include/uapi/linux/inet_diag.h), with the addresses as the socket sees them.
type diagSocket struct {
	family        uint8
	state         uint8
	local, remote netip.AddrPort
	uid           uint32
	inode         uint32
	cookie        [2]uint32 // the kernel's id of the socket, for a request that must hit only it
}

// TCP states (include/net/tcp_states.h).
const tcpListen = 10

// matches says whether the kernel's answer is a socket for the flow: bound to local's
// port and, unless it is a listener or an unconnected UDP socket, connected to remote.
// The kernel's lookup guarantees it; this guards against answers to a stale request.
func (sk diagSocket) matches(proto uint8, local, remote netip.AddrPort) bool {
	if sk.local.Port() != local.Port() {
		return false
	}
	if sk.listening(proto) {
		return true
	}
	return sk.remote.Port() == remote.Port() && sk.remote.Addr().Unmap() == remote.Addr()
}

// listening says whether the socket takes packets from any peer.
func (sk diagSocket) listening(proto uint8) bool {
	if proto == protoTCP {
		return sk.state == tcpListen
	}
	return sk.remote.Port() == 0
}

// Layout of a request (struct nlmsghdr then struct inet_diag_req_v2) and of the part of
// a reply that is read (struct inet_diag_msg after the nlmsghdr).
const (
	nlmsgHdrLen      = unix.SizeofNlMsghdr // 16
	diagReqLen       = 56
	diagRequestLen   = nlmsgHdrLen + diagReqLen
	diagMsgLen       = 72
	sockDiagByFamily = 20 // SOCK_DIAG_BY_FAMILY
	diagNoCookie     = ^uint32(0)
)

// encodeDiagRequest writes an exact (not dump) request for q into b, which must hold
// diagRequestLen bytes. Ports and addresses are in network order, the rest in host order.
//
// For TCP the kernel reads id.src as the socket's local end. For UDP it reads them the
// other way round ("src and dst are swapped for historical reasons", net/ipv4/udp_diag.c):
// id.src is the peer, the sender of the packet being demultiplexed.
func encodeDiagRequest(b []byte, q diagQuery, seq uint32) {
	clear(b[:diagRequestLen])
	ne := binary.NativeEndian
	ne.PutUint32(b[0:], diagRequestLen)
	ne.PutUint16(b[4:], sockDiagByFamily)
	ne.PutUint16(b[6:], unix.NLM_F_REQUEST)
	ne.PutUint32(b[8:], seq)
	r := b[nlmsgHdrLen:]
	r[0] = unix.AF_INET
	if q.local.Addr().Is6() {
		r[0] = unix.AF_INET6
	}
	r[1] = q.proto
	ne.PutUint32(r[4:], ^uint32(0)) // every state
	src, dst := q.local, q.remote
	if q.proto == protoUDP {
		src, dst = dst, src
	}
	binary.BigEndian.PutUint16(r[8:], src.Port())
	binary.BigEndian.PutUint16(r[10:], dst.Port())
	putAddr(r[12:28], src.Addr())
	putAddr(r[28:44], dst.Addr())
	// r[44:48] interface: any
	ne.PutUint32(r[48:], diagNoCookie)
	ne.PutUint32(r[52:], diagNoCookie)
}

func putAddr(b []byte, a netip.Addr) {
	if a.Is4() {
		v := a.As4()
		copy(b, v[:])
		return
	}
	v := a.As16()
	copy(b, v[:])
}

// parseDiagReply reads the answer to request seq from the messages in b. done is false
// when b holds nothing for seq (an answer to an earlier request that timed out), so the
// caller reads again.
func parseDiagReply(b []byte, seq uint32) (sk diagSocket, done bool, err error) {
	ne := binary.NativeEndian
	for len(b) >= nlmsgHdrLen {
		l := int(ne.Uint32(b[0:]))
		if l < nlmsgHdrLen || l > len(b) {
			return diagSocket{}, true, fmt.Errorf("malformed netlink message (length %d of %d)", l, len(b))
		}
		typ, mseq := ne.Uint16(b[4:]), ne.Uint32(b[8:])
		body := b[nlmsgHdrLen:l]
		if al := (l + unix.NLMSG_ALIGNTO - 1) &^ (unix.NLMSG_ALIGNTO - 1); al < len(b) {
			b = b[al:]
		} else {
			b = nil
		}
		if mseq != seq {
			continue
		}
		switch typ {
		case unix.NLMSG_ERROR:
			if len(body) < 4 {
				return diagSocket{}, true, errors.New("short netlink error message")
			}
			errno := -int32(ne.Uint32(body))
			switch {
			case errno == 0: // an acknowledgement
				continue
			case syscall.Errno(errno) == unix.ENOENT:
				return diagSocket{}, true, errNoSocket
			default:
				return diagSocket{}, true, syscall.Errno(errno)
			}
		case unix.NLMSG_DONE:
			return diagSocket{}, true, errNoSocket
		case sockDiagByFamily:
			sk, err := parseDiagMsg(body)
			return sk, true, err
		}
	}
	return diagSocket{}, false, nil
}

// parseDiagMsg parses struct inet_diag_msg.
func parseDiagMsg(b []byte) (diagSocket, error) {
	if len(b) < diagMsgLen {
		return diagSocket{}, fmt.Errorf("short inet_diag_msg (%d bytes)", len(b))
	}
	ne := binary.NativeEndian
	sk := diagSocket{family: b[0], state: b[1]}
	sport, dport := binary.BigEndian.Uint16(b[4:]), binary.BigEndian.Uint16(b[6:])
	var src, dst netip.Addr
	switch sk.family {
	case unix.AF_INET:
		src, dst = netip.AddrFrom4([4]byte(b[8:12])), netip.AddrFrom4([4]byte(b[24:28]))
	case unix.AF_INET6:
		src, dst = netip.AddrFrom16([16]byte(b[8:24])), netip.AddrFrom16([16]byte(b[24:40]))
	default:
		return diagSocket{}, fmt.Errorf("inet_diag_msg of family %d", sk.family)
	}
	sk.local, sk.remote = netip.AddrPortFrom(src, sport), netip.AddrPortFrom(dst, dport)
	sk.cookie = [2]uint32{ne.Uint32(b[44:]), ne.Uint32(b[48:])}
	sk.uid = ne.Uint32(b[64:])
	sk.inode = ne.Uint32(b[68:])
	return sk, nil
}

// netlinkDiag is a NETLINK_INET_DIAG socket created inside one network namespace. The
// kernel answers an exact request while sending it, so the socket blocks (with a
// timeout as a guard) rather than going through the poller. Queries are serialised.
type netlinkDiag struct {
	mu  sync.Mutex
	fd  int
	seq uint32
	req [diagRequestLen]byte
	buf [8192]byte
}

// diagTimeout bounds a sock_diag round trip, which the kernel answers at once.
const diagTimeout = time.Second

// openNetlinkDiag opens a sock_diag socket in the namespace ns, whose inode is inode;
// self is the inode of this process's own namespace, where no setns is needed.
func openNetlinkDiag(ns NetNSRef, inode, self uint64) (sockDiag, error) {
	var fd int
	if inode == self && self != 0 {
		var err error
		if fd, err = unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_INET_DIAG); err != nil {
			return nil, fmt.Errorf("sock_diag socket: %w", err)
		}
	} else {
		h, err := netns.GetFromPath(ns.Path)
		if err != nil {
			if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ESRCH) {
				return nil, fmt.Errorf("open %s: %w", ns.Path, errNetNSGone)
			}
			return nil, fmt.Errorf("open %s: %w", ns.Path, err)
		}
		defer h.Close()
		var st unix.Stat_t
		if err := unix.Fstat(int(h), &st); err != nil {
			return nil, fmt.Errorf("stat %s: %w", ns.Path, err)
		}
		if st.Ino != inode {
			// The process the path named has gone and its pid been reused.
			return nil, fmt.Errorf("%s is namespace %d, not %d: %w", ns.Path, st.Ino, inode, errNetNSGone)
		}
		if fd, err = socketInNetNS(h); err != nil {
			return nil, fmt.Errorf("sock_diag socket in %s: %w", ns.Path, err)
		}
	}
	tv := unix.NsecToTimeval(diagTimeout.Nanoseconds())
	for _, opt := range []int{unix.SO_RCVTIMEO, unix.SO_SNDTIMEO} {
		if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, opt, &tv); err != nil {
			unix.Close(fd)
			return nil, fmt.Errorf("sock_diag socket timeout: %w", err)
		}
	}
	return &netlinkDiag{fd: fd}, nil
}

// socketInNetNS creates a NETLINK_INET_DIAG socket in the namespace ns. A socket stays in
// the namespace it was made in, so only its creation needs setns: that happens on a
// locked thread of a goroutine of its own. If the thread cannot return to its own
// namespace, the goroutine exits with the thread still locked, and the runtime destroys
// the thread rather than let other goroutines run in the wrong namespace.
func socketInNetNS(ns netns.NsHandle) (int, error) {
	type result struct {
		fd  int
		err error
	}
	done := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			done <- result{-1, fmt.Errorf("own network namespace: %w", err)}
			return
		}
		defer orig.Close()
		if err := netns.Set(ns); err != nil {
			runtime.UnlockOSThread()
			done <- result{-1, fmt.Errorf("setns: %w", err)}
			return
		}
		fd, serr := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_INET_DIAG)
		if err := netns.Set(orig); err != nil {
			if serr == nil {
				unix.Close(fd)
			}
			done <- result{-1, fmt.Errorf("return to own network namespace: %w", err)}
			return // still locked: the thread ends with the goroutine
		}
		runtime.UnlockOSThread()
		done <- result{fd, serr}
	}()
	r := <-done
	return r.fd, r.err
}

func (d *netlinkDiag) query(q diagQuery) (diagSocket, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.fd < 0 {
		return diagSocket{}, errDiagClosed
	}
	d.seq++
	encodeDiagRequest(d.req[:], q, d.seq)
	for {
		_, err := unix.Write(d.fd, d.req[:])
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return diagSocket{}, fmt.Errorf("send sock_diag request: %w", err)
		}
		break
	}
	for {
		// A receive timeout makes recv fail with EINTR on any signal, SA_RESTART or not,
		// and the Go runtime signals threads to preempt them.
		n, err := unix.Read(d.fd, d.buf[:])
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return diagSocket{}, fmt.Errorf("receive sock_diag reply: %w", err)
		}
		sk, done, err := parseDiagReply(d.buf[:n], d.seq)
		if done {
			return sk, err
		}
	}
}

func (d *netlinkDiag) close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.fd < 0 {
		return nil
	}
	err := unix.Close(d.fd)
	d.fd = -1
	return err
}
