package store

import (
	"fmt"
	"strconv"

	bolt "go.etcd.io/bbolt"

	"github.com/vigil-sec/vigil/internal/procmon"
)

// bucketProfiles holds the process profiles: one nested bucket per group, whose keys
// are "uid NUL name NUL exe" and values procmon.ProfileEntry.
//
// The bucket is made on first write rather than by a schema migration: a database
// without it reads as "no profiles", and an older vigil that does not know it ignores
// it, so the layout stays compatible both ways and SchemaVersion does not move.
var bucketProfiles = []byte("profiles")

func profileKey(e *procmon.ProfileEntry) []byte {
	k := strconv.AppendInt(nil, int64(e.UID), 10)
	k = append(k, 0)
	k = append(k, e.Name...)
	k = append(k, 0)
	return append(k, e.Exe...)
}

// LoadProfiles reads every group's process profile.
func (db *DB) LoadProfiles() (map[string][]procmon.ProfileEntry, error) {
	out := map[string][]procmon.ProfileEntry{}
	err := db.view(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketProfiles)
		if b == nil {
			return nil
		}
		return b.ForEachBucket(func(group []byte) error {
			g := b.Bucket(group)
			return g.ForEach(func(k, v []byte) error {
				var e procmon.ProfileEntry
				key := strconv.Quote(string(group)) + "/" + strconv.Quote(string(k))
				if err := db.decode(bucketProfiles, key, v, &e); err != nil {
					return err
				}
				if string(profileKey(&e)) != string(k) {
					return db.corrupt(bucketProfiles, key, fmt.Errorf("holds entry %q %q %d", e.Exe, e.Name, e.UID))
				}
				out[string(group)] = append(out[string(group)], e)
				return nil
			})
		})
	})
	if err != nil {
		return nil, fmt.Errorf("load process profiles: %w", err)
	}
	return out, nil
}

// PutProfileEntries adds entries to group's profile (replacing equal keys), in one
// transaction.
func (db *DB) PutProfileEntries(group string, entries []procmon.ProfileEntry) error {
	if group == "" {
		return fmt.Errorf("put process profile: empty group name")
	}
	if len(entries) == 0 {
		return nil
	}
	err := db.update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bucketProfiles)
		if err != nil {
			return err
		}
		g, err := b.CreateBucketIfNotExists([]byte(group))
		if err != nil {
			return err
		}
		for i := range entries {
			if err := putJSON(g, profileKey(&entries[i]), &entries[i]); err != nil {
				return fmt.Errorf("entry %q: %w", entries[i].Exe, err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("put process profile of %q: %w", group, err)
	}
	return nil
}

// DeleteProfile forgets group's profile.
func (db *DB) DeleteProfile(group string) error {
	err := db.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketProfiles)
		if b == nil || b.Bucket([]byte(group)) == nil {
			return nil
		}
		return b.DeleteBucket([]byte(group))
	})
	if err != nil {
		return fmt.Errorf("delete process profile of %q: %w", group, err)
	}
	return nil
}

// ReplaceProfiles makes each named group's profile exactly its entries (an empty list
// empties it), in one transaction: a crash leaves either every old profile or every new
// one. Groups not named keep theirs.
func (db *DB) ReplaceProfiles(profiles map[string][]procmon.ProfileEntry) error {
	for group := range profiles {
		if group == "" {
			return fmt.Errorf("replace process profiles: empty group name")
		}
	}
	err := db.update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bucketProfiles)
		if err != nil {
			return err
		}
		for group, entries := range profiles {
			if b.Bucket([]byte(group)) != nil {
				if err := b.DeleteBucket([]byte(group)); err != nil {
					return err
				}
			}
			g, err := b.CreateBucket([]byte(group))
			if err != nil {
				return err
			}
			for i := range entries {
				if err := putJSON(g, profileKey(&entries[i]), &entries[i]); err != nil {
					return fmt.Errorf("group %q entry %q: %w", group, entries[i].Exe, err)
				}
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("replace process profiles: %w", err)
	}
	return nil
}
