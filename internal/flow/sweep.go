package flow

import (
	"slices"
	"time"

	"github.com/vigil-sec/vigil/internal/dpi"
)

// EventType says what an Event reports.
type EventType string

const (
	EventStart  EventType = "start"  // a new flow, once its application is known or after ReportDelay
	EventUpdate EventType = "update" // a long flow's counters, every UpdateInterval
	EventEnd    EventType = "end"    // the flow closed, timed out or was evicted; the record is final
)

// Event is a flow report.
type Event struct {
	Type   EventType `json:"type"`
	Record Record    `json:"flow"`
}

// Await tells the table that the Enricher started work whose result will come through
// Annotate; the flow's start is then held back (up to ReportDelay) until it has come.
// Call it only from Enrich.
func (f *Flow) Await() { f.waiting++ }

// Annotate runs fn on the flow with key k, under the table's lock, if the flow is still
// there. done says that fn delivers one awaited result (see Await).
func (t *Table) Annotate(k Key, done bool, fn func(f *Flow)) {
	s := t.shardOf(&k)
	s.mu.Lock()
	defer s.mu.Unlock()
	f := s.flows[k]
	if f == nil {
		return
	}
	fn(f)
	if done && f.waiting > 0 {
		f.waiting--
	}
}

// Sweep reports what changed since the last call through emit: starts of flows that are
// ready, ends of evicted flows, and, when full is set, expirations and periodic updates
// (which walk the whole table). now is in unix nanoseconds. emit is called without any
// lock held.
func (t *Table) Sweep(now int64, full bool, emit func(Event)) {
	var out []Event
	for i := range t.shards {
		out = t.shards[i].sweep(&t.cfg, now, full, out[:0])
		for _, ev := range out {
			emit(ev)
		}
	}
}

func (s *shard) sweep(cfg *Config, now int64, full bool, out []Event) []Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, g := range s.gone {
		refine(cfg, g.f)
		out = append(out, Event{Type: EventEnd, Record: g.f.record(g.why)})
	}
	clear(s.gone)
	s.gone = s.gone[:0]

	delay := cfg.ReportDelay.Nanoseconds()
	keep := s.pending[:0]
	for _, f := range s.pending {
		switch {
		case f.removed:
		case (f.insp == nil || f.app != dpi.Unknown) && f.waiting == 0, now-f.First >= delay, f.State == StateClosed:
			refine(cfg, f)
			f.started = true
			f.updated = now
			f.sent = f.Packets
			out = append(out, Event{Type: EventStart, Record: f.record("")})
		default:
			keep = append(keep, f)
		}
	}
	clear(s.pending[len(keep):])
	s.pending = keep

	if !full {
		return out
	}
	update := cfg.UpdateInterval.Nanoseconds()
	for f := s.tail; f != nil; {
		prev := f.prev
		if now-f.Last >= timeout(cfg, f).Nanoseconds() {
			why := "timeout"
			if f.State == StateClosed {
				why = "closed"
			}
			s.remove(f)
			s.stats.Expired++
			refine(cfg, f)
			out = append(out, Event{Type: EventEnd, Record: f.record(why)})
		} else if f.started && now-f.updated >= update && f.Packets != f.sent {
			refine(cfg, f)
			f.updated = now
			f.sent = f.Packets
			out = append(out, Event{Type: EventUpdate, Record: f.record("")})
		}
		f = prev
	}
	return out
}

// refine gives the Enricher, when it can, another chance to place the flow's ends before
// a report.
func refine(cfg *Config, f *Flow) {
	if r, ok := cfg.Enricher.(Refiner); ok {
		r.Refine(f)
	}
}

func timeout(cfg *Config, f *Flow) time.Duration {
	switch f.Key.Proto {
	case ProtoTCP:
		switch f.State {
		case StateClosed:
			return cfg.TCPClosed
		case StateNew:
			return cfg.TCPNew
		}
		return cfg.TCPEstablished
	case ProtoUDP:
		return cfg.UDP
	}
	return cfg.ICMP
}

// Flush reports every flow still in the table as ended (why: "shutdown" or "eof") and
// empties the table.
func (t *Table) Flush(why string, emit func(Event)) {
	for i := range t.shards {
		s := &t.shards[i]
		s.mu.Lock()
		var out []Event
		for _, g := range s.gone {
			out = append(out, Event{Type: EventEnd, Record: g.f.record(g.why)})
		}
		s.gone = nil
		for f := s.tail; f != nil; {
			prev := f.prev
			s.remove(f)
			out = append(out, Event{Type: EventEnd, Record: f.record(why)})
			f = prev
		}
		s.pending = nil
		s.mu.Unlock()
		for _, ev := range out {
			emit(ev)
		}
	}
}

// Stats adds up the shards' counters.
func (t *Table) Stats() Stats {
	var st Stats
	for i := range t.shards {
		s := &t.shards[i]
		s.mu.Lock()
		st.Active += len(s.flows)
		st.Created += s.stats.Created
		st.Evicted += s.stats.Evicted
		st.Expired += s.stats.Expired
		st.Packets += s.stats.Packets
		st.Bytes += s.stats.Bytes
		st.Inspected += s.stats.Inspected
		st.Unreported += s.stats.Unreported
		st.InspectPanics += s.stats.InspectPanics
		s.mu.Unlock()
	}
	st.MaxFlows = t.cfg.MaxFlows
	return st
}

// record snapshots the flow; it copies everything that may change later.
func (f *Flow) record(end string) Record {
	r := Record{
		ID:            f.ID,
		Proto:         ProtoName(f.Key.Proto),
		Client:        f.ClientEnd,
		Server:        f.ServerEnd,
		App:           f.app,
		PortHint:      PortHint(f.Key.Proto, f.Server.Port()),
		Initiator:     f.Initiator,
		Packets:       f.Packets[0] + f.Packets[1],
		Bytes:         f.Bytes[0] + f.Bytes[1],
		ClientPackets: f.Packets[0],
		ClientBytes:   f.Bytes[0],
		ServerPackets: f.Packets[1],
		ServerBytes:   f.Bytes[1],
		FirstSeen:     time.Unix(0, f.First).UTC(),
		LastSeen:      time.Unix(0, f.Last).UTC(),
		State:         f.State,
		End:           end,
	}
	if f.Key.Proto == ProtoICMP || f.Key.Proto == ProtoICMPv6 {
		// ICMP has no ports; the echo identifier stood in for them in the key only.
		r.Client.Port, r.Server.Port = 0, 0
	}
	if r.Client.Process != nil {
		p := *r.Client.Process
		r.Client.Process = &p
	}
	if r.Server.Process != nil {
		p := *r.Server.Process
		r.Server.Process = &p
	}
	if f.detail != nil {
		d := *f.detail
		d.ALPN = slices.Clone(d.ALPN)
		if d.DNS != nil {
			m := *d.DNS
			m.Answers = slices.Clone(m.Answers)
			d.DNS = &m
		}
		r.AppDetail = &d
	}
	return r
}
