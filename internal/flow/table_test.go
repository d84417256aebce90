package flow

import (
	"encoding/binary"
	"encoding/json"
	"net/netip"
	"testing"
	"time"

	"github.com/vigil-sec/vigil/internal/dpi"
)

// fakeInspector settles on HTTP at the first client payload starting with "GET".
type fakeInspector struct {
	app  dpi.App
	seen int
}

func (f *fakeInspector) Feed(t dpi.Transport, dir dpi.Direction, seq uint32, payload []byte) bool {
	f.seen++
	if dir == dpi.FromClient && len(payload) >= 3 && string(payload[:3]) == "GET" {
		f.app = dpi.HTTP
		return true
	}
	if f.seen >= 4 {
		f.app = dpi.Unknown
		return true
	}
	return false
}
func (f *fakeInspector) App() dpi.App { return f.app }
func (f *fakeInspector) Detail() *dpi.Detail {
	if f.app == dpi.HTTP {
		return &dpi.Detail{Method: "GET", Path: "/"}
	}
	return nil
}

func pkt(t *testing.T, fr []byte) *Packet {
	t.Helper()
	var p Packet
	if err := Decode(fr, &p); err != nil {
		t.Fatal(err)
	}
	return &p
}

func collect(tb *Table, now int64, full bool) []Event {
	var evs []Event
	tb.Sweep(now, full, func(e Event) { evs = append(evs, e) })
	return evs
}

const sec = int64(time.Second)

func TestTableTCPLifecycle(t *testing.T) {
	tb := NewTable(Config{NewInspector: func() Inspector { return &fakeInspector{} }})
	c2s := func(seq uint32, flags uint8, data string) *Packet {
		return pkt(t, frame(etherTypeIPv4, nil, ipv4(ProtoTCP, ipB, ipA, 0, tcp(40000, 80, seq, flags, data))))
	}
	s2c := func(seq uint32, flags uint8, data string) *Packet {
		return pkt(t, frame(etherTypeIPv4, nil, ipv4(ProtoTCP, ipA, ipB, 0, tcp(80, 40000, seq, flags, data))))
	}
	// The client's address (10.0.0.2) sorts after the server's: direction must come from
	// the SYN, not from the key's order.
	tb.Add(c2s(100, FlagSYN, ""), 1*sec)
	tb.Add(s2c(500, FlagSYN|FlagACK, ""), 1*sec)
	if evs := collect(tb, 1*sec, false); len(evs) != 0 {
		t.Fatalf("start reported before the application was known or the delay passed: %+v", evs)
	}
	tb.Add(c2s(101, FlagACK|FlagPSH, "GET / HTTP/1.1\r\n\r\n"), 1*sec+1)
	evs := collect(tb, 1*sec+2, false)
	if len(evs) != 1 || evs[0].Type != EventStart {
		t.Fatalf("events = %+v, want one start", evs)
	}
	r := evs[0].Record
	if r.Client.IP != netip.AddrFrom4(ipB) || r.Client.Port != 40000 || r.Server.Port != 80 || r.Initiator != InitiatorSYN {
		t.Errorf("client %v:%d server %v:%d initiator %v", r.Client.IP, r.Client.Port, r.Server.IP, r.Server.Port, r.Initiator)
	}
	if r.App != dpi.HTTP || r.AppDetail == nil || r.AppDetail.Method != "GET" || r.State != StateEstablished || r.PortHint != "http" {
		t.Errorf("app %q detail %+v state %v hint %q", r.App, r.AppDetail, r.State, r.PortHint)
	}
	if r.ClientPackets != 2 || r.ServerPackets != 1 || r.Proto != "tcp" {
		t.Errorf("packets %d/%d proto %s", r.ClientPackets, r.ServerPackets, r.Proto)
	}

	// Counters change: an update comes after UpdateInterval, only on a full sweep.
	tb.Add(s2c(501, FlagACK|FlagPSH, "HTTP/1.1 200 OK\r\n\r\n"), 2*sec)
	if evs := collect(tb, 12*sec, true); len(evs) != 1 || evs[0].Type != EventUpdate || evs[0].Record.ServerPackets != 2 {
		t.Fatalf("events = %+v, want one update", evs)
	}
	if evs := collect(tb, 23*sec, true); len(evs) != 0 {
		t.Fatalf("an update without new packets: %+v", evs)
	}

	tb.Add(c2s(120, FlagFIN|FlagACK, ""), 30*sec)
	tb.Add(s2c(520, FlagFIN|FlagACK, ""), 30*sec)
	for _, e := range collect(tb, 34*sec, true) {
		if e.Type == EventEnd {
			t.Fatalf("closed flow ended before its timeout: %+v", e)
		}
	}
	evs = collect(tb, 36*sec, true)
	if len(evs) != 1 || evs[0].Type != EventEnd || evs[0].Record.End != "closed" || evs[0].Record.State != StateClosed {
		t.Fatalf("events = %+v, want the end of a closed flow", evs)
	}
	if st := tb.Stats(); st.Active != 0 || st.Created != 1 || st.Expired != 1 || st.Packets != 6 {
		t.Errorf("stats = %+v", st)
	}
}

