package agent

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vigil-sec/vigil/internal/capture"
	"github.com/vigil-sec/vigil/internal/dpi"
	"github.com/vigil-sec/vigil/internal/flow"
	"github.com/vigil-sec/vigil/internal/workload"
)

// Reporter receives flow events. ReportFlows is called from one goroutine, with events in
// the order they happened; it must not keep the slice.
type Reporter interface {
	ReportFlows(events []flow.Event)
}

// Owners finds the process that owns a socket in a network namespace.
type Owners interface {
	Lookup(ctx context.Context, ns workload.NetNS, proto uint8, local, remote netip.AddrPort) (flow.Process, bool)
}

// Config tunes the agent. Zero fields take the defaults.
type Config struct {
	Flows flow.Config
	Ring  capture.RingConfig
	// SweepInterval is how often flow starts are reported; expirations and updates are
	// checked every fifth sweep.
	SweepInterval time.Duration
	// MaxNames bounds the DNS name cache.
	MaxNames int
	// NewInspector makes the DPI state of a flow; nil means no application
	// identification. It is given the agent's DNS handler to call with every DNS
	// message the flow carries.
	NewInspector func(onDNS func(*dpi.DNSMessage)) flow.Inspector
}

type nowFunc func() time.Time

// Agent runs the data path on one host. Its methods are safe for concurrent use.
type Agent struct {
	cfg      Config
	reg      *workload.Registry
	owners   Owners
	reporter Reporter
	log      *slog.Logger
	table    *flow.Table
	names    *Names
	idx      atomic.Pointer[index]
	now      nowFunc

	mu    sync.Mutex
	rings map[int]*ringEntry // by host-side ifindex

	lookups     chan lookup
	decodeErrs  atomic.Uint64
	notIP       atomic.Uint64
	duplicates  atomic.Uint64
	control     atomic.Uint64
	lookupsLost atomic.Uint64
	detached    Stats // counters of rings already closed, guarded by mu
}

type ringEntry struct {
	ring     *capture.Ring
	workload string
	iface    workload.Interface
	mac      [6]byte
	cancel   context.CancelFunc
	done     chan struct{}
	dead     atomic.Bool // capture stopped on an error: reopen at the next reconcile
	// filtered is the set of senders the ring's kernel filter drops (guarded by Agent.mu).
	filtered   [][6]byte
	filteredOK bool
}

type lookup struct {
	attempt int // retries so far
	key     flow.Key
	client  bool // which end of the flow
	netns   workload.NetNS
	proto   uint8
	local   netip.AddrPort
	remote  netip.AddrPort
}

// New returns an agent over reg. owners may be nil (no process attribution).
func New(cfg Config, reg *workload.Registry, owners Owners, reporter Reporter, log *slog.Logger) *Agent {
	if cfg.SweepInterval <= 0 {
		cfg.SweepInterval = 200 * time.Millisecond
	}
	if cfg.MaxNames <= 0 {
		cfg.MaxNames = 65536
	}
	a := &Agent{
		cfg:      cfg,
		reg:      reg,
		owners:   owners,
		reporter: reporter,
		log:      log,
		names:    NewNames(cfg.MaxNames),
		now:      time.Now,
		rings:    map[int]*ringEntry{},
		lookups:  make(chan lookup, 4096),
	}
	a.idx.Store(buildIndex(nil))
	fc := cfg.Flows
	fc.Enricher = a
	if cfg.NewInspector != nil {
		onDNS := func(m *dpi.DNSMessage) { a.names.Learn(m, a.now()) }
		fc.NewInspector = func() flow.Inspector { return cfg.NewInspector(onDNS) }
	}
	a.table = flow.NewTable(fc)
	return a
}

// A lookup that finds no owner is tried again lookupRetries times, after lookupRetryDelay
// and twice that.
const (
	lookupRetries    = 2
	lookupRetryDelay = 150 * time.Millisecond
)

// lookupWorkers is how many socket lookups run at once; each is a netlink query and a
// /proc walk of the workload's processes.
const lookupWorkers = 4

