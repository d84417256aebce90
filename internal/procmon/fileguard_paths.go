package procmon

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
	"unsafe"
)

// Classes of sensitive files, carried by FileEvent.Class.
const (
	FileClassAccounts  = "accounts"   // /etc/passwd, shadow, group, gshadow
	FileClassSudoers   = "sudoers"    // /etc/sudoers, /etc/sudoers.d/*
	FileClassSSH       = "ssh"        // ssh keys and authorized_keys, sshd's configuration and host keys
	FileClassPackageDB = "package-db" // dpkg, apk and rpm databases
	FileClassBinary    = "binary"     // executables and libraries in the system's binary directories
)

// sensitiveRule is one pattern of sensitive paths. A pattern is an absolute path whose
// segments are names or "*" (any one name); a final "**" matches one or more further
// segments.
type sensitiveRule struct {
	pattern string
	class   string
}

// sensitiveRules is the list of files whose changes in a container are reported. Order
// matters: the first rule that matches gives the class (the package databases under
// /lib and /usr/lib come before the library directories).
var sensitiveRules = []sensitiveRule{
	{"/etc/passwd", FileClassAccounts},
	{"/etc/shadow", FileClassAccounts},
	{"/etc/group", FileClassAccounts},
	{"/etc/gshadow", FileClassAccounts},
	{"/etc/sudoers", FileClassSudoers},
	{"/etc/sudoers.d/**", FileClassSudoers},
	{"/root/.ssh/**", FileClassSSH},
	{"/home/*/.ssh/**", FileClassSSH},
	{"/etc/ssh/**", FileClassSSH},
	{"/var/lib/dpkg/**", FileClassPackageDB},
	{"/lib/apk/db/**", FileClassPackageDB},
	{"/var/lib/rpm/**", FileClassPackageDB},
	{"/usr/lib/sysimage/rpm/**", FileClassPackageDB},
	{"/bin/**", FileClassBinary},
	{"/sbin/**", FileClassBinary},
	{"/usr/bin/**", FileClassBinary},
	{"/usr/sbin/**", FileClassBinary},
	{"/usr/local/bin/**", FileClassBinary},
	{"/usr/local/sbin/**", FileClassBinary},
	{"/lib/**", FileClassBinary},
	{"/lib32/**", FileClassBinary},
	{"/lib64/**", FileClassBinary},
	{"/libx32/**", FileClassBinary},
	{"/usr/lib/**", FileClassBinary},
	{"/usr/lib32/**", FileClassBinary},
	{"/usr/lib64/**", FileClassBinary},
	{"/usr/libexec/**", FileClassBinary},
	{"/usr/local/lib/**", FileClassBinary},
}

// sensitiveByFirst indexes sensitiveRules by their first segment, so that most paths
// (/tmp, /app, /proc) are dismissed with one map lookup.
var sensitiveByFirst = func() map[string][]sensitiveRule {
	m := map[string][]sensitiveRule{}
	for _, r := range sensitiveRules {
		first, _, _ := strings.Cut(r.pattern[1:], "/")
		m[first] = append(m[first], r)
	}
	return m
}()

// sensitiveClass returns the class of a path inside a container, or "" when a change to
// it is not reported. It does not allocate.
func sensitiveClass(path string) string {
	if len(path) < 2 || path[0] != '/' {
		return ""
	}
	first, _, _ := strings.Cut(path[1:], "/")
	for _, r := range sensitiveByFirst[first] {
		if matchPathPattern(r.pattern, path) {
			return r.class
		}
	}
	return ""
}

// matchPathPattern reports whether path matches pattern (see sensitiveRule). Both are
// absolute and clean; a path that is not ("a/b", "/etc//passwd", "/etc/x/../passwd") does
// not match.
func matchPathPattern(pattern, path string) bool {
	if len(path) < 2 || path[0] != '/' {
		return false
	}
	pattern, path = pattern[1:], path[1:]
	for {
		pseg, prest, pmore := strings.Cut(pattern, "/")
		seg, rest, more := strings.Cut(path, "/")
		if seg == "" || seg == "." || seg == ".." {
			return false
		}
		switch {
		case pseg == "**":
			// One or more segments; each of them must be a proper name.
			for more {
				seg, rest, more = strings.Cut(rest, "/")
				if seg == "" || seg == "." || seg == ".." {
					return false
				}
			}
			return true
		case pseg != "*" && pseg != seg:
			return false
		}
		if !pmore || !more {
			return pmore == more
		}
		pattern, path = prest, rest
	}
}

