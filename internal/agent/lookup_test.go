package agent

import (
	"context"
	"io"
	"log/slog"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vigil-sec/vigil/internal/flow"
	"github.com/vigil-sec/vigil/internal/workload"
)

// flakyOwners finds the owner only from its third question on, as when the first
// lookups ran over the CPU budget.
type flakyOwners struct{ asked atomic.Int32 }

func (o *flakyOwners) Lookup(_ context.Context, _ workload.NetNS, _ uint8, _, _ netip.AddrPort) (flow.Process, bool) {
	if o.asked.Add(1) < 3 {
		return flow.Process{}, false
	}
	return flow.Process{PID: 42, Comm: "httpd"}, true
}

func TestLookupRetried(t *testing.T) {
	owners := &flakyOwners{}
	a := New(Config{}, nil, owners, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	client := netip.MustParseAddrPort("10.0.0.3:40000")
	server := netip.MustParseAddrPort("10.0.0.2:8080")
	p := flow.Packet{Proto: flow.ProtoTCP, Src: client, Dst: server, Length: 60, TCPFlags: 0x02}
	a.table.Add(&p, time.Now().UnixNano())
	key := flow.Key{Proto: flow.ProtoTCP, A: server, B: client}
	if server.Addr().Compare(client.Addr()) > 0 {
		key = flow.Key{Proto: flow.ProtoTCP, A: client, B: server}
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go a.lookupLoop(ctx)
	a.lookups <- lookup{key: key, client: false, proto: flow.ProtoTCP, local: server, remote: client}

	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		var got *flow.Process
		a.table.Annotate(key, false, func(f *flow.Flow) { got = f.ServerEnd.Process })
		if got != nil {
			if got.Comm != "httpd" || owners.asked.Load() != 3 {
				t.Fatalf("process %+v after %d lookups, want httpd after 3", got, owners.asked.Load())
			}
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("the server's process was never found; %d lookups", owners.asked.Load())
}
