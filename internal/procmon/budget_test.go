package procmon

import (
	"fmt"
	"testing"
	"time"
)

// A namespace that keeps missing (each connection held by a new, unrelated process, so
// that only scans find them) uses up its share and then the budget down to the reserve;
// another namespace's lookups still scan and succeed.
func TestNoisyNamespaceCannotStarveOthers(t *testing.T) {
	f := newFakeProc(t)
	da, db := newFakeDiag(), newFakeDiag()
	noisy := map[int]uint32{}
	for i := range 12 {
		noisy[1000+i] = uint32(10000 + i)
	}
	connections(da, noisy)
	connections(db, map[int]uint32{1000: 20000, 1001: 20001})
	f.add(fakeProcess{pid: 4000, netns: nsA, comm: "noisy", exe: "/n", fds: map[int]string{3: sock(10000)}})
	f.add(fakeProcess{pid: 4100, netns: nsB, comm: "quiet", exe: "/q", fds: map[int]string{3: sock(20000)}})
	s, _ := newTestOwners(t, f.root, map[uint64]*fakeDiag{nsA: da, nsB: db})
	// No refill to speak of, so that what a scan costs decides nothing: a namespace's
	// first scan is within its share and any later one over it; the global bucket holds
	// just over the reserve, so the first scan takes it below.
	s.lim.scanBudget, s.lim.nsShare = 1e-12, 1e-12
	s.lim.nsShareBurst = 1e-12
	s.lim.scanBurst, s.lim.scanReserve = 1, 0.5
	s.tokens = 0.5 + 1e-9

	expectLookup(t, s, nsA, "10.0.0.2:1000", 4000, byScan)
	for i := 1; i < 10; i++ {
		f.add(fakeProcess{pid: 4000 + i, netns: nsA, comm: "noisy", exe: "/n", fds: map[int]string{3: sock(uint32(10000 + i))}})
		// Refused before any /proc work, re-check included.
		expectLookup(t, s, nsA, fmt.Sprintf("10.0.0.2:%d", 1000+i), 0, Stats{ScansLimited: 1})
	}
	// The quiet namespace is within its share: the reserve is there for it.
	expectLookup(t, s, nsB, "10.0.0.2:1000", 4100, byScan)
	// Hits cost nothing and go on working for both.
	expectLookup(t, s, nsA, "10.0.0.2:1000", 4000, fromCache)
	expectLookup(t, s, nsB, "10.0.0.2:1000", 4100, fromCache)

	// Alone with budget above the reserve, the noisy namespace gets it.
	s.mu.Lock()
	s.tokens = 1
	s.mu.Unlock()
	expectLookup(t, s, nsA, "10.0.0.2:1005", 4005, byRecheckThenScan)

	// Without a reserve, the noisy namespace takes everything and the quiet one is
	// refused: the starvation the shares are for. (Without re-checks too, so that one
	// scan is what drains the bucket.)
	s.lim.scanReserve = 0
	s.lim.recentOwners = 0
	s.mu.Lock()
	s.tokens = 1e-9
	s.mu.Unlock()
	f.add(fakeProcess{pid: 4010, netns: nsA, comm: "noisy", exe: "/n", fds: map[int]string{3: sock(10010)}})
	expectLookup(t, s, nsA, "10.0.0.2:1010", 4010, byScan)
	f.add(fakeProcess{pid: 4101, netns: nsB, comm: "quiet", exe: "/q", fds: map[int]string{3: sock(20001)}})
	expectLookup(t, s, nsB, "10.0.0.2:1001", 0, Stats{ScansLimited: 1})
}

func TestBudgetBuckets(t *testing.T) {
	s := NewSocketOwners(t.TempDir(), nil)
	t.Cleanup(func() { s.Close() })
	s.lim = defaultLimits
	t0 := time.Unix(1000, 0)
	s.tokens, s.tokensAt = s.lim.scanBurst, t0
	st := s.nsLocked(nsA, t0)
	if st.share != s.lim.nsShareBurst {
		t.Fatalf("a new namespace's share is %v, want full (%v)", st.share, s.lim.nsShareBurst)
	}
	at := func(d time.Duration) time.Time { return t0.Add(d) }

	// Within its share: down to zero.
	if !s.mayReadLocked(st, at(0)) {
		t.Fatal("refused with full buckets")
	}
	s.payLocked(st, s.lim.scanBurst-s.lim.scanReserve+0.001) // global now below the reserve
	if st.share > 0 {
		t.Fatalf("share %v after paying more than it holds", st.share)
	}
	if s.mayReadLocked(st, at(0)) {
		t.Error("over its share and the budget below the reserve: allowed")
	}
	quiet := s.nsLocked(nsB, at(0))
	if !s.mayReadLocked(quiet, at(0)) {
		t.Error("within its share and budget left: refused")
	}
	// The share comes back within nsShareBurst/nsShare of calm (5 s), and then the
	// namespace may use the reserve too.
	back := time.Duration(2 * s.lim.nsShareBurst / s.lim.nsShare * float64(time.Second))
	if !s.mayReadLocked(st, at(back+time.Millisecond)) || st.share <= 0 {
		t.Errorf("after %v: share %v, tokens %v; want allowed", back, st.share, s.tokens)
	}
	// A share's debt is bounded; the global bucket's is not.
	tokens := s.tokens
	s.payLocked(st, 10)
	if st.share != -s.lim.nsShareBurst || s.tokens != tokens-10 {
		t.Errorf("after paying 10 s: share %v, tokens %v; want %v, %v", st.share, s.tokens, -s.lim.nsShareBurst, tokens-10)
	}
	// Buckets never hold more than their burst.
	s.mayReadLocked(st, at(time.Hour)) // 10 s in debt: 200 s to pay
	if s.tokens != s.lim.scanBurst || st.share != s.lim.nsShareBurst {
		t.Errorf("after an hour: tokens %v share %v, want %v %v", s.tokens, st.share, s.lim.scanBurst, s.lim.nsShareBurst)
	}
	// The global bucket bounds the total: spend at the budget's rate for a minute, from
	// as many namespaces as like, and it is empty.
	for i := range 60 {
		ns := s.nsLocked(uint64(5000+i), at(time.Hour))
		s.payLocked(ns, s.lim.scanBudget)
	}
	s.payLocked(st, s.lim.scanBurst)
	if s.mayReadLocked(s.nsLocked(9999, at(time.Hour+59*time.Second)), at(time.Hour+59*time.Second)) {
		t.Error("a new namespace allowed with the global bucket spent")
	}
}
