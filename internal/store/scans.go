package store

import (
	"fmt"
	"strconv"

	bolt "go.etcd.io/bbolt"
)

// bucketScans holds the vulnerability scanner's results: key ("image:<id>", "host") →
// the report as the controller wrote it (opaque bytes here). It is a cache the server can
// always rebuild by scanning again, so it is created on first write and needs no schema
// version of its own: an older vigil that does not know it leaves it alone.
var bucketScans = []byte("scans")

// maxScanValue bounds one stored result; bbolt's own limit is far higher, but a report
// this large means something went wrong.
const maxScanValue = 256 << 20

// PutScan stores one scan result under key.
func (db *DB) PutScan(key string, value []byte) error {
	if key == "" {
		return fmt.Errorf("put scan: empty key")
	}
	if len(value) > maxScanValue {
		return fmt.Errorf("put scan %s: %d bytes is over the bound of %d", key, len(value), maxScanValue)
	}
	return db.update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bucketScans)
		if err != nil {
			return fmt.Errorf("put scan %s: %w", key, err)
		}
		return b.Put([]byte(key), value)
	})
}

// DeleteScan removes the result under key; a missing one is no error.
func (db *DB) DeleteScan(key string) error {
	return db.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketScans)
		if b == nil {
			return nil
		}
		return b.Delete([]byte(key))
	})
}

// Scans calls fn with every stored scan result, in key order. The value is valid only
// during the call (it is bbolt's memory), so fn copies what it keeps.
func (db *DB) Scans(fn func(key string, value []byte) error) error {
	return db.view(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketScans)
		if b == nil {
			return nil
		}
		return b.ForEach(func(k, v []byte) error {
			if v == nil {
				return db.corrupt(bucketScans, strconv.Quote(string(k)), fmt.Errorf("a nested bucket"))
			}
			return fn(string(k), v)
		})
	})
}
