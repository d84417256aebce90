package controller

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vigil-sec/vigil/internal/enforce"
	"github.com/vigil-sec/vigil/internal/flow"
	"github.com/vigil-sec/vigil/internal/policy"
	"github.com/vigil-sec/vigil/internal/workload"
)

// Kernel is where plans are applied; enforce's functions in production, a fake in tests.
type Kernel interface {
	Apply(p enforce.Plan) error
	Remove(netns string) error
	// CutDisallowed ends the tracked connections p does not permit (enforce.CutDisallowed).
	CutDisallowed(p enforce.Plan) (int, error)
	// ListenDenied calls fn with each packet the table in netns rejects and logs, until
	// ctx ends (enforce.ListenDenied).
	ListenDenied(ctx context.Context, netns string, fn func(enforce.Denied)) error
	// Reset aborts the TCP connection from local to remote in the namespace at netns,
	// whose inode is inode (procmon.DestroySocket).
	Reset(netns string, inode uint64, local, remote netip.AddrPort) error
}

// Enforcer makes the policy the law for workloads in Protect mode: for each it compiles an
// enforcement plan (the peers and ports it may talk to, in each direction) and has it
// applied in the workload's network namespace; when the workload leaves Protect, its
// table is removed. It reconciles whenever the workloads or the policy change (kick) and
// every ten seconds, and applies a plan only when it changed. The kernel keeps enforcing
// when Vigil stops; with failOpen, Stop removes every table instead.
type Enforcer struct {
	engine    *PolicyEngine
	workloads func() []workload.Workload
	kernel    Kernel
	log       *slog.Logger
	kick      chan struct{}

	mu       sync.Mutex
	applied  map[string]applied // by workload ID
	ctx      context.Context    // Run's; the deny listeners' parent
	onDenied func(enforce.Denied)
	wg       sync.WaitGroup // deny listeners

	resets        chan ResetRequest
	resetsDropped atomic.Uint64
}

type applied struct {
	netns  string
	inode  uint64
	hash   [32]byte
	plan   enforce.Plan
	listen context.CancelFunc // the deny listener, nil when the plan does not log
}

// OnDenied has fn called with every packet a protected workload's table rejects and
// logs. Call it before Run.
func (e *Enforcer) OnDenied(fn func(enforce.Denied)) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.onDenied = fn
}

// NewEnforcer returns an enforcer; Run starts it.
func NewEnforcer(engine *PolicyEngine, workloads func() []workload.Workload, kernel Kernel, log *slog.Logger) *Enforcer {
	return &Enforcer{engine: engine, workloads: workloads, kernel: kernel, log: log,
		kick: make(chan struct{}, 1), applied: map[string]applied{}, ctx: context.Background(),
		resets: make(chan ResetRequest, resetQueue)}
}

// Kick asks for a reconciliation soon; it never blocks.
func (e *Enforcer) Kick() {
	select {
	case e.kick <- struct{}{}:
	default:
	}
}

// Run reconciles until ctx ends. With failOpen it then removes every table it applied.
func (e *Enforcer) Run(ctx context.Context, failOpen bool) error {
	t := time.NewTicker(10 * time.Second)
	defer t.Stop()
	e.mu.Lock()
	e.ctx = ctx
	e.mu.Unlock()
	// The listeners and the reset worker end with ctx.
	defer e.wg.Wait()
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		e.runResets(ctx)
	}()
	e.Reconcile()
	for {
		select {
		case <-ctx.Done():
			if failOpen {
				e.removeAll()
			}
			return nil
		case <-e.kick:
		case <-t.C:
		}
		e.Reconcile()
	}
}

func (e *Enforcer) removeAll() {
	e.mu.Lock()
	defer e.mu.Unlock()
	for id, a := range e.applied {
		a.stopListening()
		if err := e.kernel.Remove(a.netns); err != nil {
			e.log.Warn("remove enforcement", "workload", id, "err", err)
		}
		delete(e.applied, id)
	}
	e.log.Info("enforcement removed (fail-open)")
}

