// Package scanner is the anomaly scanner: it reads the log in order, runs
// its detectors (integrity, GitOps, lineage drift, volume and quality,
// freshness, cost, time) over every entry and appends each finding back
// into the log as a DSSE-signed application/vnd.provledger.finding+json
// entry signed by the node's scanner key.
//
// Its state (cursor and per-series baselines) lives in the ledger's Pebble
// store under the reserved prefix 's' and is committed in one batch with
// the cursor, after the findings of the entries below the cursor are
// durable in the log. A restart resumes at the cursor; a crash between the
// two rescans the same entries from the same state and produces the same
// findings, which the log deduplicates (Ed25519 signatures are
// deterministic), so no finding is reported twice. Decisions use only the
// log: integration times are the scanner's clock.
package scanner

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ed25519"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/sigstore/sigstore/pkg/signature"

	"github.com/provledger/provledger/crypto/envelope"
	"github.com/provledger/provledger/crypto/keys"
	"github.com/provledger/provledger/crypto/policy"
	"github.com/provledger/provledger/crypto/record"
	"github.com/provledger/provledger/ledger"
	"github.com/provledger/provledger/query/payload"
)

// Sentinel errors.
var (
	// ErrState: the stored scanner state cannot be used.
	ErrState = errors.New("scanner: bad stored state")
	// ErrNotLeader: a continuous scan was asked of a node that does not lead.
	ErrNotLeader = errors.New("scanner: not the leader")
)

// maxFindingBatch bounds the findings submitted in one Submit call.
const maxFindingBatch = 256

// Scanner scans one log. Its methods are safe for concurrent use; scans
// are serialized.
type Scanner struct {
	log    *ledger.Log
	seq    ledger.Sequencer
	opts   Options
	self   keys.KeyID
	signer signature.Signer

	mu        sync.Mutex
	cursor    uint64        // committed: the stored state is the state here
	next      uint64        // next entry to process: the in-memory state is the state here
	cursorPub atomic.Uint64 // cursor, for readers that must not wait for a chunk
	tick      int64

	// base are the options New was given (with defaults); opts are base
	// with the scanner thresholds of the policy in force applied. The
	// in-order stage replaces opts when the thresholds change, while the
	// next chunk is being read and prepared in the background, so the
	// reading and preparing stage (read, prepare, prepareOne, the prefetch)
	// uses base only: the thresholds set detector options, none of the
	// ones it reads (ChunkSize, Workers, Limits, Integrity, Trust).
	base       Options
	thresholds policy.Thresholds
	threshSet  bool // thresholds changed since the last commit

	keys      *table[keyState, *keyState]
	approvals *table[approval, *approval]
	budgets   *table[budget, *budget]
	jobs      *table[jobState, *jobState]
	datasets  *table[datasetState, *datasetState]
	runs      *table[runState, *runState]
	volume    *table[series, *series]
	cost      *table[costSeries, *costSeries]

	// verifiers and public keys of keys granted by policy (the trust
	// keyring caches its own).
	// runDue and staleDue queue the hourly checks of runs and datasets;
	// limitPending are datasets whose freshness limit is to compute
	// (deadlines.go).
	runDue, staleDue deadlineQueue
	limitPending     []string

	verifiers map[keys.KeyID][]signature.Verifier
	pubs      map[keys.KeyID]crypto.PublicKey

	out []*Finding
	kb  []byte // key scratch of the in-order stage
	// sb and shares hold the cost series of a row (seriesOf).
	sb     []byte
	shares []share
	gaps   []float64 // freshnessLimit's scratch

	// leans are lean decoders kept between chunks (with their count
	// slabs); chunks are item slices kept between chunks.
	leans  sync.Pool
	chunks sync.Pool
}

