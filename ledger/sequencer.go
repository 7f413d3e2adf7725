package ledger

import (
	"context"
	"fmt"
	"sync"
)

// Receipt is what an append returns: where the entry is, the checkpoint that
// covers it and the inclusion proof against that checkpoint. A client that
// holds the log's public key verifies it without trusting the server.
type Receipt struct {
	Result
	// Checkpoint is the signed checkpoint Proof leads to.
	Checkpoint *Checkpoint
	// Proof is the inclusion proof of Index in the tree of Checkpoint.Size.
	Proof [][]byte
}

// Sequencer orders verified entries into the log. Submit returns once every
// entry is durable and covered by a newly signed checkpoint, with one receipt
// per entry (in order). Entries must pass Entry.Validate; Submit rejects the
// whole call (ErrInvalidEntry naming the position) otherwise.
//
// If ctx ends after the entries were handed to the log, they may still be
// committed; appending them again is safe (dedup returns the same index).
type Sequencer interface {
	Submit(ctx context.Context, entries []Entry) ([]Receipt, error)
}

// Receipts builds the receipts of applied results against cp.
func (l *Log) Receipts(results []Result, cp *Checkpoint) ([]Receipt, error) {
	out := make([]Receipt, len(results))
	for i, r := range results {
		out[i] = Receipt{Result: r, Checkpoint: cp}
		if r.Err != nil {
			continue
		}
		p, err := l.InclusionProof(r.Index, cp.Size)
		if err != nil {
			return nil, fmt.Errorf("receipt for %d: %w", r.Index, err)
		}
		out[i].Proof = p
	}
	return out, nil
}

// SequencerOptions configure a LocalSequencer.
type SequencerOptions struct {
	// MaxBatch caps the entries integrated in one synced batch. Default 1024.
	MaxBatch int
	// QueueSize is the number of Submit calls that may wait for a batch.
	// Default 16384.
	QueueSize int
	// PipelineMin is the number of entries a batch needs to be started
	// while the previous one is still syncing (the next batch is then
	// integrated and written while the previous one syncs). Smaller
	// batches wait for the sync, as each batch costs a checkpoint
	// signature. Default 32; 1 always pipelines; MaxBatch or more never.
	PipelineMin int
}

// Validate reports the first problem with o.
func (o *SequencerOptions) Validate() error {
	if o.MaxBatch < 0 || o.QueueSize < 0 || o.PipelineMin < 0 {
		return fmt.Errorf("sequencer options: MaxBatch %d, QueueSize %d and PipelineMin %d must not be negative", o.MaxBatch, o.QueueSize, o.PipelineMin)
	}
	return nil
}

// LocalSequencer group-commits appends straight into a Log: while one batch
// is being synced, new appends queue up, and the next batch takes all of
// them (up to MaxBatch). Every batch is synced before any of its appends is
// acknowledged.
type LocalSequencer struct {
	log   *Log
	opts  SequencerOptions
	queue chan *seqRequest
	stop  chan struct{}
	done  chan struct{}
	once  sync.Once
}

type seqRequest struct {
	entries []Entry
	applied *Applied
	results []Result
	err     error
	done    chan struct{}
}

// NewLocalSequencer starts a sequencer for l. Close stops it.
func NewLocalSequencer(l *Log, o SequencerOptions) (*LocalSequencer, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	if o.MaxBatch == 0 {
		o.MaxBatch = 1024
	}
	if o.QueueSize == 0 {
		o.QueueSize = 16384
	}
	if o.PipelineMin == 0 {
		o.PipelineMin = 32
	}
	s := &LocalSequencer{
		log: l, opts: o,
		queue: make(chan *seqRequest, o.QueueSize),
		stop:  make(chan struct{}),
		done:  make(chan struct{}),
	}
	go s.run()
	return s, nil
}