// Run follows the registry, captures on every workload's veth, and reports flows until
// ctx ends.
func (a *Agent) Run(ctx context.Context) error {
	sub := a.reg.Subscribe(1024)
	defer sub.Close()
	var wg sync.WaitGroup
	defer wg.Wait()
	defer a.detachAll()

	wg.Add(1)
	go func() { defer wg.Done(); a.sweep(ctx) }()
	if a.owners != nil {
		for range lookupWorkers {
			wg.Add(1)
			go func() { defer wg.Done(); a.lookupLoop(ctx) }()
		}
	}
	// Reconciling now and then also reopens rings that stopped on an error.
	tick := time.NewTicker(30 * time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
			a.reconcile(ctx)
		case _, ok := <-sub.C:
			if !ok {
				if errors.Is(sub.Err(), workload.ErrLagged) {
					a.log.Warn("fell behind the workload registry; resubscribing")
					sub = a.reg.Subscribe(1024)
					continue
				}
				return nil
			}
			// Changes come in bursts (a resync); act on the registry as it stands.
			drain(sub.C)
			a.reconcile(ctx)
		}
	}
}

func drain(c <-chan workload.Change) {
	for {
		select {
		case _, ok := <-c:
			if !ok {
				return
			}
		default:
			return
		}
	}
}

