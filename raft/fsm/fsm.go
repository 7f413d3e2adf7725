// Package fsm is the Raft state machine of a provledger cluster: it applies
// committed commands to a ledger.Log.
//
// One command is one group-committed batch (or a membership record). Apply
// hands the batch to ledger.Log.Apply with the command's Raft index and
// without syncing Pebble: the Raft log (synced in Badger) is the durable
// copy, and ledger.Apply skips a batch whose Raft index is not above the
// stored one, so replaying the Raft log after a crash is idempotent.
// Snapshots sync Pebble before they are persisted, so raft never truncates a
// log entry whose effect is not durable in Pebble. See docs/raft.md.
package fsm

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/hashicorp/raft"

	"github.com/provledger/provledger/ledger"
)

// prefixMember is the Pebble key prefix of the cluster metadata: 'n' + node
// id → API address. It lives in the ledger's store so it rides in
// snapshots.
const prefixMember = 'n'

// ErrFailed wraps the error that stopped the state machine. After a batch
// fails to apply (a storage error: the ledger rolled it back) every later
// command is refused, so this node never skips a batch the others applied;
// restarting the node replays the Raft log from the ledger's last durable
// batch.
var ErrFailed = errors.New("state machine failed")

// Options configure an FSM.
type Options struct {
	// ScratchDir receives the temporary file of a snapshot restore; put it on
	// the ledger's file system. Default os.TempDir().
	ScratchDir string
	// OnFatal is called once, from the Raft apply goroutine, when the state
	// machine stops (see ErrFailed). It must not block; a node shuts itself
	// down from here so another node can lead.
	OnFatal func(error)
	// Logger receives the state machine's logs. Default slog.Default().
	Logger *slog.Logger
	// PrepareWorkers: when the ledger's Indexer is a ledger.Preparer, the
	// goroutines that prepare (parse) the payloads of a batch this node
	// did not propose, before it is applied (prepare.go). Default
	// GOMAXPROCS; 1 prepares on the apply goroutine; negative leaves the
	// parsing to the indexer (also on the apply goroutine, entry by entry).
	PrepareWorkers int
}

// FSM implements raft.FSM over a ledger.Log.
type FSM struct {
	log  *ledger.Log
	opts Options
	lg   *slog.Logger

	mu      sync.RWMutex
	members map[string]string // node id → API address

	stash    stash           // prepared values of the batches this node proposed (stash.go)
	preparer ledger.Preparer // the ledger's Indexer, if it prepares (prepare.go)

	lastIndex atomic.Uint64 // Raft index of the last command seen
	failed    atomic.Pointer[error]
	fatalOnce sync.Once
}

var _ raft.FSM = (*FSM)(nil)

// New returns the state machine of l, with the membership records stored in
// it.
func New(l *ledger.Log, o Options) (*FSM, error) {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.PrepareWorkers == 0 {
		o.PrepareWorkers = defaultPrepareWorkers()
	}
	f := &FSM{log: l, opts: o, lg: o.Logger}
	if o.PrepareWorkers > 0 {
		f.preparer = findPreparer(l.Options().Indexer)
	}
	if err := f.loadMembers(); err != nil {
		return nil, err
	}
	f.lastIndex.Store(l.AppliedIndex())
	return f, nil
}

// Log returns the ledger the state machine applies to.
func (f *FSM) Log() *ledger.Log { return f.log }

// Err returns the error that stopped the state machine, or nil.
func (f *FSM) Err() error {
	if p := f.failed.Load(); p != nil {
		return *p
	}
	return nil
}

// LastIndex is the Raft index of the last command this node applied (batch
// or membership; 0 after a restart until the next command).
func (f *FSM) LastIndex() uint64 { return f.lastIndex.Load() }

// Apply implements raft.FSM. The response is *ledger.Applied for a batch,
// nil for a membership record, or an error.
func (f *FSM) Apply(l *raft.Log) any {
	if err := f.Err(); err != nil {
		return err
	}
	if l.Type != raft.LogCommand {
		return nil
	}
	c, err := Decode(l.Data)
	if err != nil {
		// Deterministic: every node refuses the same bytes the same way.
		f.lg.Error("raft command does not decode; ignored on every node", "index", l.Index, "err", err)
		f.lastIndex.Store(l.Index)
		return fmt.Errorf("raft index %d: %w", l.Index, err)
	}
	switch c.Kind {
	case KindBatch:
		if p := f.stash.take(l.Data); len(p) == len(c.Batch.Entries) {
			for i := range c.Batch.Entries {
				c.Batch.Entries[i].Prepared = p[i]
			}
		} else if l.Index > f.log.AppliedIndex() { // not a replay the ledger skips
			f.prepare(c.Batch.Entries)
		}
		a, err := f.log.Apply(c.Batch, ledger.ApplyOptions{RaftIndex: l.Index})
		if err != nil {
			return f.fatal(fmt.Errorf("apply batch of %d entries at raft index %d: %w", len(c.Batch.Entries), l.Index, err))
		}
		f.lastIndex.Store(l.Index)
		return a
	case KindSetMember, KindRemoveMember:
		if l.Index <= f.log.AppliedIndex() {
			// A replay over a state that already holds it (a snapshot
			// newer than its Raft index, or a restart): rewriting it now
			// would show an older address until the replay caught up.
			f.lastIndex.Store(l.Index)
			return nil
		}
		if err := f.applyMember(c); err != nil {
			return f.fatal(fmt.Errorf("apply membership record at raft index %d: %w", l.Index, err))
		}
		f.lastIndex.Store(l.Index)
		return nil
	}
	return nil // unreachable: Decode knows every kind
}