// New opens the scanner of l, loading its stored state. Findings are
// appended through seq.
func New(l *ledger.Log, seq ledger.Sequencer, o Options) (*Scanner, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	o = o.withDefaults()
	pub, err := o.Signer.PublicKey()
	if err != nil {
		return nil, fmt.Errorf("scanner key: %w", err)
	}
	id, err := keys.IDOf(pub)
	if err != nil {
		return nil, fmt.Errorf("scanner key: %w", err)
	}
	s := &Scanner{
		log: l, seq: seq, opts: o, base: o, self: id, signer: o.Signer,
		keys:      newTable[keyState, *keyState](tblKey),
		approvals: newTable[approval, *approval](tblApproval),
		budgets:   newTable[budget, *budget](tblBudget),
		jobs:      newTable[jobState, *jobState](tblJob),
		datasets:  newTable[datasetState, *datasetState](tblDataset),
		runs:      newTable[runState, *runState](tblRun),
		volume:    newTable[series, *series](tblVolume),
		cost:      newTable[costSeries, *costSeries](tblCost),
	}
	if err := s.load(); err != nil {
		return nil, err
	}
	return s, nil
}

// KeyID is the scanner key's id: the signer of every finding.
func (s *Scanner) KeyID() keys.KeyID { return s.self }

// Options returns the scanner's options with defaults applied (as
// configured: without the thresholds of policy entries).
func (s *Scanner) Options() Options { return s.base }

// Cursor is the index of the next entry to scan.
func (s *Scanner) Cursor() uint64 {
	return s.cursorPub.Load()
}

// stateTable is a table of any value type.
type stateTable interface {
	load(db *pebble.DB, format uint64) error
	flush(*pebble.Batch) error
	reset()
}

func (s *Scanner) tables() []stateTable {
	return []stateTable{s.keys, s.approvals, s.budgets, s.jobs, s.datasets, s.runs, s.volume, s.cost}
}

// load reads the stored state (the committed cursor's). A state of format
// 1 (JSON) is migrated: rewritten in format 2 in one synced batch.
func (s *Scanner) load() error {
	db := s.log.DB()
	s.cursor, s.tick = 0, 0
	s.verifiers = map[keys.KeyID][]signature.Verifier{}
	s.pubs = map[keys.KeyID]crypto.PublicKey{}
	s.out = nil
	format := uint64(stateFormat)
	if v, closer, err := db.Get(keyFormat); err == nil {
		if len(v) == 8 {
			format = binary.BigEndian.Uint64(v)
		} else {
			format = 0
		}
		closer.Close()
		if format != stateFormat && format != stateFormatJSON {
			return fmt.Errorf("%w: state format %d, this build reads %d and %d: delete the scanner state (keys from \"s\" to \"t\" of the ledger's Pebble store) to rescan from entry 0", ErrState, format, stateFormatJSON, stateFormat)
		}
	} else if !errors.Is(err, pebble.ErrNotFound) {
		return err
	}
	for _, kv := range []struct {
		k []byte
		v *uint64
	}{{keyCursor, &s.cursor}} {
		v, closer, err := db.Get(kv.k)
		if errors.Is(err, pebble.ErrNotFound) {
			continue
		}
		if err != nil {
			return err
		}
		*kv.v = binary.BigEndian.Uint64(v)
		closer.Close()
	}
	if v, closer, err := db.Get(keyTick); err == nil {
		s.tick = int64(binary.BigEndian.Uint64(v))
		closer.Close()
	} else if !errors.Is(err, pebble.ErrNotFound) {
		return err
	}
	s.next = s.cursor
	s.cursorPub.Store(s.cursor)
	if err := s.loadThresholds(db); err != nil {
		return fmt.Errorf("%w: %v", ErrState, err)
	}
	for _, t := range s.tables() {
		t.reset()
		if err := t.load(db, format); err != nil {
			return fmt.Errorf("%w: %v", ErrState, err)
		}
	}
	s.rebuildDeadlines()
	if format == stateFormatJSON {
		if err := s.writeState(s.cursor); err != nil {
			return fmt.Errorf("scanner: migrate the state to format %d: %w", stateFormat, err)
		}
		s.opts.Logger.Info("scanner state migrated", "from", stateFormatJSON, "to", stateFormat, "cursor", s.cursor)
	}
	var err error
	s.keys.each(func(k string, ks *keyState) {
		if ks.PEM == "" || err != nil {
			return
		}
		if verr := s.addVerifier(k, ks.PEM); verr != nil {
			err = fmt.Errorf("%w: key %s: %v", ErrState, k, verr)
		}
	})
	return err
}

