package badgerstore

import (
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// adviseRandom applies MADV_RANDOM to every mapping of a Badger value log
// (.vlog) or memtable (.mem) file under dir (an absolute path without
// symlinks, as /proc/self/maps shows it) and returns how many it advised.
func adviseRandom(dir string) (int, error) {
	b, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		return 0, fmt.Errorf("read /proc/self/maps: %w", err)
	}
	prefix := dir + string(os.PathSeparator)
	n := 0
	for line := range strings.Lines(string(b)) {
		// start-end perms offset dev inode pathname
		f := strings.Fields(line)
		if len(f) < 6 {
			continue
		}
		path := strings.Join(f[5:], " ")
		if !strings.HasPrefix(path, prefix) || !(strings.HasSuffix(path, ".vlog") || strings.HasSuffix(path, ".mem")) {
			continue
		}
		lo, hi, ok := strings.Cut(f[0], "-")
		if !ok {
			continue
		}
		start, err1 := strconv.ParseUint(lo, 16, 64)
		end, err2 := strconv.ParseUint(hi, 16, 64)
		if err1 != nil || err2 != nil || end <= start {
			continue
		}
		// A raw syscall on the addresses: the mapping is Badger's, not a
		// slice this package holds.
		if _, _, errno := unix.Syscall(unix.SYS_MADVISE, uintptr(start), uintptr(end-start), unix.MADV_RANDOM); errno != 0 {
			if errno == unix.ENOMEM {
				continue // unmapped since the read: nothing to advise
			}
			return n, fmt.Errorf("madvise %s: %w", path, errno)
		}
		n++
	}
	return n, nil
}