// Reconcile brings the kernel in line with the policy and the workloads.
func (e *Enforcer) Reconcile() {
	ws := e.workloads()
	plans := e.Compile(ws)
	e.mu.Lock()
	defer e.mu.Unlock()
	for id, a := range e.applied {
		if _, ok := plans[id]; !ok {
			a.stopListening()
			if err := e.kernel.Remove(a.netns); err != nil {
				e.log.Debug("remove enforcement", "workload", id, "err", err)
			}
			delete(e.applied, id)
			e.log.Info("enforcement lifted", "workload", id)
		}
	}
	for id, p := range plans {
		b, _ := json.Marshal(p)
		h := sha256.Sum256(b)
		if a, ok := e.applied[id]; ok && a.hash == h && a.netns == p.NetNS {
			continue
		}
		if err := e.kernel.Apply(p); err != nil {
			e.log.Warn("apply enforcement", "workload", p.Workload, "err", err)
			continue
		}
		// Connections opened before, that the plan no longer permits, end now: the
		// table accepts established traffic before it looks at peers.
		cut, err := e.kernel.CutDisallowed(p)
		if err != nil {
			e.log.Warn("cut connections no longer allowed", "workload", p.Workload, "err", err)
		}
		prev := e.applied[id]
		a := applied{netns: p.NetNS, inode: p.Inode, hash: h, plan: p, listen: prev.listen}
		if prev.netns != p.NetNS || !p.Log {
			prev.stopListening()
			a.listen = nil
		}
		if a.listen == nil && p.Log {
			a.listen = e.listen(id, p.NetNS)
		}
		e.applied[id] = a
		e.log.Info("enforcement applied", "workload", p.Workload, "ingress", len(p.Ingress), "egress", len(p.Egress), "connections_cut", cut)
	}
}

func (a applied) stopListening() {
	if a.listen != nil {
		a.listen()
	}
}

// listen follows the deny log of the namespace at netns until the returned function is
// called or Run ends. Called with e.mu held.
func (e *Enforcer) listen(id, netns string) context.CancelFunc {
	ctx, cancel := context.WithCancel(e.ctx)
	fn := e.onDenied
	if fn == nil {
		fn = func(enforce.Denied) {}
	}
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		for {
			err := e.kernel.ListenDenied(ctx, netns, fn)
			if ctx.Err() != nil {
				return
			}
			if errors.Is(err, enforce.ErrNoNetNS) {
				return // the workload has gone; the next reconcile lifts its plan
			}
			e.log.Warn("deny log", "workload", id, "err", err)
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Second):
			}
		}
	}()
	return cancel
}

// ResetRequest asks for a denied connection to be aborted; Done, when set, is told the
// outcome: whether a protected end's table had let the connection through (only those
// are reset), and the error of the reset.
type ResetRequest struct {
	Flow flow.Record
	Done func(reset bool, err error)
}

// resetQueue bounds the resets waiting for the worker; under a flood of denied
// connections the excess is dropped (and counted), and those are the kernel's to refuse.
const resetQueue = 256

// Reset queues a denied connection to be aborted, without blocking. It is reset only when
// one of its ends is a protected workload whose table let it through: the table sees
// peers and ports, not applications or DNS names, so a connection the policy refuses on
// those grounds gets in and must be cut from outside. It reports false when the queue
// is full.
func (e *Enforcer) Reset(req ResetRequest) bool {
	select {
	case e.resets <- req:
		return true
	default:
		e.resetsDropped.Add(1)
		return false
	}
}

// runResets serves the reset queue until ctx ends.
func (e *Enforcer) runResets(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case req := <-e.resets:
			ok, err := e.reset(req.Flow)
			if req.Done != nil {
				req.Done(ok, err)
			}
		}
	}
}

// reset aborts r from the namespace of its protected end (the server's when both are)
// if that end's table permits it, and tells whether it did.
func (e *Enforcer) reset(r flow.Record) (bool, error) {
	if r.Proto != "tcp" {
		return false, nil
	}
	client := netip.AddrPortFrom(r.Client.IP.Unmap(), r.Client.Port)
	server := netip.AddrPortFrom(r.Server.IP.Unmap(), r.Server.Port)
	e.mu.Lock()
	srv, srvOK := e.applied[r.Server.Workload]
	cli, cliOK := e.applied[r.Client.Workload]
	e.mu.Unlock()
	switch {
	case r.Server.Workload != "" && srvOK && srv.plan.Permits(true, client.Addr(), 6, server.Port()):
		return true, e.kernel.Reset(srv.netns, srv.inode, server, client)
	case r.Client.Workload != "" && cliOK && cli.plan.Permits(false, server.Addr(), 6, server.Port()):
		return true, e.kernel.Reset(cli.netns, cli.inode, client, server)
	}
	return false, nil
}

// ResetsDropped counts the resets dropped because the queue was full.
func (e *Enforcer) ResetsDropped() uint64 { return e.resetsDropped.Load() }

