package procmon

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

const cid = "4c9f160d909cc672ae551467f2c1117c70cad68b292a8b60b801bf6cbac1c0d6"
const cid2 = "f0a63d7ce2f1ae7a73e60ad2c63d38ca2ef4d5fdc753ec21ee2e0e4185081113"

func TestContainerFromCgroup(t *testing.T) {
	for _, tc := range []struct{ name, in, want string }{
		{"v1 cgroupfs", "12:pids:/docker/" + cid + "\n11:memory:/docker/" + cid + "\n1:name=systemd:/docker/" + cid + "\n", cid},
		{"v1 systemd driver", "5:cpu,cpuacct:/system.slice/docker-" + cid + ".scope\n", cid},
		{"v2 systemd driver", "0::/system.slice/docker-" + cid + ".scope\n", cid},
		{"v2 cgroupfs", "0::/docker/" + cid + "\n", cid},
		{"v2 nested init cgroup", "0::/system.slice/docker-" + cid + ".scope/init\n", cid},
		{"docker in docker: the outer one", "0::/docker/" + cid + "/docker/" + cid2 + "\n", cid},
		{"kubernetes containerd", "0::/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod1234.slice/cri-containerd-" + cid + ".scope\n", cid},
		{"podman", "0::/machine.slice/libpod-" + cid + ".scope/container\n", cid},
		{"host v2", "0::/system.slice/sshd.service\n", ""},
		{"host v1 with a colon in the path", "1:name=systemd:/user.slice/a:b\n", ""},
		{"host root", "0::/\n", ""},
		{"short id is not an id", "0::/docker/4c9f160d909c\n", ""},
		{"upper-case is not an id", "0::/docker/" + strings.ToUpper(cid) + "\n", ""},
		{"garbage", "no colons here\n::\n", ""},
	} {
		if got := ContainerFromCgroup([]byte(tc.in)); got != tc.want {
			t.Errorf("%s: got %q, want %q", tc.name, got, tc.want)
		}
	}
}

func FuzzContainerFromCgroup(f *testing.F) {
	f.Add([]byte("0::/system.slice/docker-" + cid + ".scope\n"))
	f.Add([]byte("12:pids:/docker/" + cid))
	f.Fuzz(func(t *testing.T, b []byte) {
		if id := ContainerFromCgroup(b); id != "" && !isContainerID(id) {
			t.Fatalf("returned %q, not an ID", id)
		}
	})
}

func TestProfile(t *testing.T) {
	p := NewProfile([]ProfileEntry{{Exe: "/bin/busybox", Name: "httpd", UID: 0}, {Exe: "/usr/sbin/nginx (deleted)", Name: "nginx", UID: 101}})
	for _, tc := range []struct {
		exe, name string
		uid       int
		want      bool
	}{
		{"/bin/busybox", "httpd", 0, true},
		{"/bin/busybox", "sh", 0, false},     // same file, another applet
		{"/bin/busybox", "httpd", 33, false}, // another user
		{"/usr/sbin/nginx", "nginx", 101, true},
		{"/usr/sbin/nginx (deleted)", "nginx", 101, true},
		{"/tmp/nginx", "nginx", 101, false},
	} {
		if got := p.Allows(tc.exe, tc.name, tc.uid); got != tc.want {
			t.Errorf("Allows(%q, %q, %d) = %v, want %v", tc.exe, tc.name, tc.uid, got, tc.want)
		}
	}
	if !p.AllowsExe("/bin/busybox") || p.AllowsExe("/tmp/x") {
		t.Error("AllowsExe: want busybox allowed and /tmp/x refused")
	}
	if p.Add(ProfileEntry{Exe: "/bin/busybox", Name: "httpd"}) {
		t.Error("Add of a known entry reported new")
	}
	if !p.Add(ProfileEntry{Exe: "/bin/busybox", Name: "sh"}) || !p.Allows("/bin/busybox", "sh", 0) || p.Len() != 3 {
		t.Error("Add of a new entry did not take")
	}
	var none *Profile
	if none.Allows("/bin/sh", "sh", 0) || none.AllowsExe("/bin/sh") || none.Len() != 0 {
		t.Error("a missing profile allows nothing")
	}
	e := p.Entries()
	if len(e) != 3 || e[0].Name != "httpd" || e[1].Name != "sh" || e[2].Exe != "/usr/sbin/nginx" {
		t.Errorf("Entries not sorted: %+v", e)
	}
}

