package badgerstore

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

func openStore(t testing.TB, dir string, mod ...func(*Options)) *Store {
	t.Helper()
	o := Options{MemTableSize: 16 << 20, GCInterval: -1}
	for _, m := range mod {
		m(&o)
	}
	s, err := Open(dir, o)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func mkLog(i uint64, data string) *raft.Log {
	return &raft.Log{Index: i, Term: i/10 + 1, Type: raft.LogCommand, Data: []byte(data)}
}

func mkLogs(from, to uint64) []*raft.Log {
	var ls []*raft.Log
	for i := from; i <= to; i++ {
		ls = append(ls, mkLog(i, fmt.Sprintf("log-%d", i)))
	}
	return ls
}

func wantBounds(t *testing.T, s *Store, first, last uint64) {
	t.Helper()
	f, err := s.FirstIndex()
	if err != nil {
		t.Fatal(err)
	}
	l, err := s.LastIndex()
	if err != nil {
		t.Fatal(err)
	}
	if f != first || l != last {
		t.Fatalf("FirstIndex, LastIndex = %d, %d; want %d, %d", f, l, first, last)
	}
}

func wantLog(t *testing.T, s *Store, want *raft.Log) {
	t.Helper()
	var got raft.Log
	if err := s.GetLog(want.Index, &got); err != nil {
		t.Fatalf("GetLog(%d): %v", want.Index, err)
	}
	if got.Index != want.Index || got.Term != want.Term || got.Type != want.Type ||
		!bytes.Equal(got.Data, want.Data) || !bytes.Equal(got.Extensions, want.Extensions) ||
		!got.AppendedAt.Equal(want.AppendedAt) {
		t.Fatalf("GetLog(%d) = %+v; want %+v", want.Index, got, *want)
	}
}

func wantMissing(t *testing.T, s *Store, idx ...uint64) {
	t.Helper()
	for _, i := range idx {
		var l raft.Log
		if err := s.GetLog(i, &l); !errors.Is(err, raft.ErrLogNotFound) {
			t.Fatalf("GetLog(%d) = %v; want raft.ErrLogNotFound", i, err)
		}
	}
}

func TestEmptyStore(t *testing.T) {
	s := openStore(t, t.TempDir())
	wantBounds(t, s, 0, 0)
	wantMissing(t, s, 0, 1, math.MaxUint64)
	if _, err := s.Get([]byte("CurrentTerm")); err == nil || err.Error() != "not found" {
		t.Fatalf("Get on a missing key: err %v, want text exactly \"not found\"", err)
	}
	if v, err := s.GetUint64([]byte("CurrentTerm")); err == nil || err.Error() != "not found" || v != 0 {
		t.Fatalf("GetUint64 on a missing key = %d, %v; want 0 and \"not found\"", v, err)
	}
	if c, err := s.GetCommitIndex(); c != 0 || err != nil {
		t.Fatalf("GetCommitIndex = %d, %v; want 0, nil", c, err)
	}
	if err := s.DeleteRange(1, 100); err != nil {
		t.Fatal(err)
	}
	if err := s.StoreLogs(nil); err != nil {
		t.Fatal(err)
	}
	wantBounds(t, s, 0, 0)
	// raft's HasExistingState must see an empty store as such.
	if ok, err := raft.HasExistingState(s, s, raft.NewInmemSnapshotStore()); err != nil || ok {
		t.Fatalf("HasExistingState = %v, %v; want false", ok, err)
	}
}

func TestRoundTripAllFields(t *testing.T) {
	s := openStore(t, t.TempDir())
	at := time.Date(2026, 3, 1, 12, 0, 0, 123456789, time.UTC)
	logs := []*raft.Log{
		{Index: 1, Term: 1, Type: raft.LogConfiguration, Data: []byte("conf"), AppendedAt: at},
		{Index: 2, Term: 1, Type: raft.LogNoop},
		{Index: 3, Term: 2, Type: raft.LogCommand, Data: []byte{0, 1, 2}, Extensions: []byte("ext")},
		{Index: 4, Term: 1 << 40, Type: raft.LogBarrier, Data: bytes.Repeat([]byte{7}, 1000)},
	}
	if err := s.StoreLogs(logs); err != nil {
		t.Fatal(err)
	}
	for _, l := range logs {
		wantLog(t, s, l)
	}
	wantBounds(t, s, 1, 4)
	// GetLog's Data must not alias store memory that changes later.
	var l raft.Log
	if err := s.GetLog(3, &l); err != nil {
		t.Fatal(err)
	}
	if err := s.StoreLogs(mkLogs(5, 200)); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(l.Data, []byte{0, 1, 2}) {
		t.Fatalf("Data changed after more writes: %x", l.Data)
	}
}

func TestGapsAndBounds(t *testing.T) {
	s := openStore(t, t.TempDir())
	if err := s.StoreLogs(mkLogs(10, 14)); err != nil {
		t.Fatal(err)
	}
	wantBounds(t, s, 10, 14)
	if err := s.StoreLogs(mkLogs(20, 22)); err != nil { // a gap after 14
		t.Fatal(err)
	}
	wantBounds(t, s, 10, 22)
	wantMissing(t, s, 9, 15, 19, 23)
	if err := s.StoreLog(mkLog(5, "below")); err != nil { // below the first
		t.Fatal(err)
	}
	wantBounds(t, s, 5, 22)
	// Out-of-order indexes within one call.
	if err := s.StoreLogs([]*raft.Log{mkLog(31, "b"), mkLog(30, "a")}); err != nil {
		t.Fatal(err)
	}
	wantBounds(t, s, 5, 31)
	wantLog(t, s, mkLog(30, "a"))
	// Overwrite keeps the latest value.
	if err := s.StoreLog(mkLog(12, "again")); err != nil {
		t.Fatal(err)
	}
	wantLog(t, s, mkLog(12, "again"))
}

func TestDeleteRange(t *testing.T) {
	cases := []struct {
		name        string
		lo, hi      uint64
		first, last uint64
		gone, kept  []uint64
	}{
		{"prefix", 1, 10, 11, 30, []uint64{1, 10}, []uint64{11, 30}},
		{"prefix below first", 0, 5, 6, 30, []uint64{1, 5}, []uint64{6}},
		{"suffix", 21, 30, 1, 20, []uint64{21, 30}, []uint64{1, 20}},
		{"suffix beyond last", 25, math.MaxUint64, 1, 24, []uint64{25, 30}, []uint64{24}},
		{"middle", 11, 20, 1, 30, []uint64{11, 20}, []uint64{10, 21}},
		{"all", 1, 30, 0, 0, []uint64{1, 30}, nil},
		{"everything", 0, math.MaxUint64, 0, 0, []uint64{1, 30}, nil},
		{"single", 30, 30, 1, 29, []uint64{30}, []uint64{29}},
		{"empty range", 40, 50, 1, 30, nil, []uint64{1, 30}},
		{"min above max", 20, 10, 1, 30, nil, []uint64{10, 20}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := openStore(t, t.TempDir())
			if err := s.StoreLogs(mkLogs(1, 30)); err != nil {
				t.Fatal(err)
			}
			if err := s.DeleteRange(c.lo, c.hi); err != nil {
				t.Fatal(err)
			}
			wantBounds(t, s, c.first, c.last)
			wantMissing(t, s, c.gone...)
			for _, i := range c.kept {
				wantLog(t, s, mkLog(i, fmt.Sprintf("log-%d", i)))
			}
		})
	}
}

