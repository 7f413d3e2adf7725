package cluster

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/hashicorp/raft"

	"github.com/provledger/provledger/ledger"
	"github.com/provledger/provledger/raft/fsm"
)

// SequencerOptions configure a Sequencer.
type SequencerOptions struct {
	// MaxBatch caps the entries of one proposal. Default 1024.
	MaxBatch int
	// MaxBatchBytes caps the encoded size of one proposal; a single Submit
	// larger than it is proposed alone (up to Config.MaxCommandBytes).
	// Default 4 MiB.
	MaxBatchBytes int
	// QueueSize is the number of Submit calls that may wait for a batch.
	// Default 16384.
	QueueSize int
	// MaxInFlight is the number of proposals that may be in flight at once,
	// so the next batch is collected and encoded while the previous ones
	// are being replicated and fsynced. Default 2: more in flight split the
	// queue into smaller proposals, and each costs a ledger batch (Pebble
	// commit, checkpoint signature) on every node (see docs/raft.md).
	MaxInFlight int
	// PipelineMin: while a proposal is in flight, the next one is sent
	// only once at least this many appends are queued (or when the one in
	// flight completes). Small proposals cost nearly as much as large ones
	// to apply on every node, so under light load the sequencer waits and
	// batches; under heavy load it pipelines. Default 32.
	PipelineMin int
}

// Sequencer is the replicated ledger.Sequencer: it group-commits appends
// like ledger.LocalSequencer, but each batch becomes one Raft proposal
// (integration time assigned by the leader when it proposes), and an append
// is acknowledged once its batch is committed by a quorum (in the quorum's
// synced Raft logs) and applied to the leader's ledger, which has then
// signed the checkpoint covering it.
//
// Submit on a follower fails fast with a *LeaderError wrapping
// ErrNotLeader whose Leader.APIAddr is where to forward.
type Sequencer struct {
	n     *Node
	opts  SequencerOptions
	queue chan *seqRequest
	slots chan struct{}
	wake  chan struct{} // a proposal completed, or PipelineMin appends queued
	props chan *proposal
	stop  chan struct{}
	done  chan struct{}
	once  sync.Once
}

type seqRequest struct {
	entries []ledger.Entry
	size    int
	applied *ledger.Applied
	results []ledger.Result
	err     error
	done    chan struct{}
}

type proposal struct {
	f    raft.ApplyFuture
	reqs []*seqRequest
	err  error // set when the batch could not be proposed
}

var _ ledger.Sequencer = (*Sequencer)(nil)

// NewSequencer starts the replicated sequencer of n. Close stops it.
func (n *Node) NewSequencer(o SequencerOptions) (*Sequencer, error) {
	if o.MaxBatch < 0 || o.MaxBatchBytes < 0 || o.QueueSize < 0 || o.MaxInFlight < 0 || o.PipelineMin < 0 {
		return nil, fmt.Errorf("sequencer options must not be negative: %+v", o)
	}
	o.MaxBatch = cmpOr(o.MaxBatch, 1024)
	o.MaxBatchBytes = min(cmpOr(o.MaxBatchBytes, 4<<20), n.cfg.MaxCommandBytes)
	o.QueueSize = cmpOr(o.QueueSize, 16384)
	o.MaxInFlight = cmpOr(o.MaxInFlight, 2)
	o.PipelineMin = cmpOr(o.PipelineMin, 32)
	s := &Sequencer{
		n: n, opts: o,
		queue: make(chan *seqRequest, o.QueueSize),
		slots: make(chan struct{}, o.MaxInFlight),
		wake:  make(chan struct{}, 1),
		props: make(chan *proposal, o.MaxInFlight),
		stop:  make(chan struct{}),
		done:  make(chan struct{}),
	}
	go s.run()
	return s, nil
}