// procTree builds a /proc with one process directory per call.
type procTree struct {
	t    *testing.T
	root string
}

func newProcTree(t *testing.T) *procTree {
	return &procTree{t: t, root: t.TempDir()}
}

func (f *procTree) write(pid int, name, content string) {
	f.t.Helper()
	p := filepath.Join(f.root, strconv.Itoa(pid), name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		f.t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		f.t.Fatal(err)
	}
}

func (f *procTree) link(pid int, name, target string) {
	f.t.Helper()
	p := filepath.Join(f.root, strconv.Itoa(pid), name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		f.t.Fatal(err)
	}
	if err := os.Symlink(target, p); err != nil {
		f.t.Fatal(err)
	}
}

const (
	passwd = "root:x:0:0:root:/root:/bin/sh\nalice:x:1000:1000::/home/alice:/bin/sh\nbob:x:1001:1001::/home/bob:/bin/sh\nwheelie:x:1002:10::/:/bin/sh\n"
	group  = "root:x:0:\nwheel:x:10:\nsudo:x:27:alice\nbob:x:1001:\n"
)

func TestEscalation(t *testing.T) {
	fp := newProcTree(t)
	for _, pid := range []int{100, 101, 102, 103, 104} {
		fp.write(pid, "root/etc/passwd", passwd)
		fp.write(pid, "root/etc/group", group)
	}
	d := NewDetector(DetectorConfig{ProcRoot: fp.root})
	user := func(uid int) Ancestor { return Ancestor{PID: 50, Comm: "sh", Exe: "/bin/sh", UID: uid, EUID: uid} }
	exec := func(pid int, comm, exe string, uid, euid int, parent Ancestor) *Observation {
		return &Observation{Kind: EventExec, Process: ProcessInfo{PID: pid, Comm: comm, Exe: exe, UID: uid, EUID: euid}, Ancestry: []Ancestor{parent}}
	}
	for _, tc := range []struct {
		name string
		o    *Observation
		want bool
	}{
		{"setuid helper run by a user", exec(100, "helper", "/usr/local/bin/helper", 1000, 0, user(1000)), true},
		{"helper that called setuid(0)", &Observation{Kind: EventUID, PrevUID: 1000, PrevEUID: 0,
			Process: ProcessInfo{PID: 100, Comm: "helper", UID: 0, EUID: 0}, Ancestry: []Ancestor{user(1000)}}, true},
		{"uid change that gains nothing new", &Observation{Kind: EventUID, PrevUID: 0, PrevEUID: 1000,
			Process: ProcessInfo{PID: 100, Comm: "x", UID: 0, EUID: 1000}, Ancestry: []Ancestor{user(1000)}}, false},
		{"root parent", exec(101, "sh", "/bin/sh", 0, 0, user(0)), false},
		{"non-root child", exec(101, "sh", "/bin/sh", 1000, 1000, user(1000)), false},
		{"sudo by a member of sudo", exec(102, "sudo", "/usr/bin/sudo", 1000, 0, user(1000)), false},
		{"su by a user whose primary group is wheel", exec(103, "su", "/bin/su", 1002, 0, user(1002)), false},
		{"sudo by a user outside the admin groups", exec(104, "sudo", "/usr/bin/sudo", 1001, 0, user(1001)), true},
		{"a setuid helper of the base system", exec(101, "fusermount3", "/usr/bin/fusermount3", 1000, 0, user(1000)), false},
		{"no parent known", &Observation{Kind: EventExec, Process: ProcessInfo{PID: 101, Comm: "x", EUID: 0, UID: 1000}}, false},
	} {
		got := d.escalation(tc.o)
		if (got != nil) != tc.want {
			t.Errorf("%s: finding %+v, want one: %v", tc.name, got, tc.want)
		}
		if got != nil && got.Rule != RuleEscalation {
			t.Errorf("%s: rule %q", tc.name, got.Rule)
		}
	}
}

