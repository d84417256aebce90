package controller

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/vigil-sec/vigil/internal/audit"
)

func report(results ...audit.Result) audit.Report {
	return audit.Report{StartedAt: time.Unix(100, 0), Results: results}
}

func TestAuditorRaisesEventsOnChange(t *testing.T) {
	events := NewEvents(100)
	runs := []audit.Report{
		report(audit.Result{ID: "5.5", Status: audit.Pass}, audit.Result{ID: "2.2", Status: audit.Warn}),
		report(audit.Result{ID: "5.5", Status: audit.Warn, Targets: []audit.Target{{Kind: "container", Name: "bad"}}}, audit.Result{ID: "2.2", Status: audit.Warn}),
		report(audit.Result{ID: "5.5", Status: audit.Warn, Targets: []audit.Target{{Kind: "container", Name: "worse"}}}, audit.Result{ID: "2.2", Status: audit.Pass}),
	}
	n := 0
	a := NewAuditor(func(context.Context) (audit.Report, error) { r := runs[n]; n++; return r, nil }, events, 0,
		slog.New(slog.NewTextHandler(io.Discard, nil)))
	if _, ok, _ := a.Latest(); ok {
		t.Fatal("a report before any audit")
	}
	for range runs {
		if _, err := a.Audit(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	evs := events.List("audit.changed", 0)
	// Run 2: 5.5 PASS->WARN. Run 3: 5.5 targets changed, 2.2 WARN->PASS.
	if len(evs) != 3 {
		t.Fatalf("events = %+v, want 3", evs)
	}
	if evs[2].Detail["check"] != "5.5" || evs[2].Severity != "warning" || evs[2].Detail["from"] != audit.Pass {
		t.Errorf("first change = %+v", evs[2])
	}
	if rep, ok, _ := a.Latest(); !ok || rep.Results[1].Status != audit.Pass {
		t.Errorf("latest = %+v", rep)
	}
}

func TestAuditorKeepsLastGoodReportOnFailure(t *testing.T) {
	fail := false
	a := NewAuditor(func(context.Context) (audit.Report, error) {
		if fail {
			return audit.Report{}, errors.New("daemon gone")
		}
		return report(audit.Result{ID: "1.1", Status: audit.Pass}), nil
	}, NewEvents(10), 0, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if _, err := a.Audit(context.Background()); err != nil {
		t.Fatal(err)
	}
	fail = true
	if _, err := a.Audit(context.Background()); err == nil {
		t.Fatal("failure not returned")
	}
	rep, ok, err := a.Latest()
	if !ok || len(rep.Results) != 1 || err == nil {
		t.Errorf("latest = %+v, %v, %v; want the last good report and the error", rep, ok, err)
	}
}

func TestEventsBounded(t *testing.T) {
	e := NewEvents(3)
	for i := range 5 {
		e.Add(Event{Type: "t", Summary: string(rune('a' + i))})
	}
	l := e.List("", 0)
	if len(l) != 3 || l[0].Summary != "e" || l[0].ID != 5 || l[2].Summary != "c" {
		t.Errorf("events = %+v", l)
	}
	if len(e.List("other", 0)) != 0 || len(e.List("t", 2)) != 2 {
		t.Error("filter or limit ignored")
	}
}

func TestEventsMaxAge(t *testing.T) {
	e := NewEvents(100)
	e.SetMaxAge(time.Hour)
	e.Add(Event{Type: "t", Time: time.Now().Add(-2 * time.Hour)})
	e.Add(Event{Type: "t", Time: time.Now().Add(-3 * time.Hour)}) // the newest is always kept
	e.Add(Event{Type: "t"})
	if l := e.List("", 0); len(l) != 1 {
		t.Errorf("kept %d events, want only the recent one", len(l))
	}
}

func TestEventSubscription(t *testing.T) {
	e := NewEvents(10)
	sub := e.Subscribe("violation", 4)
	defer sub.Close()
	e.Add(Event{Type: "audit.changed"})
	v := e.Add(Event{Type: "violation", Detail: map[string]any{"count": 1}})
	e.Update(v.ID, func(ev *Event) { ev.Detail["count"] = 2 })
	first, second := <-sub.C, <-sub.C
	if first.ID != v.ID || first.Detail["count"] != 1 || second.Detail["count"] != 2 {
		t.Errorf("delivered %+v then %+v", first, second)
	}
	for range 10 {
		e.Add(Event{Type: "violation"})
	}
	for range sub.C {
	}
	if !errors.Is(sub.Err(), ErrLagged) {
		t.Errorf("Err = %v, want ErrLagged", sub.Err())
	}
}