func (s *Scanner) addVerifier(hexID, pem string) error {
	id, err := keys.ParseKeyID(hexID)
	if err != nil {
		return err
	}
	pub, err := keys.ParsePublicPEM([]byte(pem))
	if err != nil {
		return err
	}
	vs, err := keys.NewVerifiers(pub)
	if err != nil {
		return err
	}
	s.verifiers[id] = vs
	s.pubs[id] = pub
	return nil
}

// Pass is the outcome of one Scan.
type Pass struct {
	// From and To delimit the entries scanned: [From, To).
	From, To uint64
	// Skipped counts the scanner's own findings among them.
	Skipped int
	// StrictParsed counts the payloads the lean decoder left to the
	// strict parser: invalid ones (the strict parser's error is the
	// finding's message), in-toto statements, and forms the lean decoder
	// does not decode (a columnLineage facet, cost Tags given as a string).
	StrictParsed int
	// Findings are the findings raised, with their indexes in the log.
	Findings []StoredFinding
}

// Scan scans the entries from the cursor up to upTo (0: the latest
// checkpoint's size), appends the findings, and commits the state and
// cursor chunk by chunk. On error the cursor stays after the last
// committed chunk.
func (s *Scanner) Scan(ctx context.Context, upTo uint64) (*Pass, error) {
	size := s.log.Latest().Size
	if upTo == 0 || upTo > size {
		upTo = size
	}
	var p *Pass
	var pf prefetch
	defer pf.wait()
	for {
		// The lock is held per chunk, so readers (Cursor, Forecast) wait
		// for one chunk at most, and concurrent passes take turns.
		done, err := s.scanChunk(ctx, upTo, &p, &pf)
		if err != nil || done {
			return p, err
		}
	}
}

// prefetch is the next chunk, read and prepared in the background while
// the detectors run over the current one and its findings are committed.
type prefetch struct {
	start uint64
	done  chan struct{}
	items []item
	err   error
}

// wait waits for the background chunk, if any, and returns it.
func (pf *prefetch) wait() (uint64, []item, error) {
	if pf.done == nil {
		return 0, nil, nil
	}
	<-pf.done
	start, items, err := pf.start, pf.items, pf.err
	*pf = prefetch{}
	return start, items, err
}

// canPrefetch: preparing an entry depends on the scanner's state only
// through the verifiers of policy keys, which are used only when
// signatures are re-verified.
func (s *Scanner) canPrefetch() bool {
	return !s.base.Integrity.VerifySignatures || s.base.Integrity.Disabled
}

// chunk returns the prepared chunk at start: the prefetched one when it
// starts there, else one read and prepared now.
func (s *Scanner) chunk(start, upTo uint64, pf *prefetch) ([]item, error) {
	if at, items, err := pf.wait(); items != nil && err == nil && at == start {
		return items, nil
	}
	items, err := s.read(start, min(upTo, start+uint64(s.base.ChunkSize)))
	if err != nil {
		return nil, err
	}
	s.prepare(items)
	return items, nil
}

// startPrefetch reads and prepares the chunk at start in the background.
func (s *Scanner) startPrefetch(start, upTo uint64, pf *prefetch) {
	if start >= upTo || !s.canPrefetch() {
		return
	}
	pf.start, pf.done = start, make(chan struct{})
	go func() {
		defer close(pf.done)
		pf.items, pf.err = s.read(start, min(upTo, start+uint64(s.base.ChunkSize)))
		if pf.err == nil {
			s.prepare(pf.items)
		}
	}()
}