// sensitiveDirPatterns are the directories whose entries are watched for creation,
// deletion, renaming and attribute changes (a directory mark sees changes to names; a
// write mark sees only changes to contents). Their ancestors are watched too, so that a
// directory created later (/root/.ssh, /home/bob, /usr/local/bin) is found and watched.
var sensitiveDirPatterns = []string{
	"/etc", "/etc/sudoers.d", "/etc/ssh",
	"/root/.ssh", "/home/*/.ssh",
	"/var/lib/dpkg", "/lib/apk/db", "/var/lib/rpm", "/usr/lib/sysimage/rpm",
	"/bin", "/sbin", "/usr/bin", "/usr/sbin", "/usr/local/bin", "/usr/local/sbin",
	"/lib", "/lib64", "/usr/lib", "/usr/lib64", "/usr/libexec", "/usr/local/lib",
}

// watchedDirPatterns is sensitiveDirPatterns with all their ancestors, without repeats,
// parents first.
var watchedDirPatterns = func() []string {
	out := []string{"/"}
	seen := map[string]bool{"/": true}
	for _, p := range sensitiveDirPatterns {
		for i := 1; i <= len(p); i++ {
			if i < len(p) && p[i] != '/' {
				continue
			}
			if dir := p[:i]; !seen[dir] {
				seen[dir] = true
				out = append(out, dir)
			}
		}
	}
	return out
}()

// isWatchedDir reports whether a directory at path should carry a directory mark.
func isWatchedDir(path string) bool {
	for _, p := range watchedDirPatterns {
		if p == path || (p != "/" && matchPathPattern(p, path)) {
			return true
		}
	}
	return false
}

// mayHoldSensitive reports whether a mount at mountPoint can hold a sensitive file: it
// is at or above one, or inside a sensitive directory. Write marks go on those mounts
// only, so that writes to /dev/null or a data volume cost nothing.
func mayHoldSensitive(mountPoint string) bool {
	if mountPoint == "/" {
		return true
	}
	if sensitiveClass(mountPoint) != "" {
		return true
	}
	for _, r := range sensitiveRules {
		// The mount point is an ancestor of a pattern's files ("/home" for
		// "/home/*/.ssh/**", "/var/lib" for "/var/lib/dpkg/**").
		if patternBelow(r.pattern, mountPoint) {
			return true
		}
	}
	return false
}

// patternBelow reports whether the paths that pattern matches lie below the directory
// dir: dir's segments match the first segments of pattern.
func patternBelow(pattern, dir string) bool {
	pattern, dir = strings.TrimPrefix(pattern, "/"), strings.TrimPrefix(dir, "/")
	for dir != "" {
		pseg, prest, _ := strings.Cut(pattern, "/")
		seg, rest, _ := strings.Cut(dir, "/")
		if pseg == "**" {
			return true
		}
		if pseg == "" || (pseg != "*" && pseg != seg) {
			return false
		}
		pattern, dir = prest, rest
	}
	return true
}

// containerPath turns the path the kernel gives for an event's file into the path
// inside the container. A file reached through the host's view of the container's root
// filesystem (its overlay "merged" directory, hostRoot) comes with that prefix, which is
// removed; a file reached inside the container already has the container's path. The
// " (deleted)" the kernel appends to an unlinked file's path is removed and reported.
// The result aliases p.
func containerPath(p []byte, hostRoot string) (path []byte, deleted bool) {
	const deletedSuffix = " (deleted)"
	if bytes.HasSuffix(p, []byte(deletedSuffix)) {
		p, deleted = p[:len(p)-len(deletedSuffix)], true
	}
	if hostRoot != "" && hostRoot != "/" && bytes.HasPrefix(p, []byte(hostRoot)) {
		switch {
		case len(p) == len(hostRoot):
			return []byte{'/'}, deleted
		case p[len(hostRoot)] == '/':
			return p[len(hostRoot):], deleted
		}
	}
	return p, deleted
}

// bytesView returns a string sharing b's memory, for a call that neither keeps it nor
// outlives b's next change.
func bytesView(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}

// mountEntry is one line of /proc/PID/mountinfo (see proc_pid_mountinfo(5)).
type mountEntry struct {
	ID           uint64
	Parent       uint64
	Major, Minor uint32
	Root         string // the directory of the filesystem mounted here
	MountPoint   string // relative to the process's root
	FSType       string
	Source       string
}