func TestDeleteRangeOverGapsAndChunks(t *testing.T) {
	s := openStore(t, t.TempDir())
	// Three runs separated by gaps, the first larger than one delete chunk.
	for _, r := range [][2]uint64{{1, deleteChunk*2 + 17}, {20000, 20100}, {30000, 30010}} {
		if err := s.StoreLogs(mkLogs(r[0], r[1])); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.DeleteRange(1, 20050); err != nil {
		t.Fatal(err)
	}
	wantBounds(t, s, 20051, 30010)
	wantMissing(t, s, 1, deleteChunk, 20050)
	if err := s.DeleteRange(20090, 40000); err != nil {
		t.Fatal(err)
	}
	wantBounds(t, s, 20051, 20089)
}

func TestRestart(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir)
	if err := s.StoreLogs(mkLogs(1, 100)); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteRange(1, 40); err != nil {
		t.Fatal(err)
	}
	if err := s.SetUint64([]byte("CurrentTerm"), 7); err != nil {
		t.Fatal(err)
	}
	if err := s.Set([]byte("LastVoteCand"), []byte("node2")); err != nil {
		t.Fatal(err)
	}
	if err := s.StageCommitIndex(90); err != nil {
		t.Fatal(err)
	}
	if err := s.StoreLogs(mkLogs(101, 110)); err != nil {
		t.Fatal(err)
	}
	if err := s.StageCommitIndex(200); err != nil { // staged, never written
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = openStore(t, dir)
	wantBounds(t, s, 41, 110)
	wantLog(t, s, mkLog(41, "log-41"))
	wantLog(t, s, mkLog(110, "log-110"))
	wantMissing(t, s, 40, 111)
	if v, err := s.GetUint64([]byte("CurrentTerm")); err != nil || v != 7 {
		t.Fatalf("CurrentTerm = %d, %v", v, err)
	}
	if v, err := s.Get([]byte("LastVoteCand")); err != nil || string(v) != "node2" {
		t.Fatalf("LastVoteCand = %q, %v", v, err)
	}
	if c, err := s.GetCommitIndex(); err != nil || c != 90 {
		t.Fatalf("GetCommitIndex = %d, %v; want 90 (staged with the last StoreLogs)", c, err)
	}
	// Emptied store stays empty across a restart.
	if err := s.DeleteRange(0, math.MaxUint64); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s = openStore(t, dir)
	wantBounds(t, s, 0, 0)
	if c, err := s.GetCommitIndex(); err != nil || c != 0 {
		t.Fatalf("GetCommitIndex on an emptied store = %d, %v; want 0 (never above LastIndex)", c, err)
	}
}

func TestUint64Keys(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir)
	idx := []uint64{0, 1, 255, 256, 1 << 32, 1<<56 - 1, 1 << 56, 1 << 63, math.MaxUint64 - 1, math.MaxUint64}
	for _, i := range idx {
		if err := s.StoreLog(mkLog(i, fmt.Sprint(i))); err != nil {
			t.Fatal(err)
		}
	}
	wantBounds(t, s, 0, math.MaxUint64)
	s.Close()
	s = openStore(t, dir)
	wantBounds(t, s, 0, math.MaxUint64)
	for _, i := range idx {
		wantLog(t, s, mkLog(i, fmt.Sprint(i)))
	}
	if err := s.DeleteRange(0, 1<<56-1); err != nil {
		t.Fatal(err)
	}
	wantBounds(t, s, 1<<56, math.MaxUint64)
	if err := s.DeleteRange(1<<63, math.MaxUint64); err != nil {
		t.Fatal(err)
	}
	wantBounds(t, s, 1<<56, 1<<56)
}