// scanChunk scans one chunk from the in-memory cursor towards upTo,
// appends its findings, and commits the state when CommitEvery entries
// have been processed since the last commit, at upTo, or when ctx ends;
// done is true once the committed cursor has reached upTo.
func (s *Scanner) scanChunk(ctx context.Context, upTo uint64, pp **Pass, pf *prefetch) (done bool, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if *pp == nil {
		*pp = &Pass{From: s.next, To: s.next}
	}
	p := *pp
	if s.next >= upTo {
		// (A concurrent pass may have processed up to upTo and left the
		// commit to this one.)
		if s.cursor < s.next {
			return false, s.settle(ctx, p, nil, false)
		}
		return true, nil
	}
	if err := ctx.Err(); err != nil {
		return false, s.settle(ctx, p, err, false)
	}
	items, err := s.chunk(s.next, upTo, pf)
	if err != nil {
		return false, s.settle(ctx, p, err, false)
	}
	end := items[len(items)-1].index + 1
	s.startPrefetch(end, upTo, pf)
	for i := range items {
		if items[i].own {
			p.Skipped++
			continue
		}
		if items[i].strict {
			p.StrictParsed++
		}
		s.process(&items[i])
	}
	s.putItems(items) // (nothing the detectors keep points into items)
	// The findings are appended in batches (each Submit waits for a
	// synced write), and always before the state that saw them is
	// committed.
	commit := end >= upTo || end-s.cursor >= uint64(s.opts.CommitEvery) || ctx.Err() != nil
	if commit || len(s.out) >= maxFindingBatch {
		stored, err := s.appendFindings(ctx)
		p.Findings = append(p.Findings, stored...)
		if err != nil {
			return false, s.settle(ctx, p, err, true)
		}
	}
	s.next = end
	p.To = end
	if commit {
		if err := s.commitState(); err != nil {
			return false, s.settle(ctx, p, err, true)
		}
	}
	return end >= upTo, nil
}

// settle ends a pass with err (nil: a pass that only commits). Without
// reload, the queued findings of the processed chunks are appended (even
// when ctx ended) and the state is committed up to the last chunk.
// With reload (or if that commit fails), the in-memory state may have
// seen entries whose findings are not all in the log: it goes back to the
// stored state, and the rescan appends the same findings again, which
// the log deduplicates.
func (s *Scanner) settle(ctx context.Context, p *Pass, err error, reload bool) error {
	if !reload && s.next > s.cursor && len(s.out) > 0 {
		stored, aerr := s.appendFindings(context.WithoutCancel(ctx))
		p.Findings = append(p.Findings, stored...)
		if aerr != nil {
			err, reload = errors.Join(err, aerr), true
		}
	}
	if !reload && s.next > s.cursor {
		if cerr := s.commitState(); cerr != nil {
			err, reload = errors.Join(err, cerr), true
		}
	}
	if reload {
		if lerr := s.load(); lerr != nil {
			err = errors.Join(err, lerr)
		}
	}
	p.To = s.cursor
	return err
}

// item is one entry being scanned.
type item struct {
	index    uint64
	rec      record.Record
	recErr   error
	own      bool
	redacted bool
	env      *envelope.Envelope
	envErr   error
	sigErr   error
	parsed   *payload.Parsed
	ev       *eventKeys // of parsed.Event
	policy   *Policy
	parseErr error
	strict   bool // the strict parser decoded the payload
}

// getItems returns an empty item slice of capacity n or more (a chunk's
// slice is a quarter of a megabyte at the default chunk size).
func (s *Scanner) getItems(n int) []item {
	if p, _ := s.chunks.Get().(*[]item); p != nil && cap(*p) >= n {
		return (*p)[:0]
	}
	return make([]item, 0, n)
}

