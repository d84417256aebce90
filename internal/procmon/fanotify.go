package procmon

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"strconv"
	"unsafe"

	"golang.org/x/sys/unix"
)

// This file is the thin layer over fanotify(7) that FileGuard stands on: opening groups,
// reading and decoding their events, answering permission events, and the few raw system
// calls on /proc paths that the event path makes without allocating.

// fanGroup is one fanotify group. Its descriptor is non-blocking and handed to the Go
// runtime's poller, so a Read blocks the calling goroutine only, and Close wakes it.
type fanGroup struct {
	f *os.File
}

// openFanGroup opens a fanotify group. Event descriptors are opened O_NONBLOCK so that the
// kernel never blocks in opening one (a FIFO opened for reading waits for a writer) and
// O_CLOEXEC so that no child of Vigil inherits one.
func openFanGroup(name string, flags uint) (*fanGroup, error) {
	fd, err := unix.FanotifyInit(flags|unix.FAN_CLOEXEC|unix.FAN_NONBLOCK,
		unix.O_RDONLY|unix.O_LARGEFILE|unix.O_CLOEXEC|unix.O_NONBLOCK)
	if err != nil {
		return nil, fmt.Errorf("fanotify_init (%s group): %w", name, err)
	}
	return &fanGroup{f: os.NewFile(uintptr(fd), "fanotify-"+name)}, nil
}

// mark adds or removes a mark. The object is named by an O_PATH descriptor, through its
// /proc/self/fd link: fanotify_mark refuses an O_PATH descriptor as dirfd with a NULL
// path (EBADF, kernel 6.18), and a path that is resolved again from the host's root
// could be redirected by a symbolic link inside the container.
func (g *fanGroup) mark(flags uint, mask uint64, objFD int) error {
	fd, err := g.sysfd()
	if err != nil {
		return err
	}
	return unix.FanotifyMark(fd, flags, mask, unix.AT_FDCWD, "/proc/self/fd/"+strconv.Itoa(objFD))
}

// sysfd returns the group's descriptor for a mark call. Marks are added from other
// goroutines than the reader's; the descriptor stays valid because Close waits for them
// (FileGuard.mu).
func (g *fanGroup) sysfd() (int, error) {
	rc, err := g.f.SyscallConn()
	if err != nil {
		return -1, err
	}
	fd := -1
	if err := rc.Control(func(s uintptr) { fd = int(s) }); err != nil {
		return -1, err
	}
	return fd, nil
}

// respond answers a permission event. It must be called exactly once for each
// permission event read, before the event's descriptor is closed (the kernel finds the
// event by that descriptor number, which a close would free for reuse).
func (g *fanGroup) respond(eventFD int32, allow bool) error {
	var b [8]byte
	binary.NativeEndian.PutUint32(b[0:4], uint32(eventFD))
	r := uint32(unix.FAN_DENY)
	if allow {
		r = unix.FAN_ALLOW
	}
	binary.NativeEndian.PutUint32(b[4:8], r)
	_, err := g.f.Write(b[:])
	return err
}

func (g *fanGroup) close() error { return g.f.Close() }

// fanEvent is one decoded event. It mirrors struct fanotify_event_metadata
// (include/uapi/linux/fanotify.h) and, for groups reporting directory file handles, its
// first FAN_EVENT_INFO_TYPE_DFID_NAME, DFID or FID record. Fsid, Handle and Name alias the
// read buffer.
type fanEvent struct {
	Mask   uint64
	FD     int32
	PID    int32
	Fsid   []byte // 8 bytes, __kernel_fsid_t
	Handle []byte // handle_type (4 bytes) then f_handle: the key of the marked directory
	Name   []byte // the entry's name in that directory, without its NUL padding
}

var (
	errFanShort   = errors.New("fanotify: truncated event")
	errFanVersion = errors.New("fanotify: unknown metadata version")
)