// Compile returns the plan of every container in Protect mode, by workload ID.
func (e *Enforcer) Compile(ws []workload.Workload) map[string]enforce.Plan {
	pol := e.engine.Policy()
	ev := e.engine.eval.Load()
	// Every group (learned and custom) a workload belongs to, and the members of each.
	groupsOf := map[string][]string{}
	members := map[string][]netip.Addr{}
	var hostIPs []netip.Addr
	for _, w := range ws {
		if w.Kind == workload.KindHost {
			hostIPs = w.IPs
			continue
		}
		gs := []string{w.Group}
		if e.engine.subjects != nil {
			gs = ev.GroupsOf(SubjectOf(w), gs)
		}
		groupsOf[w.ID] = gs
		for _, g := range gs {
			members[g] = append(members[g], w.IPs...)
		}
	}
	peers := func(name string) []netip.Prefix {
		var addrs []netip.Addr
		switch {
		case name == policy.EndpointHost:
			addrs = hostIPs
		case name == policy.EndpointExternal || strings.HasPrefix(name, "external:"):
			// Names resolve to addresses that change; until the agent feeds them in,
			// an external rule allows every address.
			return []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0"), netip.MustParsePrefix("::/0")}
		case strings.HasPrefix(name, "address:"):
			if a, err := netip.ParseAddr(strings.TrimPrefix(name, "address:")); err == nil {
				addrs = []netip.Addr{a}
			}
		default:
			addrs = members[name]
		}
		out := make([]netip.Prefix, 0, len(addrs))
		for _, a := range addrs {
			out = append(out, netip.PrefixFrom(a, a.BitLen()))
		}
		return out
	}
	plans := map[string]enforce.Plan{}
	for _, w := range ws {
		if w.Kind != workload.KindContainer || w.SharesNetNSWith != "" || w.NetNS.Path == "" {
			continue
		}
		gs := groupsOf[w.ID]
		mode := policy.ModeDiscover
		for _, g := range gs {
			mode = policy.Stricter(mode, ev.ModeOf(g))
		}
		if mode != policy.ModeProtect {
			continue
		}
		p := enforce.Plan{Workload: w.Name, NetNS: w.NetNS.Path, Inode: w.NetNS.Inode, Log: true}
		for _, a := range w.IPs {
			p.Addrs = append(p.Addrs, a.Unmap())
		}
		for _, r := range pol.Rules {
			if r.Action != policy.ActionAllow {
				continue // deny is what a protected workload gets by default
			}
			if slices.Contains(gs, r.To) {
				p.Ingress = append(p.Ingress, allows(setName(r.From), peers(r.From), r.Ports)...)
			}
			if slices.Contains(gs, r.From) {
				p.Egress = append(p.Egress, allows(setName(r.To), peers(r.To), r.Ports)...)
			}
		}
		p.Ingress, p.Egress = merge("in", p.Ingress), merge("out", p.Egress)
		plans[w.ID] = p
	}
	return plans
}

// merge folds the allows that share protocol and ports into one, whose set is the union
// of their peers: a server allowed from many groups on one port is one rule, not one per
// group (a thousand rules would not fit one netlink batch), and groups scaling still only
// change set elements.
func merge(dir string, in []enforce.Allow) []enforce.Allow {
	type key struct {
		proto       uint8
		first, last uint16
	}
	byKey := map[key]int{}
	var out []enforce.Allow
	for _, a := range in {
		k := key{a.Proto, a.PortFirst, a.PortLast}
		i, ok := byKey[k]
		if !ok {
			byKey[k] = len(out)
			out = append(out, enforce.Allow{Set: fmt.Sprintf("%s_%d_%d_%d", dir, a.Proto, a.PortFirst, a.PortLast),
				Proto: a.Proto, PortFirst: a.PortFirst, PortLast: a.PortLast, Peers: slices.Clone(a.Peers)})
			continue
		}
		out[i].Peers = append(out[i].Peers, a.Peers...)
	}
	for i := range out {
		slices.SortFunc(out[i].Peers, func(a, b netip.Prefix) int {
			if c := a.Addr().Compare(b.Addr()); c != 0 {
				return c
			}
			return a.Bits() - b.Bits()
		})
		out[i].Peers = slices.Compact(out[i].Peers)
	}
	return out
}

func allows(set string, peers []netip.Prefix, ports []policy.PortRange) []enforce.Allow {
	var out []enforce.Allow
	for _, pr := range ports {
		a := enforce.Allow{Set: set, Peers: peers}
		switch pr.Proto {
		case policy.ProtoTCP:
			a.Proto = 6
		case policy.ProtoUDP:
			a.Proto = 17
		case policy.ProtoAny:
			out = append(out, a) // any protocol, any port
			continue
		default:
			continue // ICMP and others: not expressible per port; left to the default
		}
		if !pr.IsAny() {
			a.PortFirst, a.PortLast = pr.First, pr.Last
		}
		out = append(out, a)
	}
	return out
}

// setName turns an endpoint name into an nftables set name.
func setName(endpoint string) string {
	var b strings.Builder
	b.WriteString("g_")
	for _, r := range endpoint {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_' {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	s := b.String()
	if len(s) > 200 {
		sum := sha256.Sum256([]byte(endpoint))
		s = s[:180] + "_" + hex.EncodeToString(sum[:8])
	}
	return s
}
