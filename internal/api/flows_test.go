package api_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"testing"
	"time"

	"github.com/vigil-sec/vigil/internal/api"
	"github.com/vigil-sec/vigil/internal/controller"
	"github.com/vigil-sec/vigil/internal/dpi"
	"github.com/vigil-sec/vigil/internal/flow"
)

func flowRecord(id uint64, app dpi.App) flow.Record {
	return flow.Record{ID: id, Proto: "tcp", App: app,
		Client:    flow.Endpoint{IP: netip.MustParseAddr("172.17.0.2"), Port: 40000, Kind: flow.KindWorkload, Workload: "c1", Name: "shop", Group: "vigil.shop"},
		Server:    flow.Endpoint{IP: netip.MustParseAddr("172.17.0.3"), Port: 80, Kind: flow.KindWorkload, Workload: "s1", Name: "web", Group: "vigil.web"},
		FirstSeen: time.Unix(100, 0), LastSeen: time.Unix(100+int64(id), 0)}
}

func flowsHandler(t *testing.T) (http.Handler, *controller.Flows) {
	t.Helper()
	flows := controller.NewFlows(100, 100)
	srv, err := api.NewServer(newFake(true), testToken, testVersion, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	srv.SetFlows(flows, func() any { return map[string]int{"interfaces": 3} })
	return srv.Handler(), flows
}

func TestFlowEndpoints(t *testing.T) {
	h, flows := flowsHandler(t)
	if rec := serve(t, h, http.MethodGet, "/api/v1/flows", bearer); rec.Code != 200 || rec.Body.String() != "[]\n" {
		t.Fatalf("empty list: %d %q", rec.Code, rec.Body.String())
	}
	flows.ReportFlows([]flow.Event{
		{Type: flow.EventStart, Record: flowRecord(1, dpi.HTTP)},
		{Type: flow.EventEnd, Record: flowRecord(2, dpi.Redis)},
	})
	tests := []struct {
		target string
		code   int
		n      int
	}{
		{"/api/v1/flows", 200, 2},
		{"/api/v1/flows?app=http", 200, 1},
		{"/api/v1/flows?group=vigil.web", 200, 2},
		{"/api/v1/flows?workload=shop&proto=tcp", 200, 2},
		{"/api/v1/flows?proto=udp", 200, 0},
		{"/api/v1/flows?limit=1", 200, 1},
		{"/api/v1/flows?since=1h", 200, 0},
		{"/api/v1/flows?since=1970-01-01T00:01:42Z", 200, 1},
		{"/api/v1/flows?limit=0", 400, 0},
		{"/api/v1/flows?limit=100001", 400, 0},
		{"/api/v1/flows?limit=ten", 400, 0},
		{"/api/v1/flows?proto=sctp", 400, 0},
		{"/api/v1/flows?app=HTTP%20", 400, 0},
		{"/api/v1/flows?since=yesterday", 400, 0},
		{"/api/v1/flows?group=Bad_Group", 400, 0},
		{"/api/v1/flows?colour=red", 400, 0},
	}
	for _, tt := range tests {
		rec := serve(t, h, http.MethodGet, tt.target, bearer)
		if rec.Code != tt.code {
			t.Errorf("%s: status %d, want %d (%s)", tt.target, rec.Code, tt.code, rec.Body.String())
			continue
		}
		if tt.code != 200 {
			continue
		}
		var list []flow.Record
		if err := json.Unmarshal(rec.Body.Bytes(), &list); err != nil || len(list) != tt.n {
			t.Errorf("%s: %d flows (%v), want %d", tt.target, len(list), err, tt.n)
		}
	}
	for _, path := range []string{"/api/v1/flows", "/api/v1/flows/stream", "/api/v1/graph", "/api/v1/capture"} {
		if rec := serve(t, h, http.MethodGet, path, ""); rec.Code != http.StatusUnauthorized {
			t.Errorf("%s without token: %d", path, rec.Code)
		}
	}
	rec := serve(t, h, http.MethodGet, "/api/v1/graph", bearer)
	var g controller.Graph
	if err := json.Unmarshal(rec.Body.Bytes(), &g); err != nil || len(g.Edges) != 2 {
		t.Errorf("graph: %v, %d edges", err, len(g.Edges))
	}
	if rec := serve(t, h, http.MethodGet, "/api/v1/capture", bearer); rec.Code != 200 || rec.Body.String() != "{\n  \"interfaces\": 3\n}\n" {
		t.Errorf("capture: %d %q", rec.Code, rec.Body.String())
	}
}

func TestFlowStream(t *testing.T) {
	h, flows := flowsHandler(t)
	srv := httptest.NewServer(h)
	defer srv.Close()
	c, err := api.NewClient(srv.URL, testToken)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	got := make(chan flow.Event, 4)
	done := make(chan error, 1)
	go func() {
		done <- c.StreamFlows(ctx, url.Values{"app": {"http"}}, func(ev flow.Event) error {
			got <- ev
			return context.Canceled // one is enough
		})
	}()
	// Keep reporting until the stream has subscribed and delivered.
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for id := uint64(1); ; id++ {
		select {
		case ev := <-got:
			if ev.Type != flow.EventStart || ev.Record.App != dpi.HTTP {
				t.Fatalf("streamed %+v", ev)
			}
			if err := <-done; err != context.Canceled {
				t.Fatalf("StreamFlows returned %v", err)
			}
			return
		case <-tick.C:
			flows.ReportFlows([]flow.Event{
				{Type: flow.EventStart, Record: flowRecord(id, dpi.Redis)}, // filtered out
				{Type: flow.EventStart, Record: flowRecord(id+1000, dpi.HTTP)},
			})
		case <-ctx.Done():
			t.Fatal("no event streamed")
		}
	}
}
