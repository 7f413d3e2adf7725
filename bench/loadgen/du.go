package loadgen

import (
	"fmt"
	"io/fs"
	"path/filepath"
	"syscall"
)

// Usage is what the regular files under a directory take.
type Usage struct {
	// Apparent is the sum of their sizes (du --apparent-size): the bytes
	// written.
	Apparent int64
	// Allocated is the space allocated to them (512-byte blocks, as du
	// counts them), preallocated space included: Pebble preallocates its
	// WAL files, so on a small log this is mostly empty WAL space.
	Allocated int64
}

// diskUsage measures the regular files under root.
func diskUsage(root string) (Usage, error) {
	var total Usage
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.Type().IsRegular() {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		total.Apparent += fi.Size()
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			total.Allocated += st.Blocks * 512
		} else {
			total.Allocated += fi.Size()
		}
		return nil
	})
	if err != nil {
		return Usage{}, fmt.Errorf("disk usage of %s: %w", root, err)
	}
	return total, nil
}