// putItems keeps a processed chunk's slice for getItems.
func (s *Scanner) putItems(items []item) {
	items = items[:cap(items)]
	clear(items)
	items = items[:0]
	s.chunks.Put(&items)
}

// read decodes the records of [start, end), ending the chunk after a
// policy entry (later entries are verified with the keys it grants).
func (s *Scanner) read(start, end uint64) ([]item, error) {
	items := s.getItems(int(end - start))
	stop := errors.New("stop")
	err := s.log.Records(start, end, func(index uint64, rec []byte) error {
		it := item{index: index}
		it.rec, it.recErr = record.Unmarshal(rec)
		if it.recErr == nil && it.rec.PayloadType == TypeFinding {
			for _, sg := range it.rec.Signers {
				if sg == s.self {
					it.own = true
				}
			}
		}
		items = append(items, it)
		if it.recErr == nil && it.rec.PayloadType == TypePolicy {
			return stop
		}
		return nil
	})
	if err != nil && !errors.Is(err, stop) {
		return nil, fmt.Errorf("scanner: read entries from %d: %w", start, err)
	}
	return items, nil
}

// preparePartSize is the entries of one part of a chunk in prepare.
const preparePartSize = 512

// prepare reads, parses and verifies the envelopes of items in parallel:
// Workers goroutines take contiguous parts of preparePartSize entries
// in turn (parts, not halves: a worker that is done early takes the next
// part instead of leaving its core idle at the end of the chunk), each
// read with one range read in index order.
func (s *Scanner) prepare(items []item) {
	parts := (len(items) + preparePartSize - 1) / preparePartSize
	w := min(s.base.Workers, parts)
	if w <= 1 {
		s.preparePart(items)
		return
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	for range w {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				p := int(next.Add(1)) - 1
				if p >= parts {
					return
				}
				lo := p * preparePartSize
				s.preparePart(items[lo:min(lo+preparePartSize, len(items))])
			}
		}()
	}
	wg.Wait()
}

// preparePart prepares part (a contiguous run of the chunk), reading the
// envelopes in index order with the ledger's range read (one iterator
// over envelopes stored in index order). An entry the range read does not
// give (redacted, missing) falls back to log.Envelope, so its error is
// the one a point read gives.
func (s *Scanner) preparePart(part []item) {
	if s.base.reference {
		for i := range part {
			if it := &part[i]; it.recErr == nil && !it.own {
				raw, err := s.log.Envelope(it.rec.EnvelopeDigest)
				s.prepareOne(it, raw, err, nil)
			}
		}
		return
	}
	if len(part) == 0 {
		return
	}
	ld, _ := s.leans.Get().(*leanDecoder)
	if ld == nil || ld.base != s.base.Limits {
		ld = newLeanDecoder(s.base.Limits)
	}
	defer s.leans.Put(ld)
	done := make([]bool, len(part))
	first := part[0].index
	// An error of the range read leaves entries unread: the point reads
	// below give each of them its own error.
	_ = s.log.Envelopes(first, part[len(part)-1].index+1, func(index uint64, env []byte) error {
		k := int(index - first)
		if k < 0 || k >= len(part) || part[k].index != index {
			return nil
		}
		it := &part[k]
		if it.recErr != nil || it.own {
			return nil
		}
		// The envelope is parsed (and copied) before the iterator moves.
		s.prepareOne(it, env, nil, ld)
		done[k] = true
		return nil
	})
	for k := range part {
		if it := &part[k]; !done[k] && it.recErr == nil && !it.own {
			raw, err := s.log.Envelope(it.rec.EnvelopeDigest)
			s.prepareOne(it, raw, err, ld)
		}
	}
}

