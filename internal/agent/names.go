package agent

import (
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/vigil-sec/vigil/internal/dpi"
)

// TTL bounds for names learned from DNS answers: a name must outlive the connection that
// follows its lookup even when the record's TTL is 0, and must not stick for days.
const (
	minNameTTL = time.Minute
	maxNameTTL = 24 * time.Hour
)

// Names maps addresses to the DNS names workloads resolved them from, as seen in their
// DNS traffic. It is bounded and safe for concurrent use.
type Names struct {
	mu      sync.Mutex
	max     int
	entries map[netip.Addr]nameEntry
}

type nameEntry struct {
	name    string
	expires int64 // unix nanoseconds
}

// NewNames returns a cache that holds at most max addresses.
func NewNames(max int) *Names {
	return &Names{max: max, entries: make(map[netip.Addr]nameEntry)}
}

// Learn records the addresses a DNS response gave. The name kept is the one the client
// asked for, not the end of a CNAME chain: it is what the workload meant to reach.
func (n *Names) Learn(msg *dpi.DNSMessage, now time.Time) {
	if msg == nil || !msg.Response || msg.Query == "" {
		return
	}
	name := strings.TrimSuffix(strings.ToLower(msg.Query), ".")
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, a := range msg.Answers {
		if !a.Addr.IsValid() {
			continue
		}
		ttl := min(max(time.Duration(a.TTL)*time.Second, minNameTTL), maxNameTTL)
		if len(n.entries) >= n.max {
			n.expireLocked(now.UnixNano())
		}
		if len(n.entries) >= n.max {
			for k := range n.entries { // full of live names: drop an arbitrary one
				delete(n.entries, k)
				break
			}
		}
		n.entries[a.Addr.Unmap()] = nameEntry{name: name, expires: now.Add(ttl).UnixNano()}
	}
}

func (n *Names) expireLocked(now int64) {
	for k, e := range n.entries {
		if e.expires <= now {
			delete(n.entries, k)
		}
	}
}

// Lookup returns the name last resolved to addr, if it has not expired.
func (n *Names) Lookup(addr netip.Addr, now time.Time) (string, bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	e, ok := n.entries[addr.Unmap()]
	if !ok || e.expires <= now.UnixNano() {
		return "", false
	}
	return e.name, true
}

// Len is the number of addresses held.
func (n *Names) Len() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return len(n.entries)
}
