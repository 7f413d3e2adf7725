package fsm

import (
	"sync"
	"unsafe"
)

// maxStashed bounds the proposals whose prepared values wait for Apply;
// beyond it (proposals that failed and never applied) the stash is
// dropped, which only costs the parsing those entries then need.
const maxStashed = 256

// stash hands Apply, on the node that proposed a batch, what the append
// path prepared for its entries (ledger.Entry.Prepared), which the Raft
// command does not carry. It is keyed by the identity of the command's
// bytes: hashicorp/raft gives the leader's FSM the very slice the leader
// proposed, so a hit is the same batch, and a miss (a follower, a replay,
// a copy) is indexed from the envelopes, with the same result.
type stash struct {
	mu sync.Mutex
	m  map[*byte][]any
}

// Stash records the Prepared values of the entries of cmd, a batch command
// about to be proposed by this node (one value per entry, in order). Apply
// uses and forgets them when it applies that exact command. The command's
// bytes must not be reused until then.
func (f *FSM) Stash(cmd []byte, prepared []any) {
	if len(cmd) == 0 || len(prepared) == 0 {
		return
	}
	f.stash.mu.Lock()
	defer f.stash.mu.Unlock()
	if f.stash.m == nil || len(f.stash.m) >= maxStashed {
		f.stash.m = make(map[*byte][]any)
	}
	f.stash.m[unsafe.SliceData(cmd)] = prepared
}

// take returns and forgets the values stashed for cmd, if any.
func (s *stash) take(cmd []byte) []any {
	if len(cmd) == 0 {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	k := unsafe.SliceData(cmd)
	v, ok := s.m[k]
	if ok {
		delete(s.m, k)
	}
	return v
}
