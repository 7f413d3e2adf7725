package scanner

import (
	"math/rand/v2"
	"strconv"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// TestTableFlush: random touches and deletes (keys created and deleted
// between two flushes, deleted and created again, deleted twice), each
// flush committed: the store then holds exactly the table (a table
// loaded from it is equal), and a key created and deleted between two
// flushes writes nothing.
func TestTableFlush(t *testing.T) {
	db, err := pebble.Open("", &pebble.Options{FS: vfs.NewMem()})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rng := rand.New(rand.NewPCG(11, 12))
	tb := newTable[budget, *budget](tblBudget)
	for round := range 200 {
		ops := rng.IntN(40)
		if round == 100 {
			ops = 0
		}
		for range ops {
			k := strconv.Itoa(rng.IntN(30))
			if rng.IntN(3) == 0 {
				tb.del(k)
			} else {
				tb.touch(k).Amount = float64(rng.IntN(1000))
			}
		}
		if round == 100 {
			// Created and deleted in one round: nothing is written.
			tb.touch("transient").Amount = 1
			tb.del("transient")
		}
		b := db.NewBatch()
		if err := tb.flush(b); err != nil {
			t.Fatal(err)
		}
		if round == 100 && b.Count() != 0 {
			t.Fatalf("a key created and deleted between flushes wrote %d records", b.Count())
		}
		if err := b.Commit(pebble.NoSync); err != nil {
			t.Fatal(err)
		}
		got := newTable[budget, *budget](tblBudget)
		if err := got.load(db, stateFormat); err != nil {
			t.Fatal(err)
		}
		if len(got.m) != len(tb.m) {
			t.Fatalf("round %d: the store holds %d keys, the table %d", round, len(got.m), len(tb.m))
		}
		for k, c := range tb.m {
			if g := got.m[k]; g == nil || g.v != c.v {
				t.Fatalf("round %d: key %s stored as %+v, the table has %+v", round, k, g, c.v)
			}
		}
		if round%50 == 49 {
			tb = got // go on from a loaded table
		}
	}
}
