package flow

import (
	"hash/maphash"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vigil-sec/vigil/internal/dpi"
)

// Inspector identifies the application of one flow; dpi.Inspector is the real one.
type Inspector interface {
	Feed(t dpi.Transport, dir dpi.Direction, seq uint32, payload []byte) (done bool)
	App() dpi.App
	Detail() *dpi.Detail
}

// Enricher identifies the ends of a new flow. Enrich is called once per flow, at its
// birth, with the table's shard lock held: it must not block. Work that may block (finding
// the owning processes) is started from it and delivered later with Table.Annotate.
type Enricher interface {
	Enrich(f *Flow)
}

// Refiner is an Enricher that can place, just before a flow's start is reported, an end
// it could not place at the flow's birth: a container's first packets can come before
// the registry knows the container. Refine runs under the table's lock: it must not
// block.
type Refiner interface {
	Refine(f *Flow)
}

// Config sets the table's bounds and timeouts. Zero fields take the defaults.
type Config struct {
	// MaxFlows bounds the table; past it the least recently active flow is evicted.
	MaxFlows int
	// Idle timeouts by protocol and state.
	TCPEstablished time.Duration // default 2 min
	TCPNew         time.Duration // a SYN never answered; default 20 s
	TCPClosed      time.Duration // after FIN both ways or RST; default 5 s
	UDP            time.Duration // default 30 s
	ICMP           time.Duration // default 10 s
	// ReportDelay is how long a new flow may wait for its application to be identified
	// before its start is reported anyway; default 500 ms.
	ReportDelay time.Duration
	// UpdateInterval is how often a long flow's counters are reported; default 10 s.
	UpdateInterval time.Duration
	// NewInspector makes the DPI state of a new flow; nil disables DPI.
	NewInspector func() Inspector
	// Enricher identifies the ends of new flows; nil leaves them as plain addresses.
	Enricher Enricher
}

func (c *Config) setDefaults() {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	if c.MaxFlows <= 0 {
		c.MaxFlows = 262144
	}
	def(&c.TCPEstablished, 2*time.Minute)
	def(&c.TCPNew, 20*time.Second)
	def(&c.TCPClosed, 5*time.Second)
	def(&c.UDP, 30*time.Second)
	def(&c.ICMP, 10*time.Second)
	def(&c.ReportDelay, 500*time.Millisecond)
	def(&c.UpdateInterval, 10*time.Second)
}

// Flow is one connection in the table. Its fields are guarded by the shard lock of the
// table that holds it; outside the table use Record snapshots.
type Flow struct {
	ID        uint64
	Key       Key
	Client    netip.AddrPort
	Server    netip.AddrPort
	Initiator Initiator
	State     State
	// Packets and Bytes by direction: [0] client to server, [1] server to client.
	Packets [2]uint64
	Bytes   [2]uint64
	First   int64 // unix nanoseconds
	Last    int64
	// Ends as identified by the Enricher.
	ClientEnd, ServerEnd Endpoint

	app     dpi.App
	detail  *dpi.Detail
	insp    Inspector
	fin     [2]bool
	started bool  // start reported
	removed bool  // no longer in the table
	waiting int   // annotations promised by the Enricher and not yet delivered
	updated int64 // when last reported
	sent    [2]uint64
	prev    *Flow // LRU: towards most recent
	next    *Flow // LRU: towards least recent
}

// App returns the flow's application so far.
func (f *Flow) App() dpi.App { return f.app }

// Stats are the table's counters.
type Stats struct {
	Active    int    `json:"active"`
	Created   uint64 `json:"created"`
	Evicted   uint64 `json:"evicted"`
	Expired   uint64 `json:"expired"`
	Packets   uint64 `json:"packets"`
	Bytes     uint64 `json:"bytes"`
	MaxFlows  int    `json:"max_flows"`
	Inspected uint64 `json:"inspected_packets"`
	// Unreported counts evicted flows whose end could not be reported (flood).
	Unreported uint64 `json:"unreported"`
	// InspectPanics counts flows whose DPI panicked (a parser bug; the flow stays unknown).
	InspectPanics uint64 `json:"inspect_panics"`
}

const shardCount = 64

type shard struct {
	mu      sync.Mutex
	flows   map[Key]*Flow
	head    *Flow // most recently active
	tail    *Flow // least recently active
	max     int
	pending []*Flow    // flows whose start is not reported yet
	gone    []goneFlow // flows evicted since the last sweep
	stats   Stats
	_       [64]byte // keep shards' locks on separate cache lines
}

