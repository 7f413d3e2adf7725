package badgerstore

import (
	"testing"

	"github.com/hashicorp/raft"
)

// TestAdvisedMappings: Open advises Badger's value log and memtable
// mappings, and a synced StoreLogs of a value-log-sized command then
// writes back about its own size (1.1× on the reference VM; without the
// advice 8.4× over these 512 commits, 12× under load: readahead.go).
func TestAdvisedMappings(t *testing.T) {
	s := openStore(t, t.TempDir(), func(o *Options) { o.MemTableSize = 0 })
	n, err := adviseRandom(s.dir)
	if err != nil {
		t.Fatalf("adviseRandom(%s): %v", s.dir, err)
	}
	if n < 2 {
		t.Fatalf("adviseRandom(%s) advised %d mappings; want the value log and the memtable (≥ 2)", s.dir, n)
	}
	const logs, size = 512, 140 << 10
	data := make([]byte, size)
	w0 := selfWriteBytes()
	for i := range uint64(logs) {
		if err := s.StoreLogs([]*raft.Log{{Index: i + 1, Term: 1, Type: raft.LogCommand, Data: data}}); err != nil {
			t.Fatalf("StoreLogs %d: %v", i+1, err)
		}
	}
	w := selfWriteBytes() - w0
	if w == 0 {
		// tmpfs (a TMPDIR in memory) writes nothing back; the advice is
		// checked above, the writeback has nothing to show.
		t.Logf("/proc/self/io reports no bytes written for %d synced commits of %d bytes (a filesystem in memory?): writeback not measured", logs, size)
		return
	}
	ratio := float64(w) / float64(logs*size)
	t.Logf("%d synced commits of %d bytes wrote back %d bytes, %.1f× the data", logs, size, w, ratio)
	if ratio > 2 {
		t.Errorf("%d synced commits of %d bytes wrote back %.1f× the data; want ≤ 2× (unadvised: 8.4× on the reference VM)", logs, size, ratio)
	}
}
