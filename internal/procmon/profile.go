package procmon

import (
	"cmp"
	"slices"
	"strings"
	"time"
)

// ProfileEntry is one kind of process a group runs: an executable, the name it ran
// under and the effective user.
type ProfileEntry struct {
	// Exe is the executable's path inside the container.
	Exe string `json:"exe"`
	// Name is the process's comm: what it was executed as (busybox's applet, a script's
	// name under its interpreter).
	Name string `json:"name"`
	// UID is the effective user ID, in the host's user namespace.
	UID       int       `json:"uid"`
	FirstSeen time.Time `json:"first_seen"`
}

type profileKey struct {
	exe, name string
	uid       int
}

// Profile is the set of processes a group is known to run. It is not safe for
// concurrent use.
type Profile struct {
	entries map[profileKey]ProfileEntry
	exes    map[string]int    // executable → entries naming it
	exeUIDs map[exeUIDKey]int // executable and user → entries naming them
}

type exeUIDKey struct {
	exe string
	uid int
}

// NewProfile returns a profile holding entries.
func NewProfile(entries []ProfileEntry) *Profile {
	p := &Profile{entries: map[profileKey]ProfileEntry{}, exes: map[string]int{}, exeUIDs: map[exeUIDKey]int{}}
	for _, e := range entries {
		p.Add(e)
	}
	return p
}

// CleanExe is the executable path a profile holds: without the " (deleted)" the kernel
// appends to a file removed since.
func CleanExe(exe string) string { return strings.TrimSuffix(exe, " (deleted)") }

// Add puts e in the profile and reports whether it was new.
func (p *Profile) Add(e ProfileEntry) bool {
	e.Exe = CleanExe(e.Exe)
	k := profileKey{e.Exe, e.Name, e.UID}
	if _, ok := p.entries[k]; ok {
		return false
	}
	p.entries[k] = e
	p.exes[e.Exe]++
	p.exeUIDs[exeUIDKey{e.Exe, e.UID}]++
	return true
}

// Allows reports whether the profile holds this executable, name and user.
func (p *Profile) Allows(exe, name string, uid int) bool {
	if p == nil {
		return false
	}
	_, ok := p.entries[profileKey{CleanExe(exe), name, uid}]
	return ok
}

// AllowsExe reports whether the profile holds the executable under any name and user:
// all an exec permission check knows before the program runs.
func (p *Profile) AllowsExe(exe string) bool {
	return p != nil && p.exes[CleanExe(exe)] > 0
}

// AllowsExeUID reports whether the profile holds the executable for this user under
// any name (uid < 0: any user): what is known of a process that exited before it could
// be read, whose name is only guessed from its file.
func (p *Profile) AllowsExeUID(exe string, uid int) bool {
	if p == nil {
		return false
	}
	if uid < 0 {
		return p.AllowsExe(exe)
	}
	return p.exeUIDs[exeUIDKey{CleanExe(exe), uid}] > 0
}

// Len is the number of entries.
func (p *Profile) Len() int {
	if p == nil {
		return 0
	}
	return len(p.entries)
}

// Entries returns the entries ordered by executable, name and user.
func (p *Profile) Entries() []ProfileEntry {
	if p == nil {
		return []ProfileEntry{}
	}
	out := make([]ProfileEntry, 0, len(p.entries))
	for _, e := range p.entries {
		out = append(out, e)
	}
	slices.SortFunc(out, func(a, b ProfileEntry) int {
		return cmp.Or(strings.Compare(a.Exe, b.Exe), strings.Compare(a.Name, b.Name), cmp.Compare(a.UID, b.UID))
	})
	return out
}
