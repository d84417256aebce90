package controller

import (
	"errors"
	"fmt"
	"path"
	"time"

	"github.com/vigil-sec/vigil/internal/policy"
	"github.com/vigil-sec/vigil/internal/procmon"
)

// profileReplacer is the store's way of replacing profiles in one transaction.
type profileReplacer interface {
	ReplaceProfiles(map[string][]procmon.ProfileEntry) error
}

// ReplaceProfiles makes each named group's process profile exactly its entries, as a
// policy file says (vigil policy apply): persisted first, in one transaction, then in
// effect. Groups the file does not name keep their profiles and go on learning. Bad
// input is an error wrapping policy.ErrInvalid, and nothing changes.
func (e *ProcessEngine) ReplaceProfiles(profiles map[string][]procmon.ProfileEntry) error {
	now := time.Now().UTC()
	clean := make(map[string][]procmon.ProfileEntry, len(profiles))
	for group, entries := range profiles {
		if err := policy.CheckGroupName(group); err != nil {
			return err
		}
		if len(entries) > maxProfile {
			return fmt.Errorf("%w process profile of %s: %d entries, at most %d", policy.ErrInvalid, group, len(entries), maxProfile)
		}
		out := make([]procmon.ProfileEntry, 0, len(entries))
		for _, en := range entries {
			if err := checkProfileEntry(en); err != nil {
				return fmt.Errorf("%w process profile of %s: %s", policy.ErrInvalid, group, err)
			}
			en.Exe = procmon.CleanExe(en.Exe)
			if en.FirstSeen.IsZero() {
				en.FirstSeen = now
			}
			out = append(out, en)
		}
		clean[group] = out
	}
	if e.store != nil {
		r, ok := e.store.(profileReplacer)
		if !ok {
			return errors.New("the profile store cannot replace profiles")
		}
		if err := r.ReplaceProfiles(clean); err != nil {
			return err
		}
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	for group, entries := range clean {
		e.profiles[group] = procmon.NewProfile(entries)
		delete(e.pending, group)
	}
	return nil
}

func checkProfileEntry(en procmon.ProfileEntry) error {
	switch {
	case en.Exe == "" || !path.IsAbs(en.Exe) || len(en.Exe) > 4096:
		return fmt.Errorf("executable %q is not an absolute path of at most 4096 bytes", en.Exe)
	case en.Name == "" || len(en.Name) > 255:
		return fmt.Errorf("process name %q must have 1 to 255 bytes", en.Name)
	case en.UID < 0 || en.UID > 1<<32-2:
		return fmt.Errorf("user ID %d is out of range", en.UID)
	}
	return nil
}
