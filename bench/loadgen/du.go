package loadgen

import (
	"fmt"
	"io/fs"
	"path/filepath"
	"syscall"
)

// diskUsage sums the space the regular files under root occupy on disk
// (allocated 512-byte blocks, as du counts them; the apparent size where
// the file system does not report blocks).
func diskUsage(root string) (int64, error) {
	var total int64
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
		if st, ok := fi.Sys().(*syscall.Stat_t); ok && st.Blocks > 0 {
			total += st.Blocks * 512
		} else {
			total += fi.Size()
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("disk usage of %s: %w", root, err)
	}
	return total, nil
}