func TestEscalationSudoWithoutUserFiles(t *testing.T) {
	// No /etc/passwd or /etc/group readable: nobody is permitted, so sudo is reported.
	d := NewDetector(DetectorConfig{ProcRoot: t.TempDir()})
	o := &Observation{Kind: EventExec, Process: ProcessInfo{PID: 7, Comm: "sudo", Exe: "/usr/bin/sudo", UID: 1000, EUID: 0},
		Ancestry: []Ancestor{{PID: 6, Comm: "bash", UID: 1000, EUID: 1000}}}
	if d.escalation(o) == nil {
		t.Fatal("sudo by an unknown user not reported")
	}
}

func TestUserFilesStayInRoot(t *testing.T) {
	// A container's /etc/group that links to an absolute path must resolve inside the
	// container's root, not on the host.
	fp := newProcTree(t)
	fp.write(9, "root/etc/passwd", passwd)
	fp.write(9, "root/other/group", group)
	fp.link(9, "root/etc/group", "/other/group")
	b, err := readInRoot(filepath.Join(fp.root, "9", "root"), "etc/group", 1<<20)
	if err == nil && string(b) != group {
		t.Fatalf("read %q through the link: it left the root", b)
	}
}

func tcpTable(lines ...string) string {
	return "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n" + strings.Join(lines, "\n") + "\n"
}

func TestReverseShell(t *testing.T) {
	fp := newProcTree(t)
	// pid 10: sh with stdin and stdout on TCP socket 5555 (to 172.17.0.5:9000).
	fp.link(10, "fd/0", "socket:[5555]")
	fp.link(10, "fd/1", "socket:[5555]")
	fp.link(10, "fd/2", "/dev/pts/0")
	fp.write(10, "net/tcp", tcpTable(
		"   0: 0100007F:0277 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1111 1 0000000000000000 100 0 0 10 0",
		"   1: 030011AC:A1B2 050011AC:2328 01 00000000:00000000 00:00000000 00000000     0        0 5555 1 0000000000000000 20 4 30 10 -1"))
	fp.write(10, "net/tcp6", tcpTable())
	// pid 11: sh on a unix socket (a terminal multiplexer): not a reverse shell.
	fp.link(11, "fd/0", "socket:[6666]")
	fp.write(11, "net/tcp", tcpTable())
	fp.write(11, "net/udp", tcpTable())
	// pid 12: sh on a pipe and a tty.
	fp.link(12, "fd/0", "pipe:[1]")
	fp.link(12, "fd/1", "/dev/null")
	// pid 13: nc itself on the socket is not a shell.
	fp.link(13, "fd/0", "socket:[5555]")
	fp.write(13, "net/tcp", tcpTable("   1: 030011AC:A1B2 050011AC:2328 01 00000000:00000000 00:00000000 00000000     0        0 5555 1"))
	// pid 14: bash over IPv6 UDP.
	fp.link(14, "fd/2", "socket:[7777]")
	fp.write(14, "net/udp6", tcpTable("   1: 00000000000000000000000001000000:A1B2 0000000000000000FFFF0000050011AC:0035 01 00000000:00000000 00:00000000 00000000     0        0 7777 1"))

	d := NewDetector(DetectorConfig{ProcRoot: fp.root})
	f := d.reverseShell(&ProcessInfo{PID: 10, Comm: "sh", Exe: "/bin/busybox"})
	if f == nil || f.Detail["remote"] != "172.17.0.5:9000" || f.Detail["proto"] != "tcp" {
		t.Fatalf("pid 10: got %+v, want a reverse shell to 172.17.0.5:9000 over tcp", f)
	}
	if fds := f.Detail["fds"].([]int); len(fds) != 2 {
		t.Errorf("pid 10: fds %v, want 0 and 1", fds)
	}
	for _, p := range []ProcessInfo{{PID: 11, Comm: "sh"}, {PID: 12, Comm: "sh"}, {PID: 13, Comm: "nc"}, {PID: 99, Comm: "sh"}} {
		if f := d.reverseShell(&p); f != nil {
			t.Errorf("pid %d (%s): got %+v, want none", p.PID, p.Comm, f)
		}
	}
	f = d.reverseShell(&ProcessInfo{PID: 14, Comm: "bash", Exe: "/usr/bin/bash"})
	if f == nil || f.Detail["remote"] != "172.17.0.5:53" || f.Detail["proto"] != "udp" {
		t.Fatalf("pid 14: got %+v, want a reverse shell to 172.17.0.5:53 over udp", f)
	}
}