// reconcile brings the index and the set of rings in line with the registry.
func (a *Agent) reconcile(ctx context.Context) {
	ws := a.reg.List()
	a.idx.Store(buildIndex(ws))

	type wantRing struct {
		workload string
		iface    workload.Interface
		mac      [6]byte
	}
	want := map[int]wantRing{}
	for _, w := range ws {
		if w.Kind != workload.KindContainer || w.SharesNetNSWith != "" {
			continue
		}
		for _, in := range w.Interfaces {
			e := wantRing{workload: w.ID, iface: in}
			if hw, err := parseMAC(in.MAC); err == nil {
				e.mac = hw
			}
			want[in.Ifindex] = e
		}
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	for ifindex, r := range a.rings {
		if w, ok := want[ifindex]; !ok || w.iface.Name != r.iface.Name || w.mac != r.mac || r.dead.Load() {
			a.detachLocked(ifindex, r)
		}
	}
	for ifindex, w := range want {
		if _, ok := a.rings[ifindex]; ok {
			continue
		}
		ring, err := capture.OpenRing(w.iface.Name, a.cfg.Ring)
		if err != nil {
			a.log.Warn("attach capture", "iface", w.iface.Name, "workload", w.workload, "err", err)
			continue
		}
		rctx, cancel := context.WithCancel(ctx)
		e := &ringEntry{ring: ring, workload: w.workload, iface: w.iface, mac: w.mac, cancel: cancel, done: make(chan struct{})}
		a.rings[ifindex] = e
		go a.capture(rctx, e)
		a.log.Debug("capture attached", "iface", w.iface.Name, "ifindex", ifindex, "workload", w.workload)
	}
	a.filterDuplicatesLocked()
}

// filterDuplicatesLocked has the kernel drop, on each ring, the frames that another ring
// captures already: those sent by another captured workload. Frames of a workload whose
// ring is not running are kept, so that every frame is captured once. The user-space
// check in capture stays for what slips through (a ring's filter is updated after the
// new ring opens; senders past capture.MaxDropSenders).
func (a *Agent) filterDuplicatesLocked() {
	var macs [][6]byte
	for _, e := range a.rings {
		if e.mac != ([6]byte{}) && !e.dead.Load() {
			macs = append(macs, e.mac)
		}
	}
	slices.SortFunc(macs, func(x, y [6]byte) int { return bytes.Compare(x[:], y[:]) })
	macs = slices.Compact(macs)
	for _, e := range a.rings {
		if e.mac == ([6]byte{}) || (slices.Equal(e.filtered, macs) && e.filteredOK) {
			continue
		}
		if err := e.ring.SetDropSenders(e.mac, macs); err != nil {
			a.log.Debug("capture filter", "iface", e.iface.Name, "err", err)
			e.filteredOK = false
			continue
		}
		e.filtered, e.filteredOK = macs, true
	}
}

func (a *Agent) capture(ctx context.Context, e *ringEntry) {
	defer close(e.done)
	var p flow.Packet
	err := e.ring.Run(ctx, func(f *capture.Frame) {
		if err := flow.Decode(f.Data, &p); err != nil {
			if errors.Is(err, flow.ErrNotIP) {
				a.notIP.Add(1)
			} else {
				a.decodeErrs.Add(1)
			}
			return
		}
		if p.Proto == flow.ProtoICMPv6 && isNeighbourControl(p.ICMPType) {
			a.control.Add(1)
			return
		}
		// Frames the workload sent carry its MAC. Anything else arrives at it; when the
		// sender is another captured workload, its own veth already counted the frame.
		if p.SrcMAC != e.mac {
			if _, dup := a.idx.Load().captured[p.Src.Addr()]; dup {
				a.duplicates.Add(1)
				return
			}
		}
		a.table.Add(&p, f.Timestamp)
	})
	if err != nil && !errors.Is(err, capture.ErrClosed) && ctx.Err() == nil {
		// Usually the interface went with its workload; if not, the next reconcile
		// opens a new ring.
		e.dead.Store(true)
		a.log.Debug("capture ended", "iface", e.iface.Name, "err", err)
	}
}

func (a *Agent) detachLocked(ifindex int, e *ringEntry) {
	e.cancel()
	<-e.done
	e.ring.Close()
	st := e.ring.Stats()
	a.detached.Packets += st.Packets
	a.detached.Drops += st.Drops
	delete(a.rings, ifindex)
	a.log.Debug("capture detached", "iface", e.iface.Name, "ifindex", ifindex, "workload", e.workload)
}

func (a *Agent) detachAll() {
	a.mu.Lock()
	defer a.mu.Unlock()
	for ifindex, e := range a.rings {
		a.detachLocked(ifindex, e)
	}
}

func (a *Agent) sweep(ctx context.Context) {
	t := time.NewTicker(a.cfg.SweepInterval)
	defer t.Stop()
	var batch []flow.Event
	emit := func(e flow.Event) { batch = append(batch, e) }
	for n := 1; ; n++ {
		select {
		case <-ctx.Done():
			a.table.Flush("shutdown", emit)
			a.report(batch)
			return
		case <-t.C:
		}
		a.table.Sweep(a.now().UnixNano(), n%5 == 0, emit)
		a.report(batch)
		batch = batch[:0]
	}
}

func (a *Agent) report(batch []flow.Event) {
	if len(batch) > 0 && a.reporter != nil {
		a.reporter.ReportFlows(batch)
	}
}

// Enrich implements flow.Enricher: it names both ends and asks for their processes.
func (a *Agent) Enrich(f *flow.Flow) {
	idx := a.idx.Load()
	var ci, si *endpointInfo
	f.ClientEnd, ci = idx.endpoint(f.Client, a.names, a.now)
	f.ServerEnd, si = idx.endpoint(f.Server, a.names, a.now)
	if a.owners == nil || (f.Key.Proto != flow.ProtoTCP && f.Key.Proto != flow.ProtoUDP) {
		return
	}
	if ci != nil && ci.kind == flow.KindWorkload {
		a.askOwner(f, lookup{key: f.Key, client: true, netns: ci.netns, proto: f.Key.Proto, local: f.Client, remote: f.Server})
	}
	if si != nil && si.kind == flow.KindWorkload {
		a.askOwner(f, lookup{key: f.Key, client: false, netns: si.netns, proto: f.Key.Proto, local: f.Server, remote: f.Client})
	}
}

// Refine implements flow.Refiner: an end that was only an internal address at the flow's
// birth is looked up again, since its workload may have been registered since.
func (a *Agent) Refine(f *flow.Flow) {
	if f.ClientEnd.Kind != flow.KindInternal && f.ServerEnd.Kind != flow.KindInternal {
		return
	}
	idx := a.idx.Load()
	if f.ClientEnd.Kind == flow.KindInternal {
		if e, ci := idx.endpoint(f.Client, a.names, a.now); e.Kind == flow.KindWorkload {
			f.ClientEnd = e
			a.askOwner(f, lookup{key: f.Key, client: true, netns: ci.netns, proto: f.Key.Proto, local: f.Client, remote: f.Server})
		}
	}
	if f.ServerEnd.Kind == flow.KindInternal {
		if e, si := idx.endpoint(f.Server, a.names, a.now); e.Kind == flow.KindWorkload {
			f.ServerEnd = e
			a.askOwner(f, lookup{key: f.Key, client: false, netns: si.netns, proto: f.Key.Proto, local: f.Server, remote: f.Client})
		}
	}
}

func (a *Agent) askOwner(f *flow.Flow, l lookup) {
	if a.owners == nil || (l.proto != flow.ProtoTCP && l.proto != flow.ProtoUDP) {
		return
	}
	select {
	case a.lookups <- l:
		f.Await()
	default:
		a.lookupsLost.Add(1)
	}
}

func (a *Agent) lookupLoop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case l := <-a.lookups:
			p, ok := a.owners.Lookup(ctx, l.netns, l.proto, l.local, l.remote)
			// Only the first answer is awaited: the flow's start is not held back for
			// the retries.
			a.table.Annotate(l.key, l.attempt == 0, func(f *flow.Flow) {
				if !ok {
					return
				}
				if l.client {
					f.ClientEnd.Process = &p
				} else {
					f.ServerEnd.Process = &p
				}
			})
			if !ok && l.attempt < lookupRetries {
				// The owner may not have been found because the scans were over their
				// CPU budget, or the socket was not yet accepted; while the flow lives,
				// a later report can still carry its process.
				l.attempt++
				time.AfterFunc(time.Duration(l.attempt)*lookupRetryDelay, func() {
					select {
					case a.lookups <- l:
					default:
						a.lookupsLost.Add(1)
					}
				})
			}
		}
	}
}

