package procmon

import "time"

// The CPU budget of misses. The /proc work a miss costs (a re-check, a scan) is measured in
// seconds and paid for from two token buckets: one for all namespaces together, and a
// share per namespace. Work starts when the buckets allow it and pays what it cost once
// it is done, so a bucket may go below zero.
//
// The global bucket bounds the total, however many namespaces there are: it fills at
// scanBudget seconds per second (5% of one CPU) up to scanBurst (0.1 s). Over any t
// seconds, misses take at most scanBudget·t + scanBurst of CPU, plus the overrun of the
// work in flight when the bucket ran dry: one scan per lookup running at that moment
// (the agent looks up one flow end at a time, so one scan; for a container's namespace a
// fraction of a millisecond, for the host's a few milliseconds per thousand processes).
//
// The share makes it fair. Each namespace has its own bucket, filling at nsShare (1% of
// one CPU) up to nsShareBurst (50 ms) and going at most as far below zero. A namespace
// within its share may take from the global bucket down to zero; one over it only down to
// scanReserve (50 ms). The share's burst is what a few scans of a container's namespace
// cost on a host with thousands of processes, most of it spent on the host's processes
// rather than the container's (listing /proc, reading the namespace of processes not
// seen before): a quiet namespace stays within it. Re-checks, a few descriptor tables
// each, keep even a busy client's namespace within it. So namespaces that miss a lot, however many, drive the global
// bucket down to the reserve and no further, and what the budget brings in while it is
// below goes to the others: a quiet container's first lookups are scanned while a noisy
// one is being held back. A busy namespace still gets what the others leave of the budget
// (everything above the reserve when it is alone), rather than a fixed fraction.
//
// The alternatives do worse. A bucket per namespace alone bounds the total only by the
// number of namespaces (1024 of them at 1% would be ten CPUs). A global bucket alone is
// the starvation this replaces: one container's misses empty it for everyone. A global
// bucket split evenly among the namespaces wastes the shares of the quiet ones and leaves
// a busy one a thousandth of the budget on a host with a thousand containers.
//
// A namespace's share lives with its cache and starts full: a namespace evicted from the
// cache (beyond maxNamespaces, the least recently used) starts again with a full share
// when it comes back, which the global bucket still bounds.

// mayReadLocked brings the buckets up to now and says whether namespace st may start /proc
// work for a miss.
func (s *SocketOwners) mayReadLocked(st *nsOwners, now time.Time) bool {
	if !s.tokensAt.IsZero() {
		s.tokens = min(s.lim.scanBurst, s.tokens+now.Sub(s.tokensAt).Seconds()*s.lim.scanBudget)
	}
	s.tokensAt = now
	st.share = min(s.lim.nsShareBurst, st.share+now.Sub(st.shareAt).Seconds()*s.lim.nsShare)
	st.shareAt = now
	if st.share > 0 {
		return s.tokens > 0
	}
	return s.tokens > s.lim.scanReserve
}

// payLocked takes cost seconds of /proc work out of the global bucket and the share of
// namespace st. A share's debt is bounded, so that a namespace that was busy for long
// is back within its share nsShareBurst/nsShare seconds (5 s) after it calms down.
func (s *SocketOwners) payLocked(st *nsOwners, cost float64) {
	s.tokens -= cost
	st.share = max(-s.lim.nsShareBurst, st.share-cost)
}
