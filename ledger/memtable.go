package ledger

import "math/rand/v2"

// Pebble's memtable size. Every node of a Raft cluster applies the same
// batches, so with one memtable size they all fill their memtables at the
// same log position and flush them at the same moment. Where the nodes
// share a machine or a disk (the 3-node benchmark on one 2-core VM; VMs on
// one host; one SAN), those flushes (32 MiB of envelopes written out in
// ≈ 0.4 s, every ≈ 2.5 s at 6,000 entries/s) land together, saturate the
// disk and the cores, and stall the Raft commits behind them: they were
// the p99 of `provbench cluster`. So each Open picks its memtable size
// uniformly from memTableBase ± memTableJitter, in MiB steps, and the
// nodes' flushes drift apart (docs/ledger.md, "Memtable size").
const (
	memTableBase   = 32 << 20
	memTableJitter = 8 << 20
)

// memTableSize returns a memtable size in [memTableBase−memTableJitter,
// memTableBase+memTableJitter], a whole number of MiB; intN(n) must return
// a uniform integer in [0, n).
func memTableSize(intN func(n int) int) uint64 {
	const mib = 1 << 20
	steps := 2*memTableJitter/mib + 1
	return uint64(memTableBase - memTableJitter + intN(steps)*mib)
}

// randomMemTableSize is memTableSize with math/rand/v2.
func randomMemTableSize() uint64 { return memTableSize(rand.IntN) }
