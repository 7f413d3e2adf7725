package fsm

import (
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/provledger/provledger/crypto/envelope"
	"github.com/provledger/provledger/ledger"
)

// prepareChunk is the number of entries a prepare worker claims at a time:
// large enough that claiming costs nothing next to parsing (tens of µs per
// 1 KiB payload), small enough to spread a batch of a few dozen entries.
const prepareChunk = 8

// prepare fills Entry.Prepared of every entry of a batch that this node did
// not propose (a follower's batch, a replay), with the ledger Indexer's
// Prepare result, on up to opts.PrepareWorkers goroutines. The leader's
// append path does the same on its checker goroutines and hands the values
// over through the stash; without this a follower's indexer parses every
// payload on the serialized apply path, where the batch waits for it.
//
// It computes exactly what the indexer would compute from the envelope
// (Preparer is a pure function of the payload type and payload), so the
// index is the same with or without it. An envelope that does not parse is
// left unprepared: the indexer meets the same error and records it as it
// always does.
func (f *FSM) prepare(entries []ledger.Entry) {
	if f.preparer == nil || len(entries) == 0 {
		return
	}
	workers := min(f.opts.PrepareWorkers, (len(entries)+prepareChunk-1)/prepareChunk)
	if workers <= 1 {
		for i := range entries {
			f.prepareEntry(&entries[i])
		}
		return
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	work := func() {
		for {
			end := int(next.Add(prepareChunk))
			start := end - prepareChunk
			if start >= len(entries) {
				return
			}
			for i := start; i < min(end, len(entries)); i++ {
				f.prepareEntry(&entries[i])
			}
		}
	}
	for range workers - 1 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			work()
		}()
	}
	work() // the apply goroutine works too
	wg.Wait()
}

func (f *FSM) prepareEntry(e *ledger.Entry) {
	if e.Prepared != nil {
		return
	}
	env, err := envelope.Parse(e.Envelope)
	if err != nil {
		return
	}
	e.Prepared = f.preparer.Prepare(e.PayloadType, env.Payload)
}

// findPreparer returns the first ledger.Preparer in the chain of indexers
// starting at ix: ix itself, or what an indexer that wraps another (the
// policy index wraps the lineage index) returns from Unwrap. This is the
// indexer the append path prepares for (provd hands it to the api layer),
// and a wrapper passes Entry.Prepared on to it. Nil if none prepares.
func findPreparer(ix ledger.Indexer) ledger.Preparer {
	for ix != nil {
		if p, ok := ix.(ledger.Preparer); ok {
			return p
		}
		u, ok := ix.(interface{ Unwrap() ledger.Indexer })
		if !ok {
			return nil
		}
		ix = u.Unwrap()
	}
	return nil
}

// defaultPrepareWorkers is the PrepareWorkers default: every core.
func defaultPrepareWorkers() int { return runtime.GOMAXPROCS(0) }