// Table is the flow table. Add is safe for concurrent use by many capture goroutines;
// Sweep must be called from one goroutine at a time.
type Table struct {
	cfg    Config
	seed   maphash.Seed
	nextID atomic.Uint64
	shards [shardCount]shard
}

// NewTable returns an empty table.
func NewTable(cfg Config) *Table {
	cfg.setDefaults()
	t := &Table{cfg: cfg, seed: maphash.MakeSeed()}
	per := max(cfg.MaxFlows/shardCount, 1)
	for i := range t.shards {
		t.shards[i].flows = make(map[Key]*Flow)
		t.shards[i].max = per
	}
	return t
}

func (t *Table) shardOf(k *Key) *shard {
	// Both ends' addresses and ports, mixed so that one busy server's flows spread out.
	a, b := k.A.Addr().As16(), k.B.Addr().As16()
	var h maphash.Hash
	h.SetSeed(t.seed)
	h.Write(a[:])
	h.Write(b[:])
	h.WriteByte(byte(k.A.Port()))
	h.WriteByte(byte(k.A.Port() >> 8))
	h.WriteByte(byte(k.B.Port()))
	h.WriteByte(byte(k.B.Port() >> 8))
	return &t.shards[h.Sum64()%shardCount]
}

// Add accounts one packet, seen at ts (unix nanoseconds), creating its flow when it is the
// first. The packet's payload is inspected while the flow's application is not settled.
func (t *Table) Add(p *Packet, ts int64) {
	k := keyOf(p)
	s := t.shardOf(&k)
	s.mu.Lock()
	s.stats.Packets++
	s.stats.Bytes += uint64(p.Length)
	f := s.flows[k]
	if f == nil {
		f = t.create(s, &k, p, ts)
	} else {
		s.touch(f)
	}
	dir := 0 // client to server
	if p.Src == f.Server {
		dir = 1
	}
	f.Packets[dir]++
	f.Bytes[dir] += uint64(p.Length)
	f.Last = ts
	if p.Proto == ProtoTCP {
		t.trackTCP(f, p, dir)
	} else if dir == 1 && f.State == StateNew {
		f.State = StateEstablished
	}
	if f.insp != nil && len(p.Payload) > 0 {
		s.stats.Inspected++
		tr := dpi.TCP
		if p.Proto == ProtoUDP {
			tr = dpi.UDP
		}
		seq := p.Seq
		if p.TCPFlags&FlagSYN != 0 {
			seq++ // data on a SYN (TCP Fast Open) starts after the SYN's own number
		}
		done, ok := feed(f.insp, tr, dpi.Direction(dir), seq, p.Payload)
		if !ok {
			s.stats.InspectPanics++
			f.insp = nil
			s.mu.Unlock()
			return
		}
		// The application may be known before inspection is done (it still completes
		// the detail from the other direction): the start is reported as soon as it is.
		if app := f.insp.App(); app != "" && app != f.app {
			f.app = app
			f.detail = f.insp.Detail()
		}
		if done && f.app != dpi.DNS {
			// DNS flows keep feeding the name cache; everything else stops here.
			f.insp = nil
		}
	}
	s.mu.Unlock()
}

// feed hands a payload to DPI. A parser bug must cost one flow its application, not the
// agent its life: a panic is recovered and reported as !ok.
func feed(in Inspector, tr dpi.Transport, dir dpi.Direction, seq uint32, payload []byte) (done, ok bool) {
	defer func() {
		if recover() != nil {
			done, ok = true, false
		}
	}()
	return in.Feed(tr, dir, seq, payload), true
}

func (t *Table) create(s *shard, k *Key, p *Packet, ts int64) *Flow {
	if len(s.flows) >= s.max {
		s.evict()
	}
	f := &Flow{ID: t.nextID.Add(1), Key: *k, First: ts, Last: ts, app: dpi.Unknown}
	f.Client, f.Server, f.Initiator = initiator(p)
	if t.cfg.NewInspector != nil && (p.Proto == ProtoTCP || p.Proto == ProtoUDP) {
		f.insp = t.cfg.NewInspector()
	}
	f.ClientEnd = Endpoint{IP: f.Client.Addr(), Port: f.Client.Port(), Kind: KindAddress}
	f.ServerEnd = Endpoint{IP: f.Server.Addr(), Port: f.Server.Port(), Kind: KindAddress}
	if t.cfg.Enricher != nil {
		t.cfg.Enricher.Enrich(f)
	}
	s.flows[*k] = f
	s.pushFront(f)
	s.pending = append(s.pending, f)
	s.stats.Created++
	return f
}

