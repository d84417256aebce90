package controller

import "testing"

func TestTypeMatches(t *testing.T) {
	cases := []struct {
		want, typ string
		ok        bool
	}{
		{"", "violation", true},
		{"process", "process", true},
		{"process", "process.drift", true},
		{"process", "processes", false},
		{"process.drift", "process", false},
		{"file", "file", true},
		{"escalation", "process.escalation", false},
	}
	for _, c := range cases {
		if got := TypeMatches(c.want, c.typ); got != c.ok {
			t.Errorf("TypeMatches(%q, %q) = %v, want %v", c.want, c.typ, got, c.ok)
		}
	}
	e := NewEvents(10)
	e.Add(Event{Type: "process"})
	e.Add(Event{Type: "process.drift"})
	e.Add(Event{Type: "file"})
	if n := len(e.List("process", 0)); n != 2 {
		t.Errorf("List(process) gave %d events, want 2", n)
	}
}