// prepareOne parses and checks the envelope raw (or its read error err) of
// it and parses its payload, with the lean decoder ld when it is not nil
// (the strict parser decides whatever ld leaves to it). raw is not
// retained.
func (s *Scanner) prepareOne(it *item, raw []byte, err error, ld *leanDecoder) {
	if errors.Is(err, ledger.ErrRedacted) {
		it.redacted = true
		return
	}
	if err != nil {
		it.envErr = err
		return
	}
	env, err := envelope.Parse(raw)
	if err != nil {
		it.envErr = err
		return
	}
	it.env = env
	if env.PayloadType != it.rec.PayloadType {
		it.envErr = fmt.Errorf("envelope payload type %q differs from the record's %q", env.PayloadType, it.rec.PayloadType)
		return
	}
	if !s.base.Integrity.Disabled {
		it.sigErr = s.verifySignatures(it)
	}
	switch it.rec.PayloadType {
	case payload.TypeOpenLineage, payload.TypeInToto, payload.TypeCost:
		if ld != nil {
			if p, err := ld.parse(it.rec.PayloadType, env.Payload); err == nil {
				it.parsed = p
				break
			}
		}
		it.strict = true
		it.parsed, it.parseErr = payload.Parse(it.rec.PayloadType, env.Payload, s.base.Limits)
	case TypePolicy:
		it.policy, it.parseErr = ParsePolicy(env.Payload)
	case TypeFinding:
		_, it.parseErr = ParseFinding(env.Payload)
	default:
		if strings.HasSuffix(it.rec.PayloadType, "+json") && !json.Valid(env.Payload) {
			it.parseErr = errors.New("payload is not valid JSON")
		}
	}
	if it.parseErr == nil && it.parsed != nil && it.parsed.Event != nil {
		it.ev = prepareEvent(it.parsed.Event)
	}
}

// verifySignatures checks that the envelope's signers are the record's and
// that each signature by a key the scanner knows verifies. Unknown keys
// are reported by the key checks, not here.
func (s *Scanner) verifySignatures(it *item) error {
	if len(it.env.Signatures) != len(it.rec.Signers) {
		return fmt.Errorf("envelope has %d signatures, the record names %d signers", len(it.env.Signatures), len(it.rec.Signers))
	}
	var pae []byte
	for i, sg := range it.env.Signatures {
		id, err := keys.ParseKeyID(sg.KeyID)
		if err != nil || id != keys.KeyID(it.rec.Signers[i]) {
			return fmt.Errorf("signature %d: keyid %q is not the record's signer %x", i, sg.KeyID, it.rec.Signers[i])
		}
		if !s.base.Integrity.VerifySignatures {
			continue
		}
		pub, ok := s.base.Trust.Lookup(id)
		var vs []signature.Verifier
		if !ok {
			pub, ok = s.pubs[id]
			vs = s.verifiers[id]
		}
		if !ok {
			continue
		}
		if pae == nil {
			pae = envelope.PAE(it.env.PayloadType, it.env.Payload)
		}
		good := false
		if ed, isEd := pub.(ed25519.PublicKey); isEd {
			// What sigstore's Ed25519 verifier does, without its copies.
			good = keys.VerifyEd25519(ed, pae, sg.Sig)
		} else {
			if vs == nil {
				vs, _ = s.base.Trust.Verifiers(id)
			}
			for _, v := range vs {
				if v.VerifySignature(bytes.NewReader(sg.Sig), bytes.NewReader(pae)) == nil {
					good = true
					break
				}
			}
		}
		if !good {
			return fmt.Errorf("signature %d by key %s does not verify", i, id)
		}
	}
	return nil
}