// Submit implements ledger.Sequencer.
func (s *Sequencer) Submit(ctx context.Context, entries []ledger.Entry) ([]ledger.Receipt, error) {
	maxEnv := s.n.log.Options().MaxEnvelopeSize
	size := 0
	for i := range entries {
		if err := entries[i].Validate(maxEnv); err != nil {
			return nil, fmt.Errorf("entry %d: %w", i, err)
		}
		size += fsm.EntrySize(&entries[i])
	}
	if len(entries) == 0 {
		return nil, nil
	}
	if limit := s.n.cfg.MaxCommandBytes - 32; size > limit {
		return nil, fmt.Errorf("%w: %d entries take %d bytes in one raft command, the limit is %d; submit fewer at once", ledger.ErrTooLarge, len(entries), size, limit)
	}
	if !s.n.IsLeader() {
		return nil, s.n.leaderError(ErrNotLeader, nil)
	}
	r := &seqRequest{entries: entries, size: size, done: make(chan struct{})}
	select {
	case <-s.stop:
		return nil, ledger.ErrClosed
	default:
	}
	select {
	case s.queue <- r:
	case <-s.stop:
		return nil, ledger.ErrClosed
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if len(s.queue) >= s.opts.PipelineMin {
		s.signal()
	}
	select {
	case <-r.done:
	case <-s.done:
		select {
		case <-r.done:
		default:
			return nil, ledger.ErrClosed
		}
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if r.err != nil {
		return nil, r.err
	}
	// Proofs are built on the caller's goroutine, against the leader's
	// ledger, which applied the batch before the proposal completed.
	return s.n.log.Receipts(r.results, r.applied.Checkpoint)
}

// Close stops the sequencer: queued appends fail with ledger.ErrClosed,
// proposals in flight complete. It does not stop the node.
func (s *Sequencer) Close() error {
	s.once.Do(func() { close(s.stop) })
	<-s.done
	return nil
}

func (s *Sequencer) run() {
	completed := make(chan struct{})
	go s.complete(completed)
	defer func() {
		close(s.props)
		<-completed
		close(s.done)
	}()
	var carry *seqRequest // taken from the queue but did not fit the last batch
	var entries []ledger.Entry
	for {
		// Wait for a free slot first: while proposals are in flight, appends
		// queue up and the next batch takes them all.
		select {
		case s.slots <- struct{}{}:
		case <-s.stop:
			s.fail(carry)
			s.drain()
			return
		}
		// With a proposal already in flight, send the next only once enough
		// appends are queued to make it worth its cost; else wait for the
		// one in flight to complete and take everything queued by then.
		for carry == nil && len(s.slots) > 1 && len(s.queue) < s.opts.PipelineMin {
			select {
			case <-s.wake:
			case <-s.stop:
				<-s.slots
				s.drain()
				return
			}
		}
		var batch []*seqRequest
		size := 0
		if carry != nil {
			batch, size, carry = append(batch, carry), carry.size, nil
		} else {
			select {
			case r := <-s.queue:
				batch, size = append(batch, r), r.size
			case <-s.stop:
				<-s.slots
				s.drain()
				return
			}
		}
		n := len(batch[0].entries)
	collect:
		for n < s.opts.MaxBatch {
			select {
			case r := <-s.queue:
				if n+len(r.entries) > s.opts.MaxBatch || size+r.size > s.opts.MaxBatchBytes {
					carry = r
					break collect
				}
				batch = append(batch, r)
				n += len(r.entries)
				size += r.size
			default:
				break collect
			}
		}
		entries = entries[:0]
		for _, r := range batch {
			entries = append(entries, r.entries...)
		}
		p := &proposal{reqs: batch}
		if !s.n.IsLeader() {
			p.err = s.n.leaderError(ErrNotLeader, nil)
		} else {
			b := ledger.Batch{Time: s.n.log.Options().Now(), Entries: entries}
			cmd := fsm.AppendBatch(make([]byte, 0, fsm.BatchSize(entries)), b)
			s.stashPrepared(cmd, entries)
			p.f = s.n.raft.Apply(cmd, 0)
		}
		clear(entries) // drop envelope references
		s.props <- p
	}
}

// complete waits for proposals in order and answers their appends.
func (s *Sequencer) complete(done chan<- struct{}) {
	defer close(done)
	for p := range s.props {
		err := p.err
		var a *ledger.Applied
		if err == nil {
			if err = p.f.Error(); err != nil {
				err = s.n.mapErr(err)
				if errors.Is(err, ledger.ErrClosed) {
					// Proposed, then the node stopped: the outcome is unknown.
					err = s.n.leaderError(ErrLeadershipLost, raft.ErrRaftShutdown)
				}
			} else {
				switch resp := p.f.Response().(type) {
				case *ledger.Applied:
					a = resp
				case error:
					err = resp
				default:
					err = fmt.Errorf("raft index %d: unexpected state machine response %T", p.f.Index(), resp)
				}
				if a != nil && (a.Skipped || len(a.Results) != countEntries(p.reqs)) {
					err = fmt.Errorf("raft index %d: state machine applied %d results for %d entries (skipped %v)", p.f.Index(), len(a.Results), countEntries(p.reqs), a.Skipped)
				}
			}
		}
		off := 0
		for _, r := range p.reqs {
			if err != nil {
				r.err = err
			} else {
				r.applied = a
				r.results = a.Results[off : off+len(r.entries)]
			}
			off += len(r.entries)
			close(r.done)
		}
		<-s.slots
		s.signal()
	}
}

func (s *Sequencer) signal() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

func countEntries(reqs []*seqRequest) int {
	n := 0
	for _, r := range reqs {
		n += len(r.entries)
	}
	return n
}

func (s *Sequencer) fail(r *seqRequest) {
	if r != nil {
		r.err = ledger.ErrClosed
		close(r.done)
	}
}

// drain fails the requests still queued after Close.
func (s *Sequencer) drain() {
	for {
		select {
		case r := <-s.queue:
			s.fail(r)
		default:
			return
		}
	}
}

// stashPrepared hands this node's FSM what the append path prepared for
// the entries of cmd (ledger.Entry.Prepared), so that applying the batch
// here does not parse the payloads again on the apply goroutine.
func (s *Sequencer) stashPrepared(cmd []byte, entries []ledger.Entry) {
	var vals []any
	for i := range entries {
		if entries[i].Prepared != nil {
			if vals == nil {
				vals = make([]any, len(entries))
			}
			vals[i] = entries[i].Prepared
		}
	}
	if vals != nil {
		s.n.fsm.Stash(cmd, vals)
	}
}
