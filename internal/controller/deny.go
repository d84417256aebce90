package controller

import (
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/vigil-sec/vigil/internal/enforce"
	"github.com/vigil-sec/vigil/internal/flow"
	"github.com/vigil-sec/vigil/internal/policy"
)

// Where a denied connection was seen. A connection refused on its way into a protected
// workload is seen twice, by capture on the host side of the veth and by the table's
// log; one refused on its way out never reaches the veth and is known only from the log.
const (
	seenByCapture = "capture"
	seenByKernel  = "kernel"
)

// denyMemory is how long a denied connection's 5-tuple is remembered, so that the two
// sources of one refusal count once.
const denyMemory = time.Minute

type fiveTuple struct {
	proto          string
	client, server netip.AddrPort
}

func tupleOf(r *flow.Record) fiveTuple {
	return fiveTuple{r.Proto, netip.AddrPortFrom(r.Client.IP.Unmap(), r.Client.Port), netip.AddrPortFrom(r.Server.IP.Unmap(), r.Server.Port)}
}

type deniedTuple struct {
	at    time.Time
	event uint64
}

// SetReset gives the engine the way to abort a connection that a protected workload's
// table let through but the policy refuses once its application is known (see
// Enforcer.Reset).
func (e *PolicyEngine) SetReset(reset func(r flow.Record, done func(reset bool, err error))) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.reset = reset
}

// Denied turns a packet a protected workload's table rejected into a deny violation,
// counted once with what capture saw of the same connection. classify identifies an
// end as the flow path does.
func (e *PolicyEngine) Denied(d enforce.Denied, classify func(netip.AddrPort) flow.Endpoint) {
	r := flow.Record{Proto: protoName(d.Proto), Client: classify(d.Src), Server: classify(d.Dst),
		FirstSeen: d.Time, LastSeen: d.Time}
	ev := e.eval.Load()
	c := e.conn(ev, &r)
	v := ev.Evaluate(c)
	if v.Action != policy.ActionDeny {
		// The table predates a policy change that allows it now; the kernel refused it
		// all the same.
		v = policy.Verdict{Action: policy.ActionDeny, Reason: "refused by the workload's table before a policy change reached it", Mode: v.Mode}
	}
	r.Verdict, r.RuleID = v.Action.String(), v.RuleID
	e.violation(c, v, &r, seenByKernel)
}

func protoName(p uint8) string {
	switch p {
	case 6:
		return "tcp"
	case 17:
		return "udp"
	case 1:
		return "icmp"
	case 58:
		return "icmpv6"
	}
	return fmt.Sprintf("ip-%d", p)
}

// Rejudge judges again a flow whose application DPI has just identified, when it was
// allowed at first only provisionally (a rule naming applications matched while the
// application was unknown). A connection that the rule does not cover after all is a
// violation; in Protect mode it is also reset, since the table, which cannot see
// applications, let it through.
func (e *PolicyEngine) Rejudge(r *flow.Record) {
	ev := e.eval.Load()
	c := e.conn(ev, r)
	v := ev.Evaluate(c)
	if v.Action == policy.ActionAllow || v.Action == policy.ActionLearn {
		if v.Action == policy.ActionAllow {
			r.RuleID = v.RuleID
		}
		return
	}
	prevRule := r.RuleID
	r.Verdict, r.RuleID = v.Action.String(), v.RuleID
	v.Reason = fmt.Sprintf("application %s is not what rule %s allows", r.App, prevRule)
	id := e.violationWith(c, v, r, seenByCapture, map[string]any{"provisional_rule": prevRule})
	if v.Action == policy.ActionDeny {
		e.resetAsync(r, id)
	}
}

// ErrNoConnection is what a reset function returns, wrapped, when the connection is
// already gone.
var ErrNoConnection = errors.New("no such connection")

// resetAsync asks for a denied TCP connection to be aborted, in case the table let it
// through (its application or DNS name is not what its rule allows, or it predates the
// table), and notes a reset on the violation event id. It does not block.
func (e *PolicyEngine) resetAsync(r *flow.Record, id uint64) {
	e.mu.Lock()
	reset := e.reset
	e.mu.Unlock()
	if reset == nil || r.Proto != "tcp" {
		return
	}
	reset(*r, func(ok bool, err error) {
		if errors.Is(err, ErrNoConnection) || err == nil && !ok {
			return
		}
		if err != nil {
			e.log.Warn("reset connection", "flow", r.ID, "err", err)
		}
		e.events.Update(id, func(ev *Event) {
			if err != nil {
				ev.Detail["reset_error"] = err.Error()
			} else {
				ev.Detail["reset"] = true
			}
		})
	})
}