func TestShellFromService(t *testing.T) {
	in := func(comm string, container string) Ancestor {
		return Ancestor{PID: 2, Comm: comm, Exe: "/usr/sbin/" + comm, Container: container}
	}
	obs := func(comm string, parent Ancestor) *Observation {
		return &Observation{Kind: EventExec, Process: ProcessInfo{PID: 3, Comm: comm, Exe: "/bin/busybox", Container: cid}, Ancestry: []Ancestor{parent}}
	}
	for _, tc := range []struct {
		name string
		o    *Observation
		want bool
	}{
		{"httpd starts sh", obs("sh", in("httpd", cid)), true},
		{"busybox httpd runs a CGI shell script", &Observation{Kind: EventExec,
			Process:  ProcessInfo{PID: 3, Comm: "x", Exe: "/bin/busybox", Cmdline: []string{"/bin/sh", "x"}, Container: cid},
			Ancestry: []Ancestor{{PID: 2, Comm: "httpd", Exe: "/bin/busybox", Container: cid}}}, true},
		{"python starts bash", obs("bash", in("python3", cid)), true},
		{"sh starts sh", obs("sh", in("sh", cid)), false},
		{"docker exec: the runtime on the host starts sh", obs("sh", in("containerd-shim", "")), false},
		{"an init starts sh", obs("sh", in("tini", cid)), false},
		{"sudo starts sh", obs("sh", in("sudo", cid)), false},
		{"httpd starts cat", obs("cat", in("httpd", cid)), false},
		{"no parent", &Observation{Kind: EventExec, Process: ProcessInfo{Comm: "sh", Container: cid}}, false},
	} {
		if got := shellFromService(tc.o); (got != nil) != tc.want {
			t.Errorf("%s: got %+v, want a finding: %v", tc.name, got, tc.want)
		}
	}
}

func TestSuspiciousTool(t *testing.T) {
	for _, tc := range []struct {
		p    ProcessInfo
		want string
	}{
		{ProcessInfo{Comm: "nc", Exe: "/bin/busybox"}, "nc"},
		{ProcessInfo{Comm: "x", Exe: "/usr/bin/nmap"}, "nmap"},
		{ProcessInfo{Comm: "socat", Exe: "/tmp/socat (deleted)"}, "socat"},
		{ProcessInfo{Comm: "httpd", Exe: "/bin/busybox"}, ""},
	} {
		f := suspiciousTool(&tc.p)
		got := ""
		if f != nil {
			got = f.Detail["tool"].(string)
		}
		if got != tc.want {
			t.Errorf("%+v: tool %q, want %q", tc.p, got, tc.want)
		}
	}
}