// Submit implements Sequencer.
func (s *LocalSequencer) Submit(ctx context.Context, entries []Entry) ([]Receipt, error) {
	for i := range entries {
		if err := entries[i].Validate(s.log.opts.MaxEnvelopeSize); err != nil {
			return nil, fmt.Errorf("entry %d: %w", i, err)
		}
	}
	if len(entries) == 0 {
		return nil, nil
	}
	r := &seqRequest{entries: entries, done: make(chan struct{})}
	select {
	case <-s.stop:
		return nil, ErrClosed
	default:
	}
	select {
	case s.queue <- r:
	case <-s.stop:
		return nil, ErrClosed
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	select {
	case <-r.done:
	case <-s.done:
		// The loop has exited; a request queued after its final drain is
		// never taken.
		select {
		case <-r.done:
		default:
			return nil, ErrClosed
		}
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if r.err != nil {
		return nil, r.err
	}
	// Proofs are built here, on the caller's goroutine, so that the batch
	// loop only integrates and syncs.
	return s.log.Receipts(r.results, r.applied.Checkpoint)
}

// maxPipelined is how many batches the local sequencer keeps in flight:
// one syncing, one being integrated.
const maxPipelined = 2

// stagedBatch is a batch handed to the WAL, with the requests it answers.
type stagedBatch struct {
	batch []*seqRequest
	p     *staged
	err   error
}

func (s *LocalSequencer) run() {
	defer close(s.done)
	finishing := make(chan stagedBatch, maxPipelined)
	finished := make(chan struct{}, maxPipelined)
	go s.finisher(finishing, finished)
	defer close(finishing)
	inflight := 0
	var entries []Entry
	for {
		var batch []*seqRequest
		entries = entries[:0]
		add := func(r *seqRequest) {
			batch = append(batch, r)
			entries = append(entries, r.entries...)
		}
		// Wait for a request, counting batches that finish meanwhile.
		for len(batch) == 0 {
			select {
			case r := <-s.queue:
				add(r)
			case <-finished:
				inflight--
			case <-s.stop:
				s.drain()
				for ; inflight > 0; inflight-- {
					<-finished
				}
				return
			}
		}
		// Take what is queued. While a batch is syncing, start the next
		// one only once it holds at least pipelineMin entries (each batch
		// costs a checkpoint signature); until then keep collecting, and
		// when the syncing batch finishes, go.
		for {
			collecting := true
			for collecting && len(entries) < s.opts.MaxBatch {
				select {
				case r := <-s.queue:
					add(r)
				default:
					collecting = false
				}
			}
			ready := inflight == 0 || len(entries) >= s.opts.PipelineMin || len(entries) >= s.opts.MaxBatch
			if ready && inflight < maxPipelined {
				break
			}
			if len(entries) >= s.opts.MaxBatch {
				<-finished
				inflight--
				continue
			}
			select {
			case r := <-s.queue:
				add(r)
			case <-finished:
				inflight--
			}
		}
		p, err := s.log.stage(Batch{Time: s.log.opts.Now(), Entries: entries}, ApplyOptions{Sync: true}, true)
		clear(entries) // drop envelope references
		inflight++
		finishing <- stagedBatch{batch: batch, p: p, err: err}
	}
}

// finisher waits for each staged batch's sync, in order, and wakes its
// requests; it tells run through finished.
func (s *LocalSequencer) finisher(in <-chan stagedBatch, finished chan<- struct{}) {
	for sb := range in {
		var applied *Applied
		err := sb.err
		if err == nil {
			applied, err = s.log.finish(sb.p)
		}
		off := 0
		for _, r := range sb.batch {
			if err != nil {
				r.err = err
			} else {
				r.applied = applied
				r.results = applied.Results[off : off+len(r.entries)]
			}
			off += len(r.entries)
			close(r.done)
		}
		finished <- struct{}{}
	}
}

// drain fails the requests still queued after Close.
func (s *LocalSequencer) drain() {
	for {
		select {
		case r := <-s.queue:
			r.err = ErrClosed
			close(r.done)
		default:
			return
		}
	}
}

// Close stops the sequencer after the batch in flight; queued appends fail
// with ErrClosed. It does not close the Log.
func (s *LocalSequencer) Close() error {
	s.once.Do(func() { close(s.stop) })
	<-s.done
	return nil
}

var _ Sequencer = (*LocalSequencer)(nil)