// Stats is the agent's data-path counters.
type Stats struct {
	Interfaces   int        `json:"interfaces"`
	Packets      uint64     `json:"packets"`
	Drops        uint64     `json:"drops"`
	DecodeErrors uint64     `json:"decode_errors"`
	NotIP        uint64     `json:"not_ip"`
	Duplicates   uint64     `json:"duplicates"`
	Control      uint64     `json:"icmpv6_control"`
	LookupsLost  uint64     `json:"process_lookups_lost"`
	DNSNames     int        `json:"dns_names"`
	Flows        flow.Stats `json:"flows"`
	PerInterface []IfStats  `json:"per_interface"`
}

// IfStats is one capture ring's counters.
type IfStats struct {
	Name     string `json:"name"`
	Ifindex  int    `json:"ifindex"`
	Workload string `json:"workload"`
	capture.Stats
}

// Stats reports the data path's counters.
func (a *Agent) Stats() Stats {
	a.mu.Lock()
	st := Stats{Packets: a.detached.Packets, Drops: a.detached.Drops}
	for ifindex, e := range a.rings {
		rs := e.ring.Stats()
		st.Packets += rs.Packets
		st.Drops += rs.Drops
		st.PerInterface = append(st.PerInterface, IfStats{Name: e.iface.Name, Ifindex: ifindex, Workload: e.workload, Stats: rs})
	}
	st.Interfaces = len(a.rings)
	a.mu.Unlock()
	st.DecodeErrors = a.decodeErrs.Load()
	st.NotIP = a.notIP.Load()
	st.Duplicates = a.duplicates.Load()
	st.Control = a.control.Load()
	st.LookupsLost = a.lookupsLost.Load()
	st.DNSNames = a.names.Len()
	st.Flows = a.table.Stats()
	return st
}

// isNeighbourControl reports ICMPv6 messages that run the link itself (multicast listener
// reports, router and neighbour discovery, redirects): every interface sends them, and
// as flows they would only bury the connections.
func isNeighbourControl(typ uint8) bool {
	return (typ >= 130 && typ <= 137) || typ == 143
}

func parseMAC(s string) ([6]byte, error) {
	var out [6]byte
	hw, err := net.ParseMAC(s)
	if err != nil || len(hw) != 6 {
		return out, fmt.Errorf("%q is not a 6-byte MAC address", s)
	}
	copy(out[:], hw)
	return out, nil
}
