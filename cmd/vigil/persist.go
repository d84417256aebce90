package main

import (
	"encoding/json"
	"fmt"

	"github.com/vigil-sec/vigil/internal/controller"
	"github.com/vigil-sec/vigil/internal/store"
)

// eventStore adapts the database's events to the controller's.
type eventStore struct{ db *store.DB }

func toStored(ev controller.Event) (store.Event, error) {
	out := store.Event{ID: ev.ID, Time: ev.Time, Type: ev.Type, Severity: ev.Severity, Summary: ev.Summary}
	if len(ev.Detail) > 0 {
		b, err := json.Marshal(ev.Detail)
		if err != nil {
			return out, fmt.Errorf("event detail: %w", err)
		}
		out.Detail = b
	}
	return out, nil
}

func fromStored(ev store.Event) (controller.Event, error) {
	out := controller.Event{ID: ev.ID, Time: ev.Time, Type: ev.Type, Severity: ev.Severity, Summary: ev.Summary}
	if len(ev.Detail) > 0 {
		if err := json.Unmarshal(ev.Detail, &out.Detail); err != nil {
			return out, fmt.Errorf("event %d detail: %w", ev.ID, err)
		}
	}
	return out, nil
}

func (s eventStore) AppendEvent(ev controller.Event) (controller.Event, error) {
	st, err := toStored(ev)
	if err != nil {
		return ev, err
	}
	st, err = s.db.AppendEvent(st)
	if err != nil {
		return ev, err
	}
	ev.ID = st.ID
	return ev, nil
}

func (s eventStore) UpdateEvent(ev controller.Event) error {
	st, err := toStored(ev)
	if err != nil {
		return err
	}
	return s.db.UpdateEvent(st)
}

func (s eventStore) RecentEvents(limit int) ([]controller.Event, error) {
	stored, err := s.db.Events("", 0, limit)
	if err != nil {
		return nil, err
	}
	out := make([]controller.Event, 0, len(stored))
	for _, ev := range stored {
		c, err := fromStored(ev)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, nil
}