// process runs the detectors over one prepared entry, in log order.
func (s *Scanner) process(it *item) {
	if it.recErr != nil {
		// The log wrote it; a record that does not decode is corruption.
		s.emit(&Finding{Detector: "integrity", Kind: "integrity.record", Severity: SeverityCritical,
			Subject: fmt.Sprintf("entry:%d", it.index), Entries: []uint64{it.index}, Time: time.Unix(0, 0).UTC(),
			Message: "entry record does not decode: " + oneLine(it.recErr.Error())})
		return
	}
	now := it.rec.IntegratedTime.UTC()
	s.advance(now)
	if it.redacted {
		return
	}
	honoured := true
	if !s.opts.Integrity.Disabled {
		honoured = s.integrity(it, now)
	} else if it.envErr != nil || it.parseErr != nil {
		return
	}
	if it.envErr != nil || it.parseErr != nil {
		return
	}
	switch {
	case it.policy != nil:
		if honoured {
			s.applyPolicy(it.index, it.policy)
		}
	case it.parsed != nil && it.parsed.Event != nil:
		s.event(it, now, it.parsed.Event)
		s.queueRun(it.parsed.Event.Run.ID)
	case it.parsed != nil && len(it.parsed.Costs) > 0:
		s.costs(it, now, it.parsed.Costs)
	}
}

// emit queues a finding for the current chunk.
func (s *Scanner) emit(f *Finding) {
	f.Version = FindingVersion
	f.Message = oneLine(f.Message)
	slices.Sort(f.Entries)
	f.Entries = slices.Compact(f.Entries)
	s.out = append(s.out, f)
}

func oneLine(s string) string {
	s = strings.ReplaceAll(s, "\n", " ")
	return strings.ReplaceAll(s, "\r", " ")
}

// appendFindings signs and appends the queued findings and writes their
// index (which may run ahead of the committed cursor: a rescan writes the
// same keys again).
func (s *Scanner) appendFindings(ctx context.Context) ([]StoredFinding, error) {
	var stored []StoredFinding
	payloads := make([][]byte, 0, len(s.out))
	for len(s.out) > 0 {
		n := min(len(s.out), maxFindingBatch)
		part := s.out[:n]
		entries := make([]ledger.Entry, n)
		payloads = payloads[:0]
		for i, f := range part {
			b, err := f.Marshal()
			if err != nil {
				return nil, fmt.Errorf("scanner: finding %s: %w", f.Kind, err)
			}
			env, err := envelope.Sign(TypeFinding, b, s.signer)
			if err != nil {
				return nil, fmt.Errorf("scanner: sign finding: %w", err)
			}
			payloads = append(payloads, b)
			entries[i] = ledger.Entry{Namespace: s.opts.Namespace, PayloadType: TypeFinding, Envelope: env.Marshal(), Signers: [][32]byte{s.self}}
		}
		rs, err := s.seq.Submit(ctx, entries)
		if err != nil {
			return nil, fmt.Errorf("scanner: append findings: %w", err)
		}
		b := s.log.DB().NewBatch()
		for i, r := range rs {
			if r.Err != nil {
				b.Close()
				return nil, fmt.Errorf("scanner: append finding %s: %w", part[i].Kind, r.Err)
			}
			if err := b.Set(findingKey(r.Index), payloads[i], nil); err != nil {
				b.Close()
				return nil, err
			}
			stored = append(stored, StoredFinding{Index: r.Index, Finding: part[i]})
		}
		if err := b.Commit(pebble.NoSync); err != nil {
			return stored, fmt.Errorf("scanner: store findings: %w", err)
		}
		s.out = s.out[n:]
	}
	s.out = nil
	return stored, nil
}

// commitState commits the in-memory state at s.next: the findings of the
// entries below it are in the log (appendFindings).
func (s *Scanner) commitState() error {
	if err := s.writeState(s.next); err != nil {
		return err
	}
	s.cursor = s.next
	s.cursorPub.Store(s.cursor)
	return nil
}