// parseMountinfo parses a mountinfo file. name is used in errors. The mount points of a
// container are chosen by whoever controls it, so the input is untrusted: escapes are
// decoded and any malformed line is an error naming it.
func parseMountinfo(name string, data []byte) ([]mountEntry, error) {
	var out []mountEntry
	for n := 1; len(data) > 0; n++ {
		line, rest, _ := bytes.Cut(data, []byte{'\n'})
		data = rest
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		e, err := parseMountinfoLine(string(line))
		if err != nil {
			return nil, fmt.Errorf("%s line %d: %w", name, n, err)
		}
		out = append(out, e)
	}
	return out, nil
}

func parseMountinfoLine(line string) (mountEntry, error) {
	var e mountEntry
	fields := strings.Fields(line)
	sep := -1
	for i := 6; i < len(fields); i++ {
		if fields[i] == "-" {
			sep = i
			break
		}
	}
	if len(fields) < 7 || sep < 0 || len(fields) < sep+3 {
		return e, fmt.Errorf("malformed mountinfo line %q", line)
	}
	var err error
	if e.ID, err = strconv.ParseUint(fields[0], 10, 64); err != nil {
		return e, fmt.Errorf("mount ID %q: %w", fields[0], err)
	}
	if e.Parent, err = strconv.ParseUint(fields[1], 10, 64); err != nil {
		return e, fmt.Errorf("parent mount ID %q: %w", fields[1], err)
	}
	maj, min, ok := strings.Cut(fields[2], ":")
	if !ok {
		return e, fmt.Errorf("device %q is not major:minor", fields[2])
	}
	ma, err := strconv.ParseUint(maj, 10, 32)
	if err != nil {
		return e, fmt.Errorf("device %q: %w", fields[2], err)
	}
	mi, err := strconv.ParseUint(min, 10, 32)
	if err != nil {
		return e, fmt.Errorf("device %q: %w", fields[2], err)
	}
	e.Major, e.Minor = uint32(ma), uint32(mi)
	if e.Root, err = unescapeMountinfo(fields[3]); err != nil {
		return e, err
	}
	if e.MountPoint, err = unescapeMountinfo(fields[4]); err != nil {
		return e, err
	}
	if !strings.HasPrefix(e.MountPoint, "/") {
		return e, fmt.Errorf("mount point %q is not absolute", e.MountPoint)
	}
	if e.FSType, err = unescapeMountinfo(fields[sep+1]); err != nil {
		return e, err
	}
	if e.Source, err = unescapeMountinfo(fields[sep+2]); err != nil {
		return e, err
	}
	return e, nil
}

// unescapeMountinfo decodes the kernel's octal escapes (\040 for a space, \011, \012,
// \134) of a mountinfo field.
func unescapeMountinfo(s string) (string, error) {
	if !strings.Contains(s, `\`) {
		return s, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '\\' {
			b.WriteByte(s[i])
			continue
		}
		if i+3 >= len(s) {
			return "", fmt.Errorf("truncated escape in %q", s)
		}
		v, err := strconv.ParseUint(s[i+1:i+4], 8, 8)
		if err != nil {
			return "", fmt.Errorf("bad escape in %q", s)
		}
		b.WriteByte(byte(v))
		i += 3
	}
	return b.String(), nil
}

// pseudoFilesystems hold no program that could be executed nor any file we report.
var pseudoFilesystems = map[string]bool{
	"proc": true, "sysfs": true, "cgroup": true, "cgroup2": true, "devpts": true,
	"mqueue": true, "securityfs": true, "debugfs": true, "tracefs": true, "bpf": true,
	"pstore": true, "configfs": true, "fusectl": true, "hugetlbfs": true,
	"binfmt_misc": true, "autofs": true, "nsfs": true, "efivarfs": true,
	"selinuxfs": true, "rpc_pipefs": true,
}

// hostRootOf finds where the host's mount namespace has the filesystem mounted at a
// container's root: the overlay's merged directory, through which dockerd and host
// processes reach the container's files. "" when the host has no such mount (another
// runtime, or Vigil in its own mount namespace).
func hostRootOf(host []mountEntry, root mountEntry) string {
	for _, m := range host {
		if m.Major == root.Major && m.Minor == root.Minor && m.Root == root.Root && m.FSType == root.FSType {
			return m.MountPoint
		}
	}
	return ""
}
