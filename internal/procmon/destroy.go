package procmon

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"syscall"

	"golang.org/x/sys/unix"
)

// sockDestroy is SOCK_DESTROY (include/uapi/linux/sock_diag.h).
const sockDestroy = 21

// ErrNoSuchSocket is returned, wrapped, by DestroySocket when no socket matches.
var ErrNoSuchSocket = errors.New("no such socket")

// DestroySocket aborts the connected TCP socket from local to remote in the network
// namespace ns, as `ss -K` does: the kernel sends the peer a reset and the owner's next
// call fails with ECONNABORTED. It needs CAP_NET_ADMIN and a kernel built with
// CONFIG_INET_DIAG_DESTROY; a kernel without it answers EOPNOTSUPP.
func DestroySocket(ns NetNSRef, local, remote netip.AddrPort) error {
	sd, err := openNetlinkDiag(ns, ns.Inode, 0)
	if err != nil {
		return err
	}
	d := sd.(*netlinkDiag)
	defer d.close()
	// Find the connected socket first: for a connection that no longer exists, the
	// kernel's exact lookup falls back to the listener, which must never be destroyed.
	// The destroy request then names the socket by its cookie, so that it hits only it.
	q := diagQuery{proto: protoTCP, local: local, remote: remote}
	sk, err := d.query(q)
	if errors.Is(err, errNoSocket) || err == nil && (sk.listening(protoTCP) || !sk.matches(protoTCP, local, remote)) {
		return fmt.Errorf("%v -> %v in %s: %w", local, remote, ns.Path, ErrNoSuchSocket)
	}
	if err != nil {
		return fmt.Errorf("find socket %v -> %v in %s: %w", local, remote, ns.Path, err)
	}
	d.seq++
	encodeDiagRequest(d.req[:], q, d.seq)
	ne := binary.NativeEndian
	ne.PutUint16(d.req[4:], sockDestroy)
	ne.PutUint16(d.req[6:], unix.NLM_F_REQUEST|unix.NLM_F_ACK)
	ne.PutUint32(d.req[nlmsgHdrLen+48:], sk.cookie[0])
	ne.PutUint32(d.req[nlmsgHdrLen+52:], sk.cookie[1])
	for {
		if _, err = unix.Write(d.fd, d.req[:]); err != unix.EINTR {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("send SOCK_DESTROY in %s: %w", ns.Path, err)
	}
	for {
		n, err := unix.Read(d.fd, d.buf[:])
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return fmt.Errorf("receive SOCK_DESTROY answer in %s: %w", ns.Path, err)
		}
		errno, ok := ackErrno(d.buf[:n], d.seq)
		if !ok {
			continue
		}
		switch {
		case errno == 0:
			return nil
		case errno == unix.ENOENT:
			return fmt.Errorf("%v -> %v in %s: %w", local, remote, ns.Path, ErrNoSuchSocket)
		default:
			return fmt.Errorf("destroy socket %v -> %v in %s: %w", local, remote, ns.Path, errno)
		}
	}
}

// ackErrno finds the acknowledgement (NLMSG_ERROR) of request seq in b.
func ackErrno(b []byte, seq uint32) (syscall.Errno, bool) {
	ne := binary.NativeEndian
	for len(b) >= nlmsgHdrLen {
		l := int(ne.Uint32(b[0:]))
		if l < nlmsgHdrLen || l > len(b) {
			return 0, false
		}
		if ne.Uint16(b[4:]) == unix.NLMSG_ERROR && ne.Uint32(b[8:]) == seq && l >= nlmsgHdrLen+4 {
			return syscall.Errno(-int32(ne.Uint32(b[nlmsgHdrLen:]))), true
		}
		al := (l + unix.NLMSG_ALIGNTO - 1) &^ (unix.NLMSG_ALIGNTO - 1)
		if al >= len(b) {
			break
		}
		b = b[al:]
	}
	return 0, false
}