func TestTableReportDelayForUnknown(t *testing.T) {
	tb := NewTable(Config{NewInspector: func() Inspector { return &fakeInspector{} }})
	tb.Add(pkt(t, frame(etherTypeIPv4, nil, ipv4(ProtoTCP, ipA, ipB, 0, tcp(40000, 9999, 1, FlagSYN, "")))), 0)
	if evs := collect(tb, int64(400*time.Millisecond), false); len(evs) != 0 {
		t.Fatalf("reported before the delay: %+v", evs)
	}
	evs := collect(tb, int64(600*time.Millisecond), false)
	if len(evs) != 1 || evs[0].Record.App != dpi.Unknown {
		t.Fatalf("events = %+v, want a start with app unknown", evs)
	}
	// A SYN never answered times out after TCPNew.
	evs = collect(tb, 21*sec, true)
	if len(evs) != 1 || evs[0].Type != EventEnd || evs[0].Record.End != "timeout" || evs[0].Record.State != StateNew {
		t.Fatalf("events = %+v", evs)
	}
}

func TestInitiatorWithoutHandshake(t *testing.T) {
	tests := []struct {
		name   string
		fr     []byte
		client string
		how    Initiator
	}{
		{"reply seen first: service port is the server", frame(etherTypeIPv4, nil, ipv4(ProtoTCP, ipA, ipB, 0, tcp(5432, 51000, 1, FlagACK, "x"))), "10.0.0.2:51000", InitiatorPort},
		{"request seen first", frame(etherTypeIPv4, nil, ipv4(ProtoTCP, ipA, ipB, 0, tcp(51000, 6379, 1, FlagACK, "x"))), "10.0.0.1:51000", InitiatorPort},
		{"syn-ack seen first", frame(etherTypeIPv4, nil, ipv4(ProtoTCP, ipA, ipB, 0, tcp(8080, 40000, 1, FlagSYN|FlagACK, ""))), "10.0.0.2:40000", InitiatorSYN},
		{"udp first packet", frame(etherTypeIPv4, nil, ipv4(ProtoUDP, ipA, ipB, 0, udp(45000, 53, "q"))), "10.0.0.1:45000", InitiatorFirstPacket},
		{"udp answer seen first", frame(etherTypeIPv4, nil, ipv4(ProtoUDP, ipA, ipB, 0, udp(53, 45000, "a"))), "10.0.0.2:45000", InitiatorPort},
		{"icmp echo reply first", frame(etherTypeIPv4, nil, ipv4(ProtoICMP, ipA, ipB, 0, []byte{0, 0, 0, 0, 0, 9, 0, 1})), "10.0.0.2:9", InitiatorFirstPacket},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, _, how := initiator(pkt(t, tt.fr))
			if c.String() != tt.client || how != tt.how {
				t.Errorf("client %s (%v), want %s (%v)", c, how, tt.client, tt.how)
			}
		})
	}
}

