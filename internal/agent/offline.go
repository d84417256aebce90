package agent

import (
	"context"
	"errors"
	"time"

	"github.com/vigil-sec/vigil/internal/capture"
	"github.com/vigil-sec/vigil/internal/dpi"
	"github.com/vigil-sec/vigil/internal/flow"
)

// OfflineStats are the totals of an offline analysis, comparable with other flow tools'
// on the same capture.
type OfflineStats struct {
	Packets      uint64         `json:"packets"`
	Bytes        uint64         `json:"bytes"`
	Flows        uint64         `json:"flows"`
	FlowsPerApp  map[string]int `json:"flows_per_app"`
	DecodeErrors uint64         `json:"decode_errors"`
	NotIP        uint64         `json:"not_ip"`
	Skipped      uint64         `json:"skipped"`
	Seconds      float64        `json:"seconds"`
	PacketsPerS  float64        `json:"packets_per_second"`
}

// Analyze runs the flow pipeline (decode, flow table, DPI, DNS naming) over a capture
// source and returns every flow it held, in order of first packet, with the totals.
// Endpoints are plain addresses: there is no registry offline. Flow timeouts follow the
// capture's own clock.
func Analyze(ctx context.Context, src capture.Source, cfg flow.Config, newInspector func(onDNS func(*dpi.DNSMessage)) flow.Inspector) ([]flow.Record, OfflineStats, error) {
	names := NewNames(65536)
	var last time.Time
	if newInspector != nil {
		onDNS := func(m *dpi.DNSMessage) { names.Learn(m, last) }
		cfg.NewInspector = func() flow.Inspector { return newInspector(onDNS) }
	}
	cfg.Enricher = offlineEnricher{names: names, now: func() time.Time { return last }}
	table := flow.NewTable(cfg)

	var st OfflineStats
	var records []flow.Record
	keep := func(e flow.Event) {
		if e.Type == flow.EventEnd {
			records = append(records, e.Record)
		}
	}
	var p flow.Packet
	var sweptAt int64
	start := time.Now()
	err := src.Run(ctx, func(f *capture.Frame) {
		var err error
		if f.IP {
			err = flow.DecodeIP(f.Data, &p)
		} else {
			err = flow.Decode(f.Data, &p)
		}
		switch {
		case errors.Is(err, flow.ErrNotIP):
			st.NotIP++
			return
		case err != nil:
			st.DecodeErrors++
			return
		}
		last = time.Unix(0, f.Timestamp)
		table.Add(&p, f.Timestamp)
		if f.Timestamp-sweptAt >= int64(time.Second) {
			table.Sweep(f.Timestamp, true, keep)
			sweptAt = f.Timestamp
		}
	})
	table.Flush("eof", keep)
	elapsed := time.Since(start)

	ts := table.Stats()
	st.Packets, st.Bytes, st.Flows = ts.Packets, ts.Bytes, ts.Created
	if fs, ok := src.(interface{ Skipped() uint64 }); ok {
		st.Skipped = fs.Skipped()
	}
	st.FlowsPerApp = map[string]int{}
	for _, r := range records {
		st.FlowsPerApp[string(r.App)]++
	}
	st.Seconds = elapsed.Seconds()
	if st.Seconds > 0 {
		st.PacketsPerS = float64(st.Packets+st.DecodeErrors+st.NotIP) / st.Seconds
	}
	sortByFirstSeen(records)
	return records, st, err
}

type offlineEnricher struct {
	names *Names
	now   func() time.Time
}

// Enrich names external addresses from the DNS answers seen earlier in the capture.
func (e offlineEnricher) Enrich(f *flow.Flow) {
	for _, end := range []*flow.Endpoint{&f.ClientEnd, &f.ServerEnd} {
		if name, ok := e.names.Lookup(end.IP, e.now()); ok {
			end.Name = name
		}
	}
}