func TestDrift(t *testing.T) {
	fp := newProcTree(t)
	upper := filepath.Join(t.TempDir(), "diff")
	if err := os.MkdirAll(filepath.Join(upper, "tmp"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(upper, "tmp", "tool"), []byte("\x7fELF"), 0o755); err != nil {
		t.Fatal(err)
	}
	fp.write(20, "mountinfo", "228 148 0:83 / / rw,relatime master:7 - overlay overlay rw,lowerdir=/l/A:/l/B,upperdir="+
		strings.ReplaceAll(upper, " ", `\040`)+",workdir=/w\n229 228 0:85 / /proc rw - proc proc rw\n")
	fp.link(20, "exe", filepath.Join(upper, "tmp", "tool")) // what stat(/proc/PID/exe) reaches
	var created time.Time
	d := NewDetector(DetectorConfig{ProcRoot: fp.root, ContainerCreated: func(string) time.Time { return created }})

	p := &ProcessInfo{PID: 20, Comm: "tool", Exe: "/tmp/tool", Container: cid}
	if f := d.drift(p); f == nil || f.Detail["how"] != "written" {
		t.Fatalf("file of the upper layer: got %+v, want drift", f)
	}
	// Written before the container was created: not drift.
	created = time.Now().Add(time.Hour)
	if f := d.drift(p); f != nil {
		t.Fatalf("file older than the container: got %+v", f)
	}
	created = time.Time{}
	// A file of the image (not in the upper layer).
	if f := d.drift(&ProcessInfo{PID: 20, Comm: "sh", Exe: "/bin/sh", Container: cid}); f != nil {
		t.Errorf("file of the image: got %+v", f)
	}
	// A mount point left in the upper layer with another file mounted over it.
	p.exeIno = 1
	if f := d.drift(p); f != nil {
		t.Errorf("bind-mounted file: got %+v", f)
	}
	if f := d.drift(&ProcessInfo{PID: 21, Comm: "x", Exe: "/memfd:payload (deleted)", Container: cid}); f == nil || f.Detail["how"] != "memory" {
		t.Errorf("memfd: got %+v", f)
	}
	if f := d.drift(&ProcessInfo{PID: 21, Comm: "runc", Exe: "/memfd:runc_cloned:/proc/self/exe (deleted)", Container: cid}); f != nil {
		t.Errorf("runc's own memfd: got %+v", f)
	}
}

func TestRootUpperDir(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"1 0 0:1 / / rw - overlay overlay rw,lowerdir=/a:/b,upperdir=/var/lib/docker/overlay2/x/diff,workdir=/w\n", "/var/lib/docker/overlay2/x/diff"},
		{"1 0 8:1 / / rw - ext4 /dev/sda1 rw\n", ""},
		{"1 0 0:1 / /merged rw - overlay overlay rw,upperdir=/u\n", ""},
		{"1 0 0:1 / / rw - overlay overlay rw,upperdir=/a\\040b\n", "/a b"},
		{"garbage", ""},
	} {
		if got := rootUpperDir([]byte(tc.in)); got != tc.want {
			t.Errorf("%q: got %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestUserDB(t *testing.T) {
	db := parseUserDB([]byte(passwd+"broken line\n::\nx:x:notanumber:1\n"), []byte(group+"sudo:x:27:carol, dave\n"))
	for uid, want := range map[int]bool{0: true, 1000: true, 1001: false, 1002: true, 4242: false} {
		if got := db.permitted(uid); got != want {
			t.Errorf("permitted(%d) = %v, want %v", uid, got, want)
		}
	}
}

func FuzzParseUserDB(f *testing.F) {
	f.Add([]byte(passwd), []byte(group))
	f.Fuzz(func(t *testing.T, p, g []byte) {
		db := parseUserDB(p, g)
		_ = db.permitted(1000)
	})
}

func FuzzParseNetSockets(f *testing.F) {
	f.Add([]byte(tcpTable("   1: 030011AC:A1B2 050011AC:2328 01 00000000:00000000 00:00000000 00000000     0        0 5555 1")), false)
	f.Add([]byte(tcpTable("   1: 00000000000000000000000001000000:A1B2 0000000000000000FFFF0000050011AC:0035 01 0:0 0:0 0 0 0 7777 1")), true)
	f.Fuzz(func(t *testing.T, b []byte, v6 bool) {
		into := map[uint64]inetSocket{}
		_ = parseNetSockets(b, v6, map[uint64]bool{5555: true, 7777: true}, into)
	})
}

func FuzzRootUpperDir(f *testing.F) {
	f.Add([]byte("1 0 0:1 / / rw - overlay overlay rw,upperdir=/a\\040b\n"))
	f.Fuzz(func(t *testing.T, b []byte) { _ = rootUpperDir(b) })
}

// procEventMsg builds a connector message as the kernel sends it.
func procEventMsg(what, cpu, seq uint32, data ...uint32) []byte {
	ne := binary.NativeEndian
	b := make([]byte, cnNlHdrLen+cnMsgHdrLen+procEventHdr+4*len(data))
	ne.PutUint32(b, uint32(len(b)))
	cn := b[cnNlHdrLen:]
	ne.PutUint32(cn, cnIdxProc)
	ne.PutUint32(cn[4:], cnValProc)
	ne.PutUint32(cn[8:], seq)
	ne.PutUint16(cn[16:], uint16(procEventHdr+4*len(data)))
	ev := cn[cnMsgHdrLen:]
	ne.PutUint32(ev, what)
	ne.PutUint32(ev[4:], cpu)
	for i, v := range data {
		ne.PutUint32(ev[procEventHdr+4*i:], v)
	}
	return b
}

func TestDecodeProcEvent(t *testing.T) {
	var ev ProcEvent
	if !decodeProcEvent(procEventMsg(procEventFork, 1, 7, 10, 10, 11, 11), &ev) || ev.Kind != EventFork || ev.ParentTGID != 10 || ev.TGID != 11 || ev.Seq != 7 || ev.CPU != 1 {
		t.Errorf("fork: %+v", ev)
	}
	if !decodeProcEvent(procEventMsg(procEventExec, 0, 0, 12, 12), &ev) || ev.Kind != EventExec || ev.TGID != 12 {
		t.Errorf("exec: %+v", ev)
	}
	if !decodeProcEvent(procEventMsg(procEventUID, 0, 0, 13, 13, 0, 0), &ev) || ev.Kind != EventUID || ev.Real != 0 || ev.TGID != 13 {
		t.Errorf("uid: %+v", ev)
	}
	if !decodeProcEvent(procEventMsg(procEventExit, 0, 0, 14, 14, 0, 9), &ev) || ev.Kind != EventExit || ev.TGID != 14 {
		t.Errorf("exit: %+v", ev)
	}
	if !decodeProcEvent(procEventMsg(0x200, 0, 0, 1, 1, 0, 0, 0, 0), &ev) || ev.Kind != 0 {
		t.Errorf("comm event: %+v, want decoded with no kind", ev)
	}
	if decodeProcEvent(procEventMsg(procEventFork, 0, 0, 1), &ev) {
		t.Error("short fork decoded")
	}
	msg := procEventMsg(procEventExec, 0, 0, 12, 12)
	binary.NativeEndian.PutUint32(msg[cnNlHdrLen:], 99)
	if decodeProcEvent(msg, &ev) {
		t.Error("message of another connector decoded")
	}
}

func TestSequenceGaps(t *testing.T) {
	c := &connector{last: make([]uint32, 4)}
	for _, s := range []struct{ cpu, seq uint32 }{{0, 5}, {0, 6}, {1, 100}, {0, 9}, {1, 101}, {1, 110}} {
		c.count(s.cpu, s.seq)
	}
	if got := c.lost.Load(); got != 2+8 {
		t.Fatalf("lost %d, want 10 (7 and 8 on cpu 0, 102 to 109 on cpu 1)", got)
	}
}

func FuzzDecodeProcEvent(f *testing.F) {
	f.Add(procEventMsg(procEventFork, 1, 7, 10, 10, 11, 11))
	f.Add(procEventMsg(procEventUID, 0, 0, 13, 13, 0, 0))
	f.Fuzz(func(t *testing.T, b []byte) {
		var ev ProcEvent
		_ = decodeProcEvent(b, &ev)
	})
}

func BenchmarkDecodeProcEvent(b *testing.B) {
	msg := procEventMsg(procEventExec, 0, 0, 12, 12)
	c := &connector{last: make([]uint32, 4)}
	var ev ProcEvent
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		binary.NativeEndian.PutUint32(msg[cnNlHdrLen+8:], uint32(i))
		if !decodeProcEvent(msg, &ev) {
			b.Fatal("not decoded")
		}
		c.count(ev.CPU, ev.Seq)
	}
}

func TestParseStatusIDs(t *testing.T) {
	st := "Name:\tsh\nUid:\t1000\t0\t0\t0\nGid:\t1000\t1000\t1000\t1000\n"
	if r, e, ok := parseStatusIDs([]byte(st), "Uid:"); !ok || r != 1000 || e != 0 {
		t.Errorf("Uid: %d %d %v", r, e, ok)
	}
	if _, _, ok := parseStatusIDs([]byte("Uid:\tx\n"), "Uid:"); ok {
		t.Error("bad Uid line parsed")
	}
	if got := parseCmdline([]byte("nc\x00-l\x00-p\x009000\x00")); strings.Join(got, " ") != "nc -l -p 9000" {
		t.Errorf("cmdline %q", got)
	}
}