func TestTableBoundedUnderFlood(t *testing.T) {
	const max = 1024
	tb := NewTable(Config{MaxFlows: max})
	base := frame(etherTypeIPv4, nil, ipv4(ProtoUDP, ipA, ipB, 0, udp(1, 2, "")))
	var p Packet
	for i := range 50000 {
		binary.BigEndian.PutUint16(base[14+20:], uint16(i))
		binary.BigEndian.PutUint16(base[14+20+2:], uint16(i>>16)+7)
		base[14+12+3] = byte(i >> 8)
		if err := Decode(base, &p); err != nil {
			t.Fatal(err)
		}
		tb.Add(&p, int64(i))
	}
	st := tb.Stats()
	if st.Active > max || st.Created != 50000 || st.Evicted != 50000-uint64(st.Active) {
		t.Fatalf("stats after flood = %+v, want at most %d active and every other flow evicted", st, max)
	}
	var ends int
	tb.Sweep(50001, false, func(e Event) {
		if e.Type == EventEnd {
			ends++
		}
	})
	if uint64(ends)+tb.Stats().Unreported != st.Evicted {
		t.Errorf("%d ends reported + %d unreported != %d evicted", ends, tb.Stats().Unreported, st.Evicted)
	}
}

func TestAnnotateHoldsStart(t *testing.T) {
	var seen *Flow
	tb := NewTable(Config{Enricher: enrichFunc(func(f *Flow) { f.Await(); seen = f })})
	p := pkt(t, frame(etherTypeIPv4, nil, ipv4(ProtoUDP, ipA, ipB, 0, udp(45000, 53, "q"))))
	tb.Add(p, 0)
	if evs := collect(tb, 1, false); len(evs) != 0 {
		t.Fatalf("start reported while an annotation is awaited: %+v", evs)
	}
	tb.Annotate(seen.Key, true, func(f *Flow) { f.ClientEnd.Process = &Process{PID: 42, Comm: "dig"} })
	evs := collect(tb, 2, false)
	if len(evs) != 1 || evs[0].Record.Client.Process == nil || evs[0].Record.Client.Process.Comm != "dig" {
		t.Fatalf("events = %+v, want a start with the client process", evs)
	}
}

type enrichFunc func(*Flow)

func (e enrichFunc) Enrich(f *Flow) { e(f) }

func TestFlush(t *testing.T) {
	tb := NewTable(Config{})
	tb.Add(pkt(t, frame(etherTypeIPv4, nil, ipv4(ProtoUDP, ipA, ipB, 0, udp(1, 2, "")))), 0)
	tb.Add(pkt(t, frame(etherTypeIPv4, nil, ipv4(ProtoUDP, ipA, ipB, 0, udp(3, 4, "")))), 0)
	var ends int
	tb.Flush("eof", func(e Event) {
		if e.Type == EventEnd && e.Record.End == "eof" {
			ends++
		}
	})
	if ends != 2 || tb.Stats().Active != 0 {
		t.Fatalf("flush reported %d ends, %d flows left", ends, tb.Stats().Active)
	}
}

// BenchmarkEstablished is the per-packet path for a flow already in the table: decode,
// lookup, counters. It must not allocate.
func BenchmarkEstablished(b *testing.B) {
	tb := NewTable(Config{})
	frames := make([][]byte, 64)
	for i := range frames {
		frames[i] = frame(etherTypeIPv4, nil, ipv4(ProtoTCP, ipA, [4]byte{10, 0, 1, byte(i)}, 0, tcp(40000+uint16(i), 443, 1, FlagACK, "................................................................................................................................................................")))
	}
	var p Packet
	for i, fr := range frames {
		_ = Decode(fr, &p)
		tb.Add(&p, int64(i))
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		fr := frames[i&63]
		if err := Decode(fr, &p); err != nil {
			b.Fatal(err)
		}
		tb.Add(&p, int64(i))
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "pkts/s")
}

