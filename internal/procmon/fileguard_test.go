package procmon

import (
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestSensitiveClass(t *testing.T) {
	cases := map[string]string{
		"/etc/passwd":                          FileClassAccounts,
		"/etc/shadow":                          FileClassAccounts,
		"/etc/group":                           FileClassAccounts,
		"/etc/gshadow":                         FileClassAccounts,
		"/etc/sudoers":                         FileClassSudoers,
		"/etc/sudoers.d/90-cloud":              FileClassSudoers,
		"/root/.ssh/authorized_keys":           FileClassSSH,
		"/root/.ssh/id_ed25519":                FileClassSSH,
		"/home/bob/.ssh/authorized_keys":       FileClassSSH,
		"/etc/ssh/sshd_config":                 FileClassSSH,
		"/var/lib/dpkg/status":                 FileClassPackageDB,
		"/var/lib/dpkg/info/bash.list":         FileClassPackageDB,
		"/lib/apk/db/installed":                FileClassPackageDB,
		"/var/lib/rpm/Packages":                FileClassPackageDB,
		"/usr/lib/sysimage/rpm/rpmdb.sqlite":   FileClassPackageDB,
		"/bin/sh":                              FileClassBinary,
		"/usr/bin/nc":                          FileClassBinary,
		"/usr/local/bin/tool":                  FileClassBinary,
		"/usr/local/sbin/x":                    FileClassBinary,
		"/usr/lib/x86_64-linux-gnu/libc.so.6":  FileClassBinary,
		"/lib64/ld-linux-x86-64.so.2":          FileClassBinary,
		"/usr/bin/sub/dir/x":                   FileClassBinary,
		"/etc/passwd-":                         "",
		"/etc/passwd.new":                      "",
		"/etc/passwd/x":                        "",
		"/etc/hosts":                           "",
		"/etc//passwd":                         "",
		"/etc/./passwd":                        "",
		"/etc/x/../passwd":                     "",
		"etc/passwd":                           "",
		"":                                     "",
		"/":                                    "",
		"/bin":                                 "",
		"/bin/":                                "",
		"/home/.ssh/authorized_keys":           "",
		"/home/bob/ssh/authorized_keys":        "",
		"/root/.ssh":                           "",
		"/usr/share/doc/bash/README":           "",
		"/tmp/passwd":                          "",
		"/var/lib/docker/overlay2/x/etc/passw": "",
	}
	for path, want := range cases {
		if got := sensitiveClass(path); got != want {
			t.Errorf("sensitiveClass(%q) = %q, want %q", path, got, want)
		}
	}
}

func TestMayHoldSensitive(t *testing.T) {
	cases := map[string]bool{
		"/": true, "/etc": true, "/etc/sudoers.d": true, "/home": true, "/home/bob": true,
		"/root/.ssh": true, "/usr": true, "/usr/lib": true, "/var/lib": true, "/etc/passwd": true,
		"/etc/hosts": false, "/etc/resolv.conf": false, "/dev": false, "/dev/shm": false,
		"/data": false, "/tmp": false, "/var/log": false, "/sbin/docker-init": true,
	}
	for mp, want := range cases {
		if got := mayHoldSensitive(mp); got != want {
			t.Errorf("mayHoldSensitive(%q) = %v, want %v", mp, got, want)
		}
	}
}

func TestIsWatchedDir(t *testing.T) {
	cases := map[string]bool{
		"/": true, "/etc": true, "/home": true, "/home/bob": true, "/home/bob/.ssh": true,
		"/root": true, "/root/.ssh": true, "/usr/local": true, "/usr/local/bin": true,
		"/var/lib/dpkg": true, "/lib/apk": true,
		"/tmp": false, "/home/bob/src": false, "/usr/share": false, "/var/log": false,
		"/var/lib/dpkg/info": false,
	}
	for dir, want := range cases {
		if got := isWatchedDir(dir); got != want {
			t.Errorf("isWatchedDir(%q) = %v, want %v", dir, got, want)
		}
	}
	// Parents come before their children, so that a listing finds what it expands.
	pos := map[string]int{}
	for i, p := range watchedDirPatterns {
		if _, dup := pos[p]; dup {
			t.Errorf("%s listed twice", p)
		}
		pos[p] = i
	}
	for p, i := range pos {
		if p == "/" {
			continue
		}
		parent := filepath.Dir(p)
		if j, ok := pos[parent]; !ok || j > i {
			t.Errorf("%s (at %d) has its parent %s at %d (present %v)", p, i, parent, j, ok)
		}
	}
}

func TestContainerPath(t *testing.T) {
	const merged = "/var/lib/docker/overlay2/2b9c/merged"
	cases := []struct {
		in, hostRoot, want string
		deleted            bool
	}{
		{"/bin/busybox", merged, "/bin/busybox", false},
		{merged + "/usr/bin/dropped", merged, "/usr/bin/dropped", false},
		{merged, merged, "/", false},
		{merged + "2/etc/passwd", merged, merged + "2/etc/passwd", false},
		{"/tmp/x (deleted)", merged, "/tmp/x", true},
		{merged + "/tmp/x (deleted)", merged, "/tmp/x", true},
		{"/etc/passwd", "", "/etc/passwd", false},
		{"/etc/passwd", "/", "/etc/passwd", false},
	}
	for _, c := range cases {
		got, deleted := containerPath([]byte(c.in), c.hostRoot)
		if string(got) != c.want || deleted != c.deleted {
			t.Errorf("containerPath(%q, %q) = %q, %v; want %q, %v", c.in, c.hostRoot, got, deleted, c.want, c.deleted)
		}
	}
}

// Lines as Docker 28 on Linux 6.18 writes them for a busybox container, and one with an
// escaped space.
const testMountinfo = `76 50 0:39 / / rw,relatime master:3 - overlay overlay rw,lowerdir=/var/lib/docker/overlay2/l/BHCD:/var/lib/docker/overlay2/l/MZMT,upperdir=/var/lib/docker/overlay2/2b9c/diff,workdir=/var/lib/docker/overlay2/2b9c/work
77 76 0:42 / /proc rw,nosuid,nodev,noexec,relatime - proc proc rw
78 76 0:43 / /dev rw,nosuid - tmpfs tmpfs rw,size=65536k,mode=755
93 76 254:0 /usr/bin/tini-static /sbin/docker-init ro,relatime - ext4 /dev/vda rw,discard
95 76 254:0 /var/lib/docker/containers/f0a6/hostname /etc/hostname rw,relatime - ext4 /dev/vda rw,discard
97 76 254:0 /srv/my\040data /data\040dir rw,relatime shared:5 master:1 - ext4 /dev/vda rw
`

func TestParseMountinfo(t *testing.T) {
	got, err := parseMountinfo("/proc/1/mountinfo", []byte(testMountinfo))
	if err != nil {
		t.Fatal(err)
	}
	want := []mountEntry{
		{ID: 76, Parent: 50, Major: 0, Minor: 39, Root: "/", MountPoint: "/", FSType: "overlay", Source: "overlay"},
		{ID: 77, Parent: 76, Major: 0, Minor: 42, Root: "/", MountPoint: "/proc", FSType: "proc", Source: "proc"},
		{ID: 78, Parent: 76, Major: 0, Minor: 43, Root: "/", MountPoint: "/dev", FSType: "tmpfs", Source: "tmpfs"},
		{ID: 93, Parent: 76, Major: 254, Minor: 0, Root: "/usr/bin/tini-static", MountPoint: "/sbin/docker-init", FSType: "ext4", Source: "/dev/vda"},
		{ID: 95, Parent: 76, Major: 254, Minor: 0, Root: "/var/lib/docker/containers/f0a6/hostname", MountPoint: "/etc/hostname", FSType: "ext4", Source: "/dev/vda"},
		{ID: 97, Parent: 76, Major: 254, Minor: 0, Root: "/srv/my data", MountPoint: "/data dir", FSType: "ext4", Source: "/dev/vda"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("parseMountinfo:\n got %+v\nwant %+v", got, want)
	}

	bad := []string{
		"76 50 0:39 / / rw\n",                           // no separator
		"x 50 0:39 / / rw - overlay overlay rw\n",       // ID
		"76 50 039 / / rw - overlay overlay rw\n",       // device
		"76 50 0:39 / rel rw - overlay overlay rw\n",    // relative mount point
		"76 50 0:39 / /a\\04 rw - overlay overlay rw\n", // truncated escape
		"76 50 0:39 / /a\\999 rw - overlay overlay rw\n",
		"76 50 0:39 / / rw -\n",
	}
	for _, line := range bad {
		_, err := parseMountinfo("/proc/7/mountinfo", []byte(testMountinfo+line))
		if err == nil || !strings.Contains(err.Error(), "/proc/7/mountinfo line 7") {
			t.Errorf("parseMountinfo(%q) error = %v, want one naming the file and line 7", line, err)
		}
	}
}

func TestHostRootOf(t *testing.T) {
	host, err := parseMountinfo("host", []byte(`22 1 254:0 / / rw - ext4 /dev/vda rw
410 22 0:39 / /var/lib/docker/overlay2/2b9c/merged rw,relatime - overlay overlay rw,lowerdir=a
411 22 0:40 / /var/lib/docker/overlay2/ffff/merged rw,relatime - overlay overlay rw,lowerdir=b
`))
	if err != nil {
		t.Fatal(err)
	}
	root := mountEntry{ID: 76, Major: 0, Minor: 39, Root: "/", MountPoint: "/", FSType: "overlay"}
	if got := hostRootOf(host, root); got != "/var/lib/docker/overlay2/2b9c/merged" {
		t.Errorf("hostRootOf = %q", got)
	}
	root.Minor = 77
	if got := hostRootOf(host, root); got != "" {
		t.Errorf("hostRootOf of an unknown device = %q, want none", got)
	}
}

// fanEventBytes builds an event as the kernel writes it (struct fanotify_event_metadata,
// then a struct fanotify_event_info_fid when handle is not nil).
func fanEventBytes(mask uint64, fd, pid int32, infoType byte, fsid, handle []byte, name string) []byte {
	var info []byte
	if handle != nil {
		rec := []byte{infoType, 0, 0, 0}
		rec = append(rec, fsid...)
		rec = binary.NativeEndian.AppendUint32(rec, uint32(len(handle)-4))
		rec = append(rec, handle...) // handle_type then f_handle
		if name != "" {
			rec = append(rec, name...)
			rec = append(rec, 0)
		}
		for len(rec)%4 != 0 {
			rec = append(rec, 0)
		}
		binary.NativeEndian.PutUint16(rec[2:4], uint16(len(rec)))
		info = rec
	}
	b := binary.NativeEndian.AppendUint32(nil, uint32(unix.FAN_EVENT_METADATA_LEN+len(info)))
	b = append(b, unix.FANOTIFY_METADATA_VERSION, 0)
	b = binary.NativeEndian.AppendUint16(b, unix.FAN_EVENT_METADATA_LEN)
	b = binary.NativeEndian.AppendUint64(b, mask)
	b = binary.NativeEndian.AppendUint32(b, uint32(fd))
	b = binary.NativeEndian.AppendUint32(b, uint32(pid))
	return append(b, info...)
}

func TestNextFanEvent(t *testing.T) {
	fsid := []byte{1, 2, 3, 4, 5, 6, 7, 8}
	handle := []byte{0xf8, 0, 0, 0, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff, 0x11, 0x22}
	buf := fanEventBytes(unix.FAN_OPEN_EXEC_PERM, 7, 1234, 0, nil, nil, "")
	buf = append(buf, fanEventBytes(unix.FAN_CREATE|unix.FAN_ONDIR, unix.FAN_NOFD, 99, unix.FAN_EVENT_INFO_TYPE_DFID_NAME, fsid, handle, "authorized_keys")...)

	ev, n, err := nextFanEvent(buf)
	if err != nil || n != unix.FAN_EVENT_METADATA_LEN || ev.Mask != unix.FAN_OPEN_EXEC_PERM || ev.FD != 7 || ev.PID != 1234 || ev.Handle != nil {
		t.Fatalf("first event = %+v, %d, %v", ev, n, err)
	}
	ev, m, err := nextFanEvent(buf[n:])
	if err != nil || n+m != len(buf) {
		t.Fatalf("second event: %d of %d bytes, %v", m, len(buf)-n, err)
	}
	if ev.FD != unix.FAN_NOFD || ev.PID != 99 || string(ev.Fsid) != string(fsid) || string(ev.Handle) != string(handle) || string(ev.Name) != "authorized_keys" {
		t.Errorf("second event = %+v", ev)
	}

	if _, _, err := nextFanEvent(buf[:10]); !errors.Is(err, errFanShort) {
		t.Errorf("truncated metadata: %v", err)
	}
	second := append([]byte(nil), buf[n:]...)
	if _, _, err := nextFanEvent(second[:len(second)-4]); !errors.Is(err, errFanShort) {
		t.Errorf("event longer than the buffer: %v", err)
	}
	bad := append([]byte(nil), second...)
	binary.NativeEndian.PutUint32(bad[unix.FAN_EVENT_METADATA_LEN+12:], 1000) // handle_bytes
	if _, _, err := nextFanEvent(bad); !errors.Is(err, errFanShort) {
		t.Errorf("handle longer than its record: %v", err)
	}
	bad = append([]byte(nil), buf[:n]...)
	bad[4] = 2
	if _, _, err := nextFanEvent(bad); !errors.Is(err, errFanVersion) {
		t.Errorf("version 2: %v", err)
	}
}

func FuzzNextFanEvent(f *testing.F) {
	f.Add(fanEventBytes(unix.FAN_CLOSE_WRITE, 3, 1, 0, nil, nil, ""))
	f.Add(fanEventBytes(unix.FAN_MOVED_TO, -1, 1, unix.FAN_EVENT_INFO_TYPE_DFID_NAME, make([]byte, 8), make([]byte, 12), "passwd"))
	f.Add(fanEventBytes(unix.FAN_ATTRIB, -1, 1, unix.FAN_EVENT_INFO_TYPE_FID, make([]byte, 8), make([]byte, 4), ""))
	f.Fuzz(func(t *testing.T, b []byte) {
		for len(b) > 0 {
			ev, n, err := nextFanEvent(b)
			if n < 0 || n > len(b) {
				t.Fatalf("size %d of %d bytes", n, len(b))
			}
			if err == nil && n == 0 {
				t.Fatal("no progress without an error")
			}
			_ = ev
			if n == 0 {
				return
			}
			b = b[n:]
		}
	})
}

func FuzzParseMountinfo(f *testing.F) {
	f.Add([]byte(testMountinfo))
	f.Add([]byte("1 0 0:1 / / rw - x y z\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		ms, err := parseMountinfo("fuzz", b)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "fuzz line ") {
				t.Fatalf("error does not name the file: %v", err)
			}
			return
		}
		for _, m := range ms {
			if !strings.HasPrefix(m.MountPoint, "/") {
				t.Fatalf("relative mount point %q accepted", m.MountPoint)
			}
		}
	})
}

