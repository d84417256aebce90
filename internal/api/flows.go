package api

import (
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"time"

	"github.com/vigil-sec/vigil/internal/controller"
	"github.com/vigil-sec/vigil/internal/flow"
)

// Flows is what the API needs of the controller's flow store.
type Flows interface {
	List(f controller.Filter, limit int) []flow.Record
	Subscribe(f controller.Filter, buffer int) *controller.FlowSub
	Graph() controller.Graph
}

// SetFlows serves the flow endpoints from f, and the data path's counters from stats.
// Call it before Handler.
func (s *Server) SetFlows(f Flows, stats func() any) {
	s.flows = f
	s.dataPath = stats
}

// Bounds of the flow list.
const (
	defaultFlowLimit = 500
	maxFlowLimit     = 10000
)

// heartbeat keeps idle streams (and proxies in between) from timing out.
const heartbeat = 15 * time.Second

var (
	appPattern   = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,31}$`)
	protoPattern = regexp.MustCompile(`^(tcp|udp|icmp|icmpv6|ip)$`)
)

// flowFilter reads and checks the filter parameters shared by the flow endpoints.
func flowFilter(r *http.Request) (controller.Filter, error) {
	q := r.URL.Query()
	f := controller.Filter{
		Workload: q.Get("workload"),
		Group:    q.Get("group"),
		App:      q.Get("app"),
		Proto:    q.Get("proto"),
	}
	if f.Workload != "" && !refPattern.MatchString(f.Workload) {
		return f, fmt.Errorf("invalid workload %q", f.Workload)
	}
	if f.Group != "" && !groupPattern.MatchString(f.Group) {
		return f, fmt.Errorf("invalid group name %q", f.Group)
	}
	if f.App != "" && !appPattern.MatchString(f.App) {
		return f, fmt.Errorf("invalid app %q", f.App)
	}
	if f.Proto != "" && !protoPattern.MatchString(f.Proto) {
		return f, fmt.Errorf("invalid proto %q: want tcp, udp, icmp, icmpv6 or ip", f.Proto)
	}
	if since := q.Get("since"); since != "" {
		if d, err := time.ParseDuration(since); err == nil && d > 0 {
			f.Since = time.Now().Add(-d)
		} else if t, err := time.Parse(time.RFC3339, since); err == nil {
			f.Since = t
		} else {
			return f, fmt.Errorf("invalid since %q: want a duration such as 5m or an RFC 3339 time", since)
		}
	}
	return f, nil
}

func (s *Server) listFlows(w http.ResponseWriter, r *http.Request) {
	if !checkQuery(w, r, "workload", "group", "app", "proto", "since", "limit") {
		return
	}
	f, err := flowFilter(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	limit, err := queryLimit(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, s.flows.List(f, limit))
}

// queryLimit reads the limit parameter of a list endpoint: 1 to maxFlowLimit, default
// defaultFlowLimit.
func queryLimit(r *http.Request) (int, error) {
	l := r.URL.Query().Get("limit")
	if l == "" {
		return defaultFlowLimit, nil
	}
	n, err := strconv.Atoi(l)
	if err != nil || n < 1 || n > maxFlowLimit {
		return 0, fmt.Errorf("invalid limit %q: want 1 to %d", l, maxFlowLimit)
	}
	return n, nil
}

// streamFlows sends flow events as server-sent events ("event: flow", the JSON of a
// flow.Event as data) until the client goes away or falls behind.
func (s *Server) streamFlows(w http.ResponseWriter, r *http.Request) {
	if !checkQuery(w, r, "workload", "group", "app", "proto") {
		return
	}
	f, err := flowFilter(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	sub := s.flows.Subscribe(f, 4096)
	defer sub.Close()
	streamSSE(w, r, "flows", "flow", sub.C, sub.Err)
}

// streamSSE sends what arrives on c as server-sent events named event (after a "hello"),
// with heartbeats, until the client goes away or c closes (then an "error" event says
// why, from errOf).
func streamSSE[T any](w http.ResponseWriter, r *http.Request, stream, event string, c <-chan T, errOf func() error) {
	rc := http.NewResponseController(w)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	send := func(event string, v any) bool {
		// The server's write timeout would cut a long stream: each write gets its own.
		_ = rc.SetWriteDeadline(time.Now().Add(30 * time.Second))
		data, err := json.Marshal(v)
		if err != nil {
			return false
		}
		if _, err := fmt.Fprintf(w, "event: %s\ndata: %s\n\n", event, data); err != nil {
			return false
		}
		return rc.Flush() == nil
	}
	if !send("hello", map[string]string{"stream": stream}) {
		return
	}
	tick := time.NewTicker(heartbeat)
	defer tick.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-tick.C:
			_ = rc.SetWriteDeadline(time.Now().Add(30 * time.Second))
			if _, err := fmt.Fprint(w, ": heartbeat\n\n"); err != nil || rc.Flush() != nil {
				return
			}
		case v, ok := <-c:
			if !ok {
				send("error", ErrorBody{Error: fmt.Sprintf("stream ended: %v; reconnect to resume", errOf())})
				return
			}
			if !send(event, v) {
				return
			}
		}
	}
}

func (s *Server) graph(w http.ResponseWriter, r *http.Request) {
	if !checkQuery(w, r) {
		return
	}
	writeJSON(w, http.StatusOK, s.flows.Graph())
}

func (s *Server) capture(w http.ResponseWriter, r *http.Request) {
	if !checkQuery(w, r) {
		return
	}
	writeJSON(w, http.StatusOK, s.dataPath())
}