// initiator decides which end of a new flow is the client.
func initiator(p *Packet) (client, server netip.AddrPort, how Initiator) {
	switch p.Proto {
	case ProtoTCP:
		switch {
		case p.TCPFlags&(FlagSYN|FlagACK) == FlagSYN:
			return p.Src, p.Dst, InitiatorSYN
		case p.TCPFlags&(FlagSYN|FlagACK) == FlagSYN|FlagACK:
			return p.Dst, p.Src, InitiatorSYN
		}
		if serverSide(p.Src.Port(), p.Dst.Port()) {
			return p.Dst, p.Src, InitiatorPort
		}
		return p.Src, p.Dst, InitiatorPort
	case ProtoUDP:
		// The first datagram's sender is the client, unless it comes from what looks more
		// like a service port to an ephemeral one (the request was missed).
		if serverSide(p.Src.Port(), p.Dst.Port()) && isEphemeral(p.Dst.Port()) {
			return p.Dst, p.Src, InitiatorPort
		}
		return p.Src, p.Dst, InitiatorFirstPacket
	case ProtoICMP, ProtoICMPv6:
		if isEchoReply(p.Proto, p.ICMPType) {
			return p.Dst, p.Src, InitiatorFirstPacket
		}
	}
	return p.Src, p.Dst, InitiatorFirstPacket
}

func isEchoReply(proto, typ uint8) bool {
	return (proto == ProtoICMP && typ == 0) || (proto == ProtoICMPv6 && typ == 129)
}

// serverSide reports whether port a looks more like a service's port than port b.
func serverSide(a, b uint16) bool {
	switch {
	case a == b:
		return false
	case a < 1024 && b >= 1024:
		return true
	case b < 1024 && a >= 1024:
		return false
	case isEphemeral(b) && !isEphemeral(a):
		return true
	case isEphemeral(a) && !isEphemeral(b):
		return false
	}
	return a < b
}

// isEphemeral reports whether port is in the range Linux (32768-60999) and the IANA
// (49152-65535) hand out to clients.
func isEphemeral(port uint16) bool { return port >= 32768 }

func (t *Table) trackTCP(f *Flow, p *Packet, dir int) {
	fl := p.TCPFlags
	switch {
	case fl&FlagRST != 0:
		f.State = StateClosed
	case fl&FlagFIN != 0:
		f.fin[dir] = true
		if f.fin[0] && f.fin[1] {
			f.State = StateClosed
		} else {
			f.State = StateClosing
		}
	case f.State == StateNew && dir == 1:
		f.State = StateEstablished
	case f.State == StateNew && f.Initiator == InitiatorPort:
		// Joined mid-stream: no handshake will come.
		f.State = StateEstablished
	}
}

func (s *shard) pushFront(f *Flow) {
	f.prev, f.next = nil, s.head
	if s.head != nil {
		s.head.prev = f
	}
	s.head = f
	if s.tail == nil {
		s.tail = f
	}
}

func (s *shard) unlink(f *Flow) {
	if f.prev != nil {
		f.prev.next = f.next
	} else {
		s.head = f.next
	}
	if f.next != nil {
		f.next.prev = f.prev
	} else {
		s.tail = f.prev
	}
	f.prev, f.next = nil, nil
}

func (s *shard) touch(f *Flow) {
	if s.head == f {
		return
	}
	s.unlink(f)
	s.pushFront(f)
}

type goneFlow struct {
	f   *Flow
	why string
}

// evict pushes the least recently active flow out of a full shard. It is reported at the
// next Sweep; under a flood of new flows, reports beyond one shard's worth between sweeps
// are dropped (and counted) so that memory stays bounded.
func (s *shard) evict() {
	f := s.tail
	if f == nil {
		return
	}
	s.remove(f)
	s.stats.Evicted++
	if len(s.gone) < s.max {
		s.gone = append(s.gone, goneFlow{f: f, why: "evicted"})
	} else {
		s.stats.Unreported++
	}
}

func (s *shard) remove(f *Flow) {
	s.unlink(f)
	delete(s.flows, f.Key)
	f.removed = true
	f.insp = nil
}
