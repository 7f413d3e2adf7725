package badgerstore

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/hashicorp/raft"
	raftbench "github.com/hashicorp/raft/bench"

	"github.com/provledger/provledger/bench/loadgen"
)

// The benchmarks hashicorp/raft ships for any LogStore / StableStore.
func BenchmarkRaftFirstIndex(b *testing.B) { raftbench.FirstIndex(b, openStore(b, b.TempDir())) }
func BenchmarkRaftLastIndex(b *testing.B)  { raftbench.LastIndex(b, openStore(b, b.TempDir())) }
func BenchmarkRaftGetLog(b *testing.B)     { raftbench.GetLog(b, openStore(b, b.TempDir())) }
func BenchmarkRaftStoreLog(b *testing.B)   { raftbench.StoreLog(b, openStore(b, b.TempDir())) }
func BenchmarkRaftStoreLogs(b *testing.B)  { raftbench.StoreLogs(b, openStore(b, b.TempDir())) }
func BenchmarkRaftDeleteRange(b *testing.B) {
	raftbench.DeleteRange(b, openStore(b, b.TempDir()))
}
func BenchmarkRaftSet(b *testing.B)       { raftbench.Set(b, openStore(b, b.TempDir())) }
func BenchmarkRaftGet(b *testing.B)       { raftbench.Get(b, openStore(b, b.TempDir())) }
func BenchmarkRaftSetUint64(b *testing.B) { raftbench.SetUint64(b, openStore(b, b.TempDir())) }
func BenchmarkRaftGetUint64(b *testing.B) { raftbench.GetUint64(b, openStore(b, b.TempDir())) }

// BenchmarkStoreLogs measures one synced StoreLogs call of n logs of the
// given size: what a Raft append costs (raft's leader stores up to
// MaxAppendEntries proposals per call). Logs of 64 KiB and more go to
// Badger's value log, smaller ones inline in the LSM tree.
func BenchmarkStoreLogs(b *testing.B) {
	for _, c := range []struct{ n, size int }{
		{1, 256}, {1, 40 << 10}, {1, 64 << 10}, {1, 140 << 10}, {1, 1 << 20}, {8, 128 << 10}, {64, 1 << 10}, {64, 16 << 10}, {16, 1 << 20},
	} {
		b.Run(fmt.Sprintf("logs=%d/size=%d", c.n, c.size), func(b *testing.B) {
			s := openStore(b, b.TempDir(), func(o *Options) { o.MemTableSize = 0 }) // production default
			data := make([]byte, c.size)
			logs := make([]*raft.Log, c.n)
			b.SetBytes(int64(c.n * c.size))
			b.ResetTimer()
			c0 := loadgen.SelfCPU()
			w0 := selfWriteBytes()
			next := uint64(1)
			for range b.N {
				for j := range logs {
					logs[j] = &raft.Log{Index: next, Term: 1, Type: raft.LogCommand, Data: data}
					next++
				}
				if err := s.StoreLogs(logs); err != nil {
					b.Fatal(err)
				}
			}
			// Process CPU (user + system: page faults in Badger's mmapped
			// files and the msyncs are kernel time) per call.
			b.ReportMetric(float64((loadgen.SelfCPU()-c0).Microseconds())/float64(b.N), "cpu-µs/op")
			b.ReportMetric(float64(selfWriteBytes()-w0)/float64(b.N), "disk-B/op")
		})
	}
}

// selfWriteBytes is the bytes this process caused to be written to
// storage (write_bytes of /proc/self/io: pages it dirtied, counted again
// each time a page written back is dirtied anew); 0 where unavailable.
func selfWriteBytes() int64 {
	b, err := os.ReadFile("/proc/self/io")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "write_bytes: "); ok {
			n, _ := strconv.ParseInt(v, 10, 64)
			return n
		}
	}
	return 0
}