// nextFanEvent decodes the event at the start of buf and returns it with the number of
// bytes it occupies. The kernel wrote buf, but a decoder bug here would crash the guard
// that every exec in a container waits on, so every length is checked.
func nextFanEvent(buf []byte) (fanEvent, int, error) {
	var ev fanEvent
	if len(buf) < unix.FAN_EVENT_METADATA_LEN {
		return ev, 0, errFanShort
	}
	evLen := int(binary.NativeEndian.Uint32(buf[0:4]))
	if buf[4] != unix.FANOTIFY_METADATA_VERSION {
		return ev, 0, fmt.Errorf("%w %d", errFanVersion, buf[4])
	}
	metaLen := int(binary.NativeEndian.Uint16(buf[6:8]))
	if evLen < unix.FAN_EVENT_METADATA_LEN || evLen > len(buf) || metaLen < unix.FAN_EVENT_METADATA_LEN || metaLen > evLen {
		return ev, 0, fmt.Errorf("%w: event length %d, metadata length %d, %d bytes left", errFanShort, evLen, metaLen, len(buf))
	}
	ev.Mask = binary.NativeEndian.Uint64(buf[8:16])
	ev.FD = int32(binary.NativeEndian.Uint32(buf[16:20]))
	ev.PID = int32(binary.NativeEndian.Uint32(buf[20:24]))
	info := buf[metaLen:evLen]
	for len(info) >= 4 {
		typ := info[0]
		recLen := int(binary.NativeEndian.Uint16(info[2:4]))
		if recLen < 4 || recLen > len(info) {
			return ev, evLen, fmt.Errorf("%w: info record length %d, %d bytes left", errFanShort, recLen, len(info))
		}
		rec := info[:recLen]
		info = info[recLen:]
		switch typ {
		case unix.FAN_EVENT_INFO_TYPE_DFID_NAME, unix.FAN_EVENT_INFO_TYPE_DFID, unix.FAN_EVENT_INFO_TYPE_FID:
		default:
			continue // pidfd, error and range records are not asked for
		}
		if ev.Handle != nil {
			continue
		}
		// struct fanotify_event_info_fid: header (4), fsid (8), then struct file_handle:
		// handle_bytes (4), handle_type (4), f_handle[handle_bytes].
		if len(rec) < 4+8+8 {
			return ev, evLen, fmt.Errorf("%w: file handle record of %d bytes", errFanShort, len(rec))
		}
		hBytes := int(binary.NativeEndian.Uint32(rec[12:16]))
		if hBytes > len(rec)-20 {
			return ev, evLen, fmt.Errorf("%w: file handle of %d bytes in a record of %d", errFanShort, hBytes, len(rec))
		}
		ev.Fsid = rec[4:12]
		ev.Handle = rec[16 : 20+hBytes]
		if typ == unix.FAN_EVENT_INFO_TYPE_DFID_NAME {
			name := rec[20+hBytes:]
			for i, c := range name {
				if c == 0 {
					name = name[:i]
					break
				}
			}
			ev.Name = name
		}
	}
	return ev, evLen, nil
}

// procScratch builds NUL-terminated /proc paths and holds the output of readlink, so that
// the per-event system calls allocate nothing. One per goroutine.
type procScratch struct {
	path [64]byte
	link [unix.PathMax]byte
}

// pathOf builds "/proc/<a>/<b...>" ("self" when pid is 0), NUL-terminated, and returns a
// pointer to it.
func (s *procScratch) pathOf(pid int, num int, suffix string) *byte {
	b := append(s.path[:0], "/proc/"...)
	if pid == 0 {
		b = append(b, "self"...)
	} else {
		b = strconv.AppendInt(b, int64(pid), 10)
	}
	b = append(b, suffix...)
	if num >= 0 {
		b = strconv.AppendInt(b, int64(num), 10)
	}
	b = append(b, 0)
	return &b[0]
}

// readlink reads the link at the path built by pathOf. The result aliases the scratch.
func (s *procScratch) readlink(p *byte) ([]byte, error) {
	n, _, errno := unix.Syscall6(unix.SYS_READLINKAT, uintptr(atFDCWD), uintptr(unsafe.Pointer(p)),
		uintptr(unsafe.Pointer(&s.link[0])), uintptr(len(s.link)), 0, 0)
	if errno != 0 {
		return nil, errno
	}
	return s.link[:n], nil
}

// fdPath is the path the kernel gives for an event descriptor: d_path from the root of
// the mount namespace the file was reached in. For a file reached inside a container it
// is the path inside the container; reached through the host's view of the container's
// root (/var/lib/docker/overlay2/<id>/merged), it is the host path.
func (s *procScratch) fdPath(fd int32) ([]byte, error) {
	return s.readlink(s.pathOf(0, int(fd), "/fd/"))
}

// pidNS returns the inode of the PID namespace of process pid.
func (s *procScratch) pidNS(pid int32) (uint64, error) {
	var st unix.Stat_t
	p := s.pathOf(int(pid), -1, "/ns/pid")
	_, _, errno := unix.Syscall6(unix.SYS_NEWFSTATAT, uintptr(atFDCWD), uintptr(unsafe.Pointer(p)),
		uintptr(unsafe.Pointer(&st)), 0, 0, 0)
	if errno != 0 {
		return 0, errno
	}
	return st.Ino, nil
}

var emptyPath = [1]byte{0}

// atFDCWD is AT_FDCWD as a variable: a negative constant cannot convert to uintptr.
var atFDCWD = unix.AT_FDCWD

// fileIdentity returns the device and mount ID of an open file: the device names a
// container's own overlay filesystem, the mount ID one of its other mounts.
func fileIdentity(fd int32) (dev uint64, mntID uint64, err error) {
	var stx unix.Statx_t
	_, _, errno := unix.Syscall6(unix.SYS_STATX, uintptr(fd), uintptr(unsafe.Pointer(&emptyPath[0])),
		uintptr(unix.AT_EMPTY_PATH), uintptr(unix.STATX_MNT_ID), uintptr(unsafe.Pointer(&stx)), 0)
	if errno != 0 {
		return 0, 0, errno
	}
	dev = unix.Mkdev(stx.Dev_major, stx.Dev_minor)
	if stx.Mask&unix.STATX_MNT_ID != 0 {
		mntID = stx.Mnt_id
	}
	return dev, mntID, nil
}