// BenchmarkNewFlow is the first-packet path: a new flow with DPI state on every packet.
func BenchmarkNewFlow(b *testing.B) {
	tb := NewTable(Config{MaxFlows: 1 << 16, NewInspector: func() Inspector { return &fakeInspector{} }})
	fr := frame(etherTypeIPv4, nil, ipv4(ProtoTCP, ipA, ipB, 0, tcp(40000, 80, 1, FlagPSH|FlagACK, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")))
	var p Packet
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		binary.BigEndian.PutUint16(fr[14+20:], uint16(i))
		fr[14+12+2], fr[14+12+3] = byte(i>>24), byte(i>>16)
		if err := Decode(fr, &p); err != nil {
			b.Fatal(err)
		}
		tb.Add(&p, int64(i))
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "pkts/s")
}

func TestRecordJSONRoundTrip(t *testing.T) {
	r := Record{ID: 7, Proto: "tcp", State: StateClosing, Initiator: InitiatorPort, App: dpi.HTTP}
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	var back Record
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if back.State != StateClosing || back.Initiator != InitiatorPort || back.App != dpi.HTTP {
		t.Errorf("round trip: %+v from %s", back, b)
	}
	if err := json.Unmarshal([]byte(`{"state":"bogus"}`), &back); err == nil {
		t.Error("an unknown state decoded without error")
	}
}

// BenchmarkFirstPacketDPI is the first-packet path with the real DPI: a new flow whose
// first payload is an HTTP request, identified by every parser Vigil has.
func BenchmarkFirstPacketDPI(b *testing.B) {
	tb := NewTable(Config{MaxFlows: 1 << 16, NewInspector: func() Inspector { return dpi.NewInspector(nil, nil) }})
	fr := frame(etherTypeIPv4, nil, ipv4(ProtoTCP, ipA, ipB, 0, tcp(40000, 80, 1, FlagPSH|FlagACK,
		"GET /api/v1/orders HTTP/1.1\r\nHost: shop.example.test\r\nUser-Agent: curl/8.5.0\r\nAccept: */*\r\n\r\n")))
	var p Packet
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		binary.BigEndian.PutUint16(fr[14+20:], uint16(i))
		fr[14+12+2], fr[14+12+3] = byte(i>>24), byte(i>>16)
		if err := Decode(fr, &p); err != nil {
			b.Fatal(err)
		}
		tb.Add(&p, int64(i))
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "pkts/s")
}

type refiner struct{ refined int }

func (r *refiner) Enrich(f *Flow) { f.ServerEnd.Kind = KindInternal }
func (r *refiner) Refine(f *Flow) {
	r.refined++
	f.ServerEnd.Kind, f.ServerEnd.Name = KindWorkload, "late"
}

func TestRefineBeforeStart(t *testing.T) {
	r := &refiner{}
	tb := NewTable(Config{Enricher: r})
	tb.Add(pkt(t, frame(etherTypeIPv4, nil, ipv4(ProtoUDP, ipA, ipB, 0, udp(45000, 53, "q")))), 0)
	evs := collect(tb, int64(time.Second), false)
	if len(evs) != 1 || evs[0].Record.Server.Kind != KindWorkload || evs[0].Record.Server.Name != "late" || r.refined != 1 {
		t.Fatalf("events %+v after %d refinements; want the end placed by Refine", evs, r.refined)
	}
}

type panicky struct{}

func (panicky) Feed(dpi.Transport, dpi.Direction, uint32, []byte) bool { panic("parser bug") }
func (panicky) App() dpi.App                                           { return dpi.Unknown }
func (panicky) Detail() *dpi.Detail                                    { return nil }

func TestInspectorPanicCostsOneFlow(t *testing.T) {
	tb := NewTable(Config{NewInspector: func() Inspector { return panicky{} }})
	p := pkt(t, frame(etherTypeIPv4, nil, ipv4(ProtoTCP, ipA, ipB, 0, tcp(40000, 80, 1, FlagACK|FlagPSH, "boom"))))
	tb.Add(p, 0)
	tb.Add(p, 1) // the inspector is gone: no second panic
	if st := tb.Stats(); st.InspectPanics != 1 || st.Packets != 2 {
		t.Fatalf("stats = %+v, want one recovered panic and both packets counted", st)
	}
}