func TestBigLogs(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir)
	var logs []*raft.Log
	for i, n := range []int{0, 1, DefaultValueThreshold - 50, DefaultValueThreshold, 1 << 20, 8 << 20} {
		d := make([]byte, n)
		for j := range d {
			d[j] = byte(i*31 + j)
		}
		logs = append(logs, &raft.Log{Index: uint64(i + 1), Term: 3, Type: raft.LogCommand, Data: d})
	}
	if err := s.StoreLogs(logs); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s = openStore(t, dir)
	for _, l := range logs {
		wantLog(t, s, l)
	}
	// Many small logs in one call, then truncate most of them.
	if err := s.StoreLogs(mkLogs(7, 20006)); err != nil {
		t.Fatal(err)
	}
	wantBounds(t, s, 1, 20006)
	if err := s.DeleteRange(1, 19000); err != nil {
		t.Fatal(err)
	}
	wantBounds(t, s, 19001, 20006)
}

func TestBatchTooLargeWritesNothing(t *testing.T) {
	s := openStore(t, t.TempDir())
	if err := s.StoreLogs(mkLogs(1, 3)); err != nil {
		t.Fatal(err)
	}
	// Inline values (below the value threshold) count in full against the
	// transaction limit: 15% of the 16 MiB memtable.
	d := make([]byte, DefaultValueThreshold-100)
	var logs []*raft.Log
	for i := uint64(4); i < 4+100; i++ {
		logs = append(logs, &raft.Log{Index: i, Term: 1, Data: d})
	}
	err := s.StoreLogs(logs)
	if !errors.Is(err, ErrBatchTooLarge) {
		t.Fatalf("StoreLogs of %d×%d bytes: %v; want ErrBatchTooLarge", len(logs), len(d), err)
	}
	wantBounds(t, s, 1, 3)
	wantMissing(t, s, 4, 50, 103)
	// The store is still usable, and MaxLogsPerBatch logs of that size fit.
	n := s.MaxLogsPerBatch(int64(len(d)))
	if n < 10 || n >= 100 {
		t.Fatalf("MaxLogsPerBatch(%d) = %d", len(d), n)
	}
	if err := s.StoreLogs(logs[:n]); err != nil {
		t.Fatalf("StoreLogs of MaxLogsPerBatch = %d logs: %v", n, err)
	}
	wantBounds(t, s, 1, uint64(3+n))
	// The guarantee holds for any mix of sizes up to the maximum: logs just
	// below the value threshold count in full, larger ones as a pointer.
	m := s.MaxLogsPerBatch(16 << 20)
	var mixed []*raft.Log
	next := uint64(4 + n)
	for i := range m {
		size := DefaultValueThreshold - 1 - maxLogOverhead
		if i%4 == 0 {
			size = 2 << 20
		}
		mixed = append(mixed, &raft.Log{Index: next, Term: 1, Data: make([]byte, size)})
		next++
	}
	if err := s.StoreLogs(mixed); err != nil {
		t.Fatalf("StoreLogs of MaxLogsPerBatch(16 MiB) = %d mixed logs: %v", m, err)
	}
	// With the production memtable, raft's default MaxAppendEntries (64)
	// fits commands of up to 16 MiB.
	p := openStore(t, t.TempDir(), func(o *Options) { o.MemTableSize = 0 })
	if m := p.MaxLogsPerBatch(16 << 20); m < 64 {
		t.Fatalf("MaxLogsPerBatch(16 MiB) = %d with the default memtable, want at least 64", m)
	}
}