func TestFileAggregator(t *testing.T) {
	a := newFileAggregator(time.Second, 2)
	t0 := time.Unix(1000, 0)
	k := aggKey{container: "c1", kind: FileEventWrite, class: FileClassBinary}
	if !a.observe(k, []byte("/usr/lib/a"), 10, t0) {
		t.Fatal("first event of a window not sent at once")
	}
	for i := range 20 {
		p := "/usr/lib/f" + string(rune('a'+i%10))
		if a.observe(k, []byte(p), 11+i, t0.Add(time.Duration(i)*time.Millisecond)) {
			t.Fatalf("event %d of a window sent at once", i)
		}
	}
	// Another container's and another kind's events open their own windows.
	if !a.observe(aggKey{container: "c2", kind: FileEventWrite, class: FileClassBinary}, []byte("/usr/lib/a"), 1, t0) {
		t.Error("another container's event aggregated")
	}
	if !a.observe(aggKey{container: "c1", kind: FileEventCreate, class: FileClassBinary}, []byte("/usr/lib/a"), 1, t0) {
		t.Error("another kind aggregated")
	}
	a.flush(t0.Add(500 * time.Millisecond))
	select {
	case ev := <-a.out:
		t.Fatalf("window flushed early: %+v", ev)
	default:
	}
	a.flush(t0.Add(time.Second))
	ev := <-a.out
	if !ev.Aggregated || ev.Count != 20 || ev.ContainerID != "c1" || ev.Kind != FileEventWrite || ev.Class != FileClassBinary ||
		ev.PID != 11 || len(ev.Paths) != aggSamplePaths || ev.Path != ev.Paths[0] {
		t.Errorf("aggregate = %+v", ev)
	}
	select {
	case ev := <-a.out:
		t.Errorf("a window with no extra event sent %+v", ev)
	default:
	}
	// After the window, the next event is sent at once again.
	if !a.observe(k, []byte("/usr/lib/z"), 10, t0.Add(1100*time.Millisecond)) {
		t.Error("first event after a window not sent at once")
	}
	// A full channel drops and counts.
	for range 3 {
		a.send(FileEvent{Kind: FileEventWrite})
	}
	if sent, dropped := a.counts(); sent != 3 || dropped != 1 {
		t.Errorf("sent %d, dropped %d; want 3 and 1", sent, dropped)
	}
	a.close()
	a.send(FileEvent{}) // after close: dropped silently, no panic
}