// writeState writes the dirty state, the thresholds when they changed,
// the tick, the format and cursor in one synced Pebble batch.
func (s *Scanner) writeState(cursor uint64) error {
	b := s.log.DB().NewBatch()
	defer b.Close()
	for _, t := range s.tables() {
		if err := t.flush(b); err != nil {
			return err
		}
	}
	if s.threshSet {
		enc, err := json.Marshal(s.thresholds)
		if err != nil {
			return fmt.Errorf("scanner: thresholds: %w", err)
		}
		if err := b.Set(keyThresholds, enc, nil); err != nil {
			return err
		}
	}
	if err := b.Set(keyCursor, binary.BigEndian.AppendUint64(nil, cursor), nil); err != nil {
		return err
	}
	if err := b.Set(keyTick, binary.BigEndian.AppendUint64(nil, uint64(s.tick)), nil); err != nil {
		return err
	}
	if err := b.Set(keyFormat, binary.BigEndian.AppendUint64(nil, stateFormat), nil); err != nil {
		return err
	}
	if err := b.Commit(pebble.Sync); err != nil {
		return fmt.Errorf("scanner: commit state: %w", err)
	}
	s.threshSet = false
	return nil
}

// Filter selects stored findings.
type Filter struct {
	// Since keeps findings whose Time is not before it.
	Since time.Time
	// MinSeverity keeps findings at least this severe.
	MinSeverity Severity
	// Detector, Kind keep one detector or kind.
	Detector, Kind string
	// After keeps findings stored at indexes above it (paging).
	After *uint64
	// Limit caps the answer (0: no cap).
	Limit int
}

// Findings lists the stored findings, oldest (lowest index) first.
func (s *Scanner) Findings(f Filter) ([]StoredFinding, error) {
	lo := []byte{keyPrefix, tblFinding}
	if f.After != nil {
		if *f.After == math.MaxUint64 {
			return nil, nil
		}
		lo = findingKey(*f.After + 1)
	}
	it, err := s.log.DB().NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: []byte{keyPrefix, tblFinding + 1}})
	if err != nil {
		return nil, err
	}
	defer it.Close()
	size := s.log.Latest().Size
	var out []StoredFinding
	for ok := it.First(); ok; ok = it.Next() {
		idx := binary.BigEndian.Uint64(it.Key()[2:])
		if idx >= size {
			break
		}
		fd, err := ParseFinding(it.Value())
		if err != nil {
			return nil, fmt.Errorf("%w: finding at %d: %v", ErrState, idx, err)
		}
		if (!f.Since.IsZero() && fd.Time.Before(f.Since)) || fd.Severity < f.MinSeverity ||
			(f.Detector != "" && fd.Detector != f.Detector) || (f.Kind != "" && fd.Kind != f.Kind) {
			continue
		}
		out = append(out, StoredFinding{Index: idx, Finding: fd})
		if f.Limit > 0 && len(out) >= f.Limit {
			break
		}
	}
	return out, it.Error()
}

// hexID is a key id as the state tables key it.
func hexID(id [32]byte) string { return hex.EncodeToString(id[:]) }

// LogSize is the size of the log's latest checkpoint.
func (s *Scanner) LogSize() uint64 { return s.log.Latest().Size }

// RunOptions configure a continuous scan.
type RunOptions struct {
	// Interval between passes; the scan lags the log by at most about
	// Interval plus one pass. Default 2s.
	Interval time.Duration
	// IsLeader says whether this node may scan now (findings are appended
	// by the leader only). Nil: always.
	IsLeader func() bool
}

// Run scans continuously until ctx ends: a pass every Interval while this
// node leads. Errors of a pass are logged and the pass retried.
func (s *Scanner) Run(ctx context.Context, o RunOptions) error {
	if o.Interval <= 0 {
		o.Interval = 2 * time.Second
	}
	t := time.NewTicker(o.Interval)
	defer t.Stop()
	lg := s.opts.Logger
	for {
		if o.IsLeader == nil || o.IsLeader() {
			p, err := s.Scan(ctx, 0)
			switch {
			case err != nil && ctx.Err() != nil:
				return ctx.Err()
			case err != nil:
				lg.Warn("scanner pass failed; retrying", "err", err, "cursor", s.Cursor())
			case p.To > p.From:
				lg.Info("scanner pass", "from", p.From, "to", p.To, "findings", len(p.Findings))
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}
