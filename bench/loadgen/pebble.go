package loadgen

import (
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"os"
	"time"

	"github.com/cockroachdb/pebble/v2"
)

// MeasurePebbleSync opens a fresh Pebble store in a temporary directory
// under dir and, for about d, commits batches holding one 1 KiB value with
// pebble.Sync, one at a time: the raw rate at which the store provd uses
// can make a write durable, with no group commit. It returns batches per
// second.
func MeasurePebbleSync(dir string, d time.Duration) (float64, error) {
	tmp, err := os.MkdirTemp(dir, "provbench-pebble-")
	if err != nil {
		return 0, fmt.Errorf("pebble limit: %w", err)
	}
	defer os.RemoveAll(tmp)
	db, err := pebble.Open(tmp, &pebble.Options{Logger: quietPebble{pebble.DefaultLogger}})
	if err != nil {
		return 0, fmt.Errorf("pebble limit: open: %w", err)
	}
	defer db.Close()
	val := make([]byte, 1024)
	rand.Read(val)
	var key [8]byte
	n := 0
	start := time.Now()
	for deadline := start.Add(d); time.Now().Before(deadline); n++ {
		binary.BigEndian.PutUint64(key[:], uint64(n))
		b := db.NewBatch()
		if err := b.Set(key[:], val, nil); err != nil {
			b.Close()
			return 0, fmt.Errorf("pebble limit: set: %w", err)
		}
		if err := b.Commit(pebble.Sync); err != nil {
			b.Close()
			return 0, fmt.Errorf("pebble limit: commit: %w", err)
		}
		b.Close()
	}
	return float64(n) / time.Since(start).Seconds(), nil
}

// quietPebble drops Pebble's informational log lines; errors and fatal
// conditions go to Pebble's default logger.
type quietPebble struct{ pebble.Logger }

func (quietPebble) Infof(string, ...any) {}