// The checks made for every event allocate nothing.
func BenchmarkFileGuardPathChecks(b *testing.B) {
	const merged = "/var/lib/docker/overlay2/2b9c/merged"
	paths := [][]byte{[]byte("/tmp/build/output.o"), []byte(merged + "/usr/lib/x86_64-linux-gnu/libz.so.1"), []byte("/etc/passwd")}
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		for _, p := range paths {
			cp, _ := containerPath(p, merged)
			if sensitiveClass(bytesView(cp)) != "" {
				n++
			}
		}
	}
	if n == 0 {
		b.Fatal("nothing matched")
	}
}

func BenchmarkNextFanEvent(b *testing.B) {
	buf := fanEventBytes(unix.FAN_MOVED_TO, -1, 1, unix.FAN_EVENT_INFO_TYPE_DFID_NAME, make([]byte, 8), make([]byte, 36), "authorized_keys")
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := nextFanEvent(buf); err != nil {
			b.Fatal(err)
		}
	}
}

// procScratch's calls allocate nothing: the per-event /proc reads.
func BenchmarkProcScratch(b *testing.B) {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	var sc procScratch
	pid := int32(os.Getpid())
	b.ReportAllocs()
	for b.Loop() {
		if _, err := sc.fdPath(int32(f.Fd())); err != nil {
			b.Fatal(err)
		}
		if _, err := sc.pidNS(pid); err != nil {
			b.Fatal(err)
		}
		if _, _, err := fileIdentity(int32(f.Fd())); err != nil {
			b.Fatal(err)
		}
	}
}

func TestIsELFInterpreter(t *testing.T) {
	cases := map[string]bool{
		"/lib64/ld-linux-x86-64.so.2":                    true,
		"/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2": true,
		"/lib/ld-musl-x86_64.so.1":                       true,
		"/lib64/ld64.so.2":                               true,
		"/lib/ld-linux-aarch64.so.1":                     true,
		"/bin/ld":                                        false,
		"/usr/bin/ld-wrapper":                            false,
		"/lib/libc.so.6":                                 false,
		"/bin/busybox":                                   false,
	}
	for p, want := range cases {
		if got := isELFInterpreter(p); got != want {
			t.Errorf("isELFInterpreter(%q) = %v, want %v", p, got, want)
		}
	}
}