func (f *FSM) fatal(err error) error {
	err = fmt.Errorf("%w: %w", ErrFailed, err)
	f.fatalOnce.Do(func() {
		f.failed.Store(&err)
		f.lg.Error("state machine stopped; this node refuses further commands until restarted", "err", err)
		if f.opts.OnFatal != nil {
			f.opts.OnFatal(err)
		}
	})
	return err
}

// applyMember writes (or deletes) one membership record. It is not synced,
// like batches; it is an overwrite, so replaying it is harmless.
func (f *FSM) applyMember(c Command) error {
	b := f.log.DB().NewBatch()
	defer b.Close()
	key := append([]byte{prefixMember}, c.Member.ID...)
	var err error
	if c.Kind == KindSetMember {
		err = b.Set(key, []byte(c.Member.APIAddr), nil)
	} else {
		err = b.Delete(key, nil)
	}
	if err == nil {
		err = b.Commit(pebble.NoSync)
	}
	if err != nil {
		return err
	}
	f.mu.Lock()
	if c.Kind == KindSetMember {
		f.members[c.Member.ID] = c.Member.APIAddr
	} else {
		delete(f.members, c.Member.ID)
	}
	f.mu.Unlock()
	return nil
}

func (f *FSM) loadMembers() error {
	m := map[string]string{}
	it, err := f.log.DB().NewIter(&pebble.IterOptions{LowerBound: []byte{prefixMember}, UpperBound: []byte{prefixMember + 1}})
	if err != nil {
		return fmt.Errorf("load cluster members: %w", err)
	}
	for ok := it.First(); ok; ok = it.Next() {
		v, err := it.ValueAndErr()
		if err != nil {
			it.Close()
			return fmt.Errorf("load cluster members: %w", err)
		}
		m[string(it.Key()[1:])] = string(v)
	}
	if err := it.Close(); err != nil {
		return fmt.Errorf("load cluster members: %w", err)
	}
	f.mu.Lock()
	f.members = m
	f.mu.Unlock()
	return nil
}

// APIAddr returns the API address recorded for node id.
func (f *FSM) APIAddr(id string) (string, bool) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	a, ok := f.members[id]
	return a, ok
}

// Members returns a copy of the recorded node id → API address map.
func (f *FSM) Members() map[string]string {
	f.mu.RLock()
	defer f.mu.RUnlock()
	m := make(map[string]string, len(f.members))
	for k, v := range f.members {
		m[k] = v
	}
	return m
}

// Snapshot implements raft.FSM: it captures a Pebble snapshot (cheap); the
// data is streamed by Persist.
func (f *FSM) Snapshot() (raft.FSMSnapshot, error) {
	if err := f.Err(); err != nil {
		return nil, err
	}
	s, err := f.log.NewSnapshot()
	if err != nil {
		return nil, fmt.Errorf("snapshot: %w", err)
	}
	return &fsmSnapshot{f: f, s: s}, nil
}

// Restore implements raft.FSM: it replaces the ledger's content with the
// snapshot, unless the ledger already holds it (the common case when a
// node restarts from its own snapshot: then only the header is read). A
// snapshot reference (snapref.go), this node's own snapshot, is only
// checked against the ledger: ErrNotHeld if the ledger does not hold it.
func (f *FSM) Restore(rc io.ReadCloser) error {
	if err := f.Err(); err != nil {
		return err
	}
	br := bufio.NewReaderSize(rc, 64<<10)
	index, isRef, err := readRef(br)
	if err != nil {
		return fmt.Errorf("restore snapshot: %w", err)
	}
	if isRef {
		if err := f.checkHeld(br, index); err != nil {
			return fmt.Errorf("restore %w", err)
		}
		return f.loadMembers()
	}
	info, err := f.log.Restore(br, ledger.RestoreOptions{ScratchDir: f.opts.ScratchDir, SkipIfCovered: true})
	if err != nil {
		return fmt.Errorf("restore snapshot: %w", err)
	}
	if !info.Skipped {
		f.lastIndex.Store(info.AppliedIndex)
	}
	return f.loadMembers()
}

type fsmSnapshot struct {
	f *FSM
	s *ledger.Snapshot
}

// Persist syncs Pebble, then writes a reference to the snapshot into the
// sink (snapref.go: the ledger holds the content, which is streamed only
// when the snapshot is sent). The sync comes first because raft truncates
// its log once the sink is closed: every batch up to the snapshot must then
// be durable in Pebble.
func (s *fsmSnapshot) Persist(sink raft.SnapshotSink) error {
	start := time.Now()
	err := s.f.log.Sync()
	var n int64
	if err == nil {
		n, err = s.f.persistRef(s.s, sink)
	}
	if err != nil {
		sink.Cancel()
		return fmt.Errorf("persist snapshot at applied index %d: %w", s.s.AppliedIndex(), err)
	}
	if err := sink.Close(); err != nil {
		return fmt.Errorf("persist snapshot at applied index %d: %w", s.s.AppliedIndex(), err)
	}
	s.f.lg.Info("snapshot persisted", "id", sink.ID(), "applied_index", s.s.AppliedIndex(), "size", s.s.Checkpoint().Size, "bytes", n, "took", time.Since(start))
	return nil
}

func (s *fsmSnapshot) Release() { s.s.Close() }
