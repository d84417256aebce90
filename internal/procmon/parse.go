package procmon

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"net/netip"
	"strconv"
)

// Parsers of files the detector reads. Each takes untrusted input (a container's
// /etc/group is the container's to write) and never panics.

// userDB is what /etc/passwd and /etc/group say about who may become root through
// su or sudo.
type userDB struct {
	names   map[int][]string // uid → user names (several names may share a uid)
	primary map[int]int      // uid → primary gid
	admins  map[string]bool  // user names listed in an admin group
	adminGs map[int]bool     // gids of the admin groups
}

// adminGroups are the groups whose members may use su and sudo on the distributions
// Vigil knows: Debian and Ubuntu (sudo, admin), Red Hat, Alpine and Arch (wheel), and
// root's own group. sudoers files are not read: a rule there for a user outside these
// groups is not seen, and that user's sudo is reported.
var adminGroups = map[string]bool{"sudo": true, "wheel": true, "admin": true, "root": true}

// parseUserDB reads /etc/passwd and /etc/group. Lines that do not parse are skipped: a
// file that is not what it should be gives no permission.
func parseUserDB(passwd, group []byte) *userDB {
	db := &userDB{names: map[int][]string{}, primary: map[int]int{}, admins: map[string]bool{}, adminGs: map[int]bool{}}
	forLines(passwd, func(line []byte) {
		f := bytes.Split(line, []byte(":"))
		if len(f) < 4 || len(f[0]) == 0 {
			return
		}
		uid, err1 := strconv.Atoi(string(f[2]))
		gid, err2 := strconv.Atoi(string(f[3]))
		if err1 != nil || err2 != nil || uid < 0 || gid < 0 {
			return
		}
		if len(db.names[uid]) < 8 {
			db.names[uid] = append(db.names[uid], string(f[0]))
		}
		if _, ok := db.primary[uid]; !ok {
			db.primary[uid] = gid
		}
	})
	forLines(group, func(line []byte) {
		f := bytes.Split(line, []byte(":"))
		if len(f) < 4 || !adminGroups[string(f[0])] {
			return
		}
		if gid, err := strconv.Atoi(string(f[2])); err == nil && gid >= 0 {
			db.adminGs[gid] = true
		}
		for _, m := range bytes.Split(f[3], []byte(",")) {
			if m = bytes.TrimSpace(m); len(m) > 0 {
				db.admins[string(m)] = true
			}
		}
	})
	return db
}

// permitted reports whether uid may become root through su or sudo: root itself, or a
// user whose primary group, or one of whose names' memberships, is an admin group.
func (db *userDB) permitted(uid int) bool {
	if uid == 0 {
		return true
	}
	if gid, ok := db.primary[uid]; ok && db.adminGs[gid] {
		return true
	}
	for _, n := range db.names[uid] {
		if db.admins[n] {
			return true
		}
	}
	return false
}

func forLines(b []byte, fn func([]byte)) {
	for len(b) > 0 {
		line := b
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			line, b = b[:i], b[i+1:]
		} else {
			b = nil
		}
		line = bytes.TrimSpace(line)
		if len(line) == 0 || line[0] == '#' {
			continue
		}
		fn(line)
	}
}

// inetSocket is a TCP or UDP socket of /proc/PID/net/{tcp,tcp6,udp,udp6}.
type inetSocket struct {
	Local, Remote netip.AddrPort
	State         uint8
}

// parseNetSockets finds the sockets with the wanted inodes in a /proc/net/tcp-style
// table ("sl local_address rem_address st ... inode ..."). ipv6 says whether addresses
// are 32 hex digits (four 32-bit words in host order) rather than 8.
func parseNetSockets(b []byte, ipv6 bool, want map[uint64]bool, into map[uint64]inetSocket) error {
	first := true
	var err error
	forLines(b, func(line []byte) {
		if first {
			first = false // the header
			return
		}
		if err != nil {
			return
		}
		f := bytes.Fields(line)
		if len(f) < 10 {
			err = fmt.Errorf("socket table line has %d fields, want at least 10", len(f))
			return
		}
		ino, ok := parseUint(f[9])
		if !ok {
			err = fmt.Errorf("socket table: inode %q is not a number", f[9])
			return
		}
		if !want[ino] {
			return
		}
		local, ok1 := parseHexAddrPort(f[1], ipv6)
		remote, ok2 := parseHexAddrPort(f[2], ipv6)
		st, err2 := strconv.ParseUint(string(f[3]), 16, 8)
		if !ok1 || !ok2 || err2 != nil {
			err = fmt.Errorf("socket table: malformed line for inode %d", ino)
			return
		}
		into[ino] = inetSocket{Local: local, Remote: remote, State: uint8(st)}
	})
	return err
}

// parseHexAddrPort parses "0100007F:0050" (IPv4) or 32 hex digits and a port (IPv6).
func parseHexAddrPort(b []byte, ipv6 bool) (netip.AddrPort, bool) {
	i := bytes.IndexByte(b, ':')
	if i < 0 {
		return netip.AddrPort{}, false
	}
	port, err := strconv.ParseUint(string(b[i+1:]), 16, 16)
	if err != nil {
		return netip.AddrPort{}, false
	}
	h := b[:i]
	var raw [16]byte
	n := 4
	if ipv6 {
		n = 16
	}
	if len(h) != 2*n {
		return netip.AddrPort{}, false
	}
	if _, err := hex.Decode(raw[:n], h); err != nil {
		return netip.AddrPort{}, false
	}
	// Each 32-bit word is in the kernel's byte order.
	var out [16]byte
	for w := 0; w < n/4; w++ {
		binary.BigEndian.PutUint32(out[4*w:], binary.NativeEndian.Uint32(raw[4*w:]))
	}
	var a netip.Addr
	if ipv6 {
		a = netip.AddrFrom16(out).Unmap()
	} else {
		a = netip.AddrFrom4([4]byte(out[:4]))
	}
	return netip.AddrPortFrom(a, uint16(port)), true
}

// rootUpperDir finds the upper (writable) directory of the root mount in a
// /proc/PID/mountinfo: the "upperdir=" option of an overlay mounted on "/". It returns
// "" when the root is not an overlay.
func rootUpperDir(b []byte) string {
	var out string
	forLines(b, func(line []byte) {
		if out != "" {
			return
		}
		sep := bytes.Index(line, []byte(" - "))
		if sep < 0 {
			return
		}
		pre, post := bytes.Fields(line[:sep]), bytes.Fields(line[sep+3:])
		// 36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue
		if len(pre) < 5 || string(pre[4]) != "/" || len(post) < 3 || string(post[0]) != "overlay" {
			return
		}
		for _, opt := range bytes.Split(post[2], []byte(",")) {
			if v, ok := bytes.CutPrefix(opt, []byte("upperdir=")); ok {
				out = unescapeMount(v)
			}
		}
	})
	return out
}

// unescapeMount undoes mountinfo's octal escapes (\040 for a space).
func unescapeMount(b []byte) string {
	if bytes.IndexByte(b, '\\') < 0 {
		return string(b)
	}
	out := make([]byte, 0, len(b))
	for i := 0; i < len(b); i++ {
		if b[i] == '\\' && i+3 < len(b) {
			if v, err := strconv.ParseUint(string(b[i+1:i+4]), 8, 8); err == nil {
				out = append(out, byte(v))
				i += 3
				continue
			}
		}
		out = append(out, b[i])
	}
	return string(out)
}