func TestStableStore(t *testing.T) {
	s := openStore(t, t.TempDir())
	if err := s.Set([]byte("k"), []byte("v1")); err != nil {
		t.Fatal(err)
	}
	if err := s.Set([]byte("k"), []byte("v2")); err != nil {
		t.Fatal(err)
	}
	v, err := s.Get([]byte("k"))
	if err != nil || string(v) != "v2" {
		t.Fatalf("Get = %q, %v", v, err)
	}
	v[0] = 'X' // the caller owns the returned slice
	if v, _ := s.Get([]byte("k")); string(v) != "v2" {
		t.Fatalf("Get after modifying a returned value = %q", v)
	}
	if err := s.SetUint64([]byte("n"), math.MaxUint64); err != nil {
		t.Fatal(err)
	}
	if n, err := s.GetUint64([]byte("n")); err != nil || n != math.MaxUint64 {
		t.Fatalf("GetUint64 = %d, %v", n, err)
	}
	if _, err := s.GetUint64([]byte("k")); err == nil {
		t.Fatal("GetUint64 of a 2-byte value succeeded")
	}
	// Stable keys never collide with log keys.
	if err := s.Set([]byte{0, 0, 0, 0, 0, 0, 0, 1}, []byte("x")); err != nil {
		t.Fatal(err)
	}
	wantBounds(t, s, 0, 0)
	// An empty value is stored and read back as such.
	if err := s.Set([]byte("empty"), nil); err != nil {
		t.Fatal(err)
	}
	if v, err := s.Get([]byte("empty")); err != nil || len(v) != 0 {
		t.Fatalf("Get(empty) = %q, %v", v, err)
	}
}

func TestDecodeRejectsCorruptValues(t *testing.T) {
	good := encodeLog(&raft.Log{Index: 5, Term: 2, Type: raft.LogCommand, Data: []byte("abc"), Extensions: []byte("x"), AppendedAt: time.Unix(1, 2)})
	var l raft.Log
	if err := decodeLog(5, good, &l); err != nil {
		t.Fatal(err)
	}
	if err := decodeLog(6, good, &l); err == nil {
		t.Fatal("decoded a log stored under the wrong index")
	}
	for i := range len(good) {
		if err := decodeLog(5, good[:i], &l); err == nil {
			t.Fatalf("decoded a value truncated to %d bytes", i)
		}
	}
	if err := decodeLog(5, append(bytes.Clone(good), 0), &l); err == nil {
		t.Fatal("decoded a value with a trailing byte")
	}
	bad := bytes.Clone(good)
	bad[0] = 2
	if err := decodeLog(5, bad, &l); err == nil {
		t.Fatal("decoded an unknown format version")
	}
}

// TestValueLogSyncErrorFailsTheStore: Badger only logs a failed value log
// sync; the store must turn it into an error instead of acknowledging.
func TestValueLogSyncErrorFailsTheStore(t *testing.T) {
	s := openStore(t, t.TempDir())
	if err := s.StoreLogs(mkLogs(1, 3)); err != nil {
		t.Fatal(err)
	}
	// What badger's valueLog.write logs when the msync fails.
	s.db.Opts().Logger.Errorf("Error while curlf sync: %v\n", errors.New("input/output error"))
	if err := s.StoreLogs(mkLogs(4, 5)); !errors.Is(err, ErrFailed) {
		t.Fatalf("StoreLogs after a value log sync error: %v; want ErrFailed", err)
	}
	if _, err := s.LastIndex(); !errors.Is(err, ErrFailed) {
		t.Fatalf("LastIndex after a failure: %v", err)
	}
}
