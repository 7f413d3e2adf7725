package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"runtime"
	"sort"
	"sync"

	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/provledger/provledger/crypto/checkpoint"
	"github.com/provledger/provledger/crypto/envelope"
	"github.com/provledger/provledger/crypto/keys"
	"github.com/provledger/provledger/crypto/proof"
	"github.com/provledger/provledger/crypto/record"
)

// Problem kinds an audit names. docs/audit.md lists them.
const (
	kindModified        = "entry-modified"    // the served record is not the one the tree holds
	kindDropped         = "entry-dropped"     // entries shifted: the one at this index is gone
	kindSwapped         = "entries-swapped"   // two entries trade places
	kindBadRecord       = "bad-record"        // the record does not decode
	kindShortBundle     = "bad-bundle"        // the entry bundle is malformed or has the wrong count
	kindWithheld        = "withheld"          // the log refused (404) data its checkpoint covers
	kindEnvelope        = "envelope-mismatch" // envelope digest/size/type differ from the record
	kindBadSignature    = "bad-signature"     // a DSSE signature by a trusted key does not verify
	kindRootMismatch    = "root-mismatch"     // recomputed root differs from the signed one
	kindTiles           = "tiles-mismatch"    // the hash tiles do not match the signed checkpoint
	kindInconsistent    = "inconsistent"      // the new checkpoint does not extend the old one
	kindFork            = "fork"              // two signed roots for one size
	kindRollback        = "rollback"          // the log's checkpoint is older than one already seen
	kindCheckpointSig   = "bad-checkpoint"    // the checkpoint signature does not verify
	maxMismatchesStored = 10000
)

// problem is one thing an audit found wrong. Index is -1 when it is about
// the log as a whole.
type problem struct {
	Index  int64  `json:"index"`
	Kind   string `json:"kind"`
	Detail string `json:"detail"`
}

func (p problem) String() string {
	if p.Index < 0 {
		return fmt.Sprintf("%s: %s", p.Kind, p.Detail)
	}
	return fmt.Sprintf("entry %d: %s: %s", p.Index, p.Kind, p.Detail)
}

// TrustPolicy says which keys may sign the entry at an index. The audit
// re-verifies every DSSE signature of entry i with KeyringAt(i). The
// implementation is one keyring for the whole log (--trust; with
// --policy-from-log also every key the log's policy granted, whose grants
// per index auditor.rules checks).
type TrustPolicy interface {
	KeyringAt(index uint64) *keys.Keyring
}

// staticTrust is one keyring for every index.
type staticTrust struct{ kr *keys.Keyring }

func (s staticTrust) KeyringAt(uint64) *keys.Keyring { return s.kr }

// auditStats counts what an audit saw.
type auditStats struct {
	Entries      uint64 `json:"entries"`
	Redacted     uint64 `json:"redacted"`
	SigsVerified uint64 `json:"signatures_verified"`
	Unverifiable uint64 `json:"signatures_unverifiable"`
}

func (s *auditStats) add(o auditStats) {
	s.Entries += o.Entries
	s.Redacted += o.Redacted
	s.SigsVerified += o.SigsVerified
	s.Unverifiable += o.Unverifiable
}

// mismatch is an entry whose record does not hash to the tree's leaf.
type mismatch struct {
	index     uint64
	got, want [32]byte
}

// auditor replays a range of a log through a tileSource.
type auditor struct {
	src      tileSource
	workers  int
	policy   TrustPolicy    // nil: signatures are not checked
	bulk     envelopeSource // nil: envelopes one by one from src
	progress func(done uint64)
	sigs     sigCache // trusted keys parsed once per keyring
	// onRecord, if set, is called (from the workers) with every record
	// whose leaf matched the tree's.
	onRecord func(i uint64, leaf [32]byte, rec record.Record)
	// redactions checks withheld envelopes (redacted.go); nil: not.
	redactions *redactionAudit
	// rules, if set, judges every record whose leaf matched by the rules
	// of its index (audit_policy.go); nil: allowed.
	rules func(i uint64, rec record.Record) *problem
}

// envelopeSource reads the envelopes of a range of entries in one go.
// Envelopes are content-addressed: each is checked against the record
// read from the tiles, so where they come from does not matter.
type envelopeSource interface {
	// Envelopes returns the canonical envelope JSON of entries [lo, hi)
	// (which lie in one entry bundle), element i-lo for entry i; nil means
	// redacted. An answer that does not parse wraps errBadEnvelopeBundle.
	Envelopes(ctx context.Context, lo, hi uint64) ([][]byte, error)
}

// rangeResult is what replaying [start, end) found.
type rangeResult struct {
	rng, tileRng *compact.Range
	stats        auditStats
	problems     []problem
	mismatches   []mismatch
	fetchErr     error // the first transient fetch error, if any
}

var rangeFactory = &compact.RangeFactory{Hash: rfc6962.DefaultHasher.HashChildren}

type bundleJob struct {
	k      uint64
	lo, hi uint64 // entries [lo, hi) of bundle k are audited
}

type bundleResult struct {
	job          bundleJob
	rng, tileRng *compact.Range
	stats        auditStats
	problems     []problem
	mismatches   []mismatch
	fetchErr     error
}

// replay fetches the entries [start, end) (bundle by bundle, in parallel)
// with the level-0 tiles, and returns the compact ranges of the leaves
// recomputed from the records and of the tiles' leaf hashes, extending
// base (which must end at start), plus everything found wrong.
func (au *auditor) replay(ctx context.Context, base *compact.Range, end uint64) *rangeResult {
	start := base.End()
	res := &rangeResult{rng: base}
	tileBase, _ := rangeFactory.NewRange(base.Begin(), base.End(), cloneHashes(base.Hashes()))
	res.tileRng = tileBase
	if start >= end {
		return res
	}
	workers := au.workers
	if workers <= 0 {
		workers = 4 * runtime.GOMAXPROCS(0)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	jobs := make(chan bundleJob)
	results := make(chan bundleResult, workers)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobs {
				results <- au.bundle(ctx, j)
			}
		}()
	}
	go func() {
		defer close(jobs)
		for k := start / 256; k*256 < end; k++ {
			j := bundleJob{k: k, lo: max(start, k*256), hi: min(end, k*256+256)}
			select {
			case jobs <- j:
			case <-ctx.Done():
				return
			}
		}
	}()
	go func() { wg.Wait(); close(results) }()

	// Merge in order; keep at most a window of results waiting.
	pending := map[uint64]bundleResult{}
	next := start / 256
	var done uint64
	for r := range results {
		pending[r.job.k] = r
		for {
			p, ok := pending[next]
			if !ok {
				break
			}
			delete(pending, next)
			next++
			res.stats.add(p.stats)
			res.problems = append(res.problems, p.problems...)
			if len(res.mismatches) < maxMismatchesStored {
				res.mismatches = append(res.mismatches, p.mismatches...)
			}
			if p.fetchErr != nil && res.fetchErr == nil {
				res.fetchErr = p.fetchErr
			}
			if p.rng == nil || p.rng.End() != p.job.hi {
				res.rng, res.tileRng = nil, nil // the root cannot be recomputed
			}
			if res.rng != nil {
				if err := res.rng.AppendRange(p.rng, nil); err != nil {
					res.fetchErr = fmt.Errorf("merge bundle %d: %w", p.job.k, err)
					res.rng = nil
				} else if err := res.tileRng.AppendRange(p.tileRng, nil); err != nil {
					res.fetchErr = fmt.Errorf("merge tile %d: %w", p.job.k, err)
					res.rng = nil
				}
			}
			done += p.job.hi - p.job.lo
			if au.progress != nil {
				au.progress(done)
			}
		}
	}
	classify(res)
	return res
}

// bundle audits entries [lo, hi) of bundle k.
func (au *auditor) bundle(ctx context.Context, j bundleJob) bundleResult {
	r := bundleResult{job: j}
	width := int(j.hi - j.k*256)
	fail := func(index int64, kind, format string, args ...any) {
		r.problems = append(r.problems, problem{Index: index, Kind: kind, Detail: fmt.Sprintf(format, args...)})
	}
	// fetch records a failed read: a 404 for data the signed checkpoint
	// covers is a verification failure (withheld); anything else means the
	// log could not be read (exit 2 unless something failed verification).
	fetch := func(what string, err error) {
		if errors.Is(err, errWithheld) && ctx.Err() == nil {
			fail(int64(j.lo), kindWithheld, "%s: the log does not serve it, but its signed checkpoint covers it: %v", what, err)
		} else if r.fetchErr == nil {
			r.fetchErr = fmt.Errorf("%s: %w", what, err)
		}
	}
	var (
		bundle, tile []byte
		berr, terr   error
		wg           sync.WaitGroup
	)
	wg.Add(1)
	go func() { defer wg.Done(); tile, terr = au.src.Tile(ctx, 0, j.k, width) }()
	bundle, berr = au.src.EntryBundle(ctx, j.k, width)
	wg.Wait()
	if berr != nil || terr != nil {
		if berr != nil {
			fetch(fmt.Sprintf("entry bundle %d", j.k), berr)
		}
		if terr != nil {
			fetch(fmt.Sprintf("tile 0/%d", j.k), terr)
		}
		return r
	}
	if len(tile) != width*32 {
		fail(int64(j.lo), kindTiles, "tile 0/%d has %d bytes, want %d", j.k, len(tile), width*32)
		return r
	}
	recs, err := splitBundle(bundle, width)
	if err != nil {
		fail(int64(j.lo), kindShortBundle, "entry bundle %d: %v", j.k, err)
		return r
	}
	r.rng = rangeFactory.NewEmptyRange(j.lo)
	r.tileRng = rangeFactory.NewEmptyRange(j.lo)
	type sigJob struct {
		i   uint64
		rec record.Record
	}
	var sigJobs []sigJob
	for i := j.lo; i < j.hi; i++ {
		raw := recs[i-j.k*256]
		leaf := proof.LeafHash(raw)
		want := tile[(i-j.k*256)*32 : (i-j.k*256+1)*32]
		r.rng.Append(leaf[:], nil)
		r.tileRng.Append(want, nil)
		r.stats.Entries++
		if !bytes.Equal(leaf[:], want) {
			m := mismatch{index: i, got: leaf}
			copy(m.want[:], want)
			r.mismatches = append(r.mismatches, m)
			continue // classified once all mismatches are known
		}
		rec, err := record.Unmarshal(raw)
		if err != nil {
			fail(int64(i), kindBadRecord, "%v", err)
			continue
		}
		if au.onRecord != nil {
			au.onRecord(i, leaf, rec)
		}
		if au.rules != nil {
			if p := au.rules(i, rec); p != nil {
				r.problems = append(r.problems, *p)
			}
		}
		if au.policy != nil {
			sigJobs = append(sigJobs, sigJob{i, rec})
		}
	}
	if len(sigJobs) == 0 {
		return r
	}
	// With a bulk envelope source, one request brings the bundle's
	// envelopes; they are checked against the records like any other, in
	// this worker (the other workers' fetches overlap with this one's
	// signature checks, so the audit is bound by CPU, not round trips).
	if au.bulk != nil {
		envs, err := au.bulk.Envelopes(ctx, j.lo, j.hi)
		switch {
		case errors.Is(err, errBadEnvelopeBundle):
			fail(int64(j.lo), kindShortBundle, "envelopes of entries [%d, %d): %v", j.lo, j.hi, err)
			return r
		case err != nil:
			fetch(fmt.Sprintf("envelopes of entries [%d, %d)", j.lo, j.hi), err)
			r.rng, r.tileRng = nil, nil
			return r
		case uint64(len(envs)) != j.hi-j.lo:
			fail(int64(j.lo), kindShortBundle, "envelopes of entries [%d, %d): %d served", j.lo, j.hi, len(envs))
			return r
		}
		var buf []byte
		for _, sj := range sigJobs {
			kind, msg, _ := au.checkEnvelope(ctx, sj.i, sj.rec, envs[sj.i-j.lo], true, &r.stats, &buf)
			if kind != "" {
				fail(int64(sj.i), kind, "%s", msg)
			}
		}
		sort.SliceStable(r.problems, func(a, b int) bool { return r.problems[a].Index < r.problems[b].Index })
		return r
	}
	// Envelopes one request each: fetch them concurrently so that the
	// audit is bound by CPU (signature checks), not by round trips.
	var (
		mu   sync.Mutex
		next int
		swg  sync.WaitGroup
	)
	for range min(au.envelopeConcurrency(), len(sigJobs)) {
		swg.Add(1)
		go func() {
			defer swg.Done()
			var st auditStats
			var buf []byte
			defer func() { mu.Lock(); r.stats.add(st); mu.Unlock() }()
			for {
				mu.Lock()
				if next == len(sigJobs) || r.fetchErr != nil {
					mu.Unlock()
					return
				}
				sj := sigJobs[next]
				next++
				mu.Unlock()
				kind, msg, err := au.checkEnvelope(ctx, sj.i, sj.rec, nil, false, &st, &buf)
				if err != nil || kind != "" {
					mu.Lock()
					if err != nil {
						fetch(fmt.Sprintf("entry %d: envelope sha256:%x", sj.i, sj.rec.EnvelopeDigest), err)
					} else {
						fail(int64(sj.i), kind, "%s", msg)
					}
					mu.Unlock()
				}
			}
		}()
	}
	swg.Wait()
	sort.Slice(r.problems, func(a, b int) bool { return r.problems[a].Index < r.problems[b].Index })
	if r.fetchErr != nil {
		r.rng, r.tileRng = nil, nil
	}
	return r
}

func (au *auditor) envelopeConcurrency() int {
	return 16
}

// checkEnvelope fetches entry i's envelope (or takes pre, when fromBulk;
// nil there means redacted) and checks it against its record and the
// trust policy at i. It returns a problem kind and message, or an error
// when the envelope could not be read. buf is the caller's scratch space.
func (au *auditor) checkEnvelope(ctx context.Context, i uint64, rec record.Record, pre []byte, fromBulk bool, st *auditStats, buf *[]byte) (string, string, error) {
	env, err := pre, error(nil)
	if fromBulk && pre == nil {
		err = errRedacted
	} else if !fromBulk {
		env, err = au.src.Envelope(ctx, rec.EnvelopeDigest)
	}
	au.redactions.observe(i, rec, env, err) // redacted.go
	if errors.Is(err, errRedacted) {
		st.Redacted++
		return "", "", nil
	}
	if err != nil {
		return "", "", err
	}
	if d := sha256.Sum256(env); d != rec.EnvelopeDigest {
		return kindEnvelope, fmt.Sprintf("envelope digest is %x, the record says %x", d, rec.EnvelopeDigest), nil
	}
	if uint64(len(env)) != uint64(rec.EnvelopeSize) {
		return kindEnvelope, fmt.Sprintf("envelope is %d bytes, the record says %d", len(env), rec.EnvelopeSize), nil
	}
	e, err := envelope.Parse(env)
	if err != nil {
		return kindEnvelope, fmt.Sprintf("envelope: %v", err), nil
	}
	if e.PayloadType != rec.PayloadType {
		return kindEnvelope, fmt.Sprintf("envelope payload type is %q, the record says %q", e.PayloadType, rec.PayloadType), nil
	}
	n, err := au.sigs.check(e, rec, au.policy.KeyringAt(i), buf)
	if err != nil {
		return kindBadSignature, err.Error(), nil
	}
	st.SigsVerified += uint64(n.verified)
	st.Unverifiable += uint64(n.unverifiable)
	return "", "", nil
}

// splitBundle splits a C2SP entry bundle into exactly n entries.
func splitBundle(b []byte, n int) ([][]byte, error) {
	out := make([][]byte, 0, n)
	for len(b) > 0 {
		if len(b) < 2 {
			return nil, fmt.Errorf("truncated length prefix after %d entries", len(out))
		}
		l := int(binary.BigEndian.Uint16(b))
		if len(b) < 2+l {
			return nil, fmt.Errorf("entry %d is cut short (%d of %d bytes)", len(out), len(b)-2, l)
		}
		out = append(out, b[2:2+l])
		b = b[2+l:]
	}
	if len(out) != n {
		return nil, fmt.Errorf("holds %d entries, want %d", len(out), n)
	}
	return out, nil
}

// classify turns leaf mismatches into named problems: two entries that
// trade leaves are "swapped", an entry holding the next index's leaf is
// "dropped" (everything after it moved up one place), anything else
// "modified".
func classify(res *rangeResult) {
	if len(res.mismatches) == 0 {
		return
	}
	ms := res.mismatches
	sort.Slice(ms, func(a, b int) bool { return ms[a].index < ms[b].index })
	byWant := make(map[[32]byte]int, len(ms))
	for i, m := range ms {
		byWant[m.want] = i
	}
	for i, m := range ms {
		p := problem{Index: int64(m.index)}
		if j, ok := byWant[m.got]; ok && ms[j].got == m.want {
			p.Kind = kindSwapped
			p.Detail = fmt.Sprintf("the record served at %d is the tree's entry %d and vice versa", m.index, ms[j].index)
		} else if ok && ms[j].index == m.index+1 && (i == 0 || ms[i-1].index != m.index-1 || ms[i-1].got != m.want) {
			p.Kind = kindDropped
			p.Detail = fmt.Sprintf("the tree's entry %d is missing from what the log serves: the record served here is the tree's entry %d (later entries are shifted)", m.index, m.index+1)
		} else if ok && ms[j].index == m.index+1 {
			continue // part of a shift already reported
		} else {
			p.Kind = kindModified
			p.Detail = fmt.Sprintf("the record served hashes to leaf %x, the signed tree holds %x", m.got[:8], m.want[:8])
		}
		res.problems = append(res.problems, p)
	}
	sort.SliceStable(res.problems, func(a, b int) bool { return res.problems[a].Index < res.problems[b].Index })
}

func cloneHashes(h [][]byte) [][]byte {
	out := make([][]byte, len(h))
	for i := range h {
		out[i] = bytes.Clone(h[i])
	}
	return out
}

func b64(h []byte) string { return base64.StdEncoding.EncodeToString(h) }

// frontier returns the compact range [0, size) of the tree the checkpoint
// cp commits to, read from the log's tiles and authenticated against cp
// (golang.org/x/mod/sumdb/tlog.TileHashReader checks every tile it reads
// against cp's root). It also returns the RFC 6962 consistency proof from
// size to cp.Size, built from the same tiles.
func frontier(ctx context.Context, src tileSource, cp checkpoint.Checkpoint, size uint64) (*compact.Range, [][]byte, error) {
	if size == 0 {
		return rangeFactory.NewEmptyRange(0), nil, nil
	}
	hr := tlog.TileHashReader(tlog.Tree{N: int64(cp.Size), Hash: tlog.Hash(cp.Hash)}, tlogReader{ctx: ctx, src: src})
	ids := compact.RangeNodes(0, size, nil)
	idx := make([]int64, len(ids))
	for i, id := range ids {
		idx[i] = tlog.StoredHashIndex(int(id.Level), int64(id.Index))
	}
	hs, err := hr.ReadHashes(idx)
	if err != nil {
		return nil, nil, err
	}
	hashes := make([][]byte, len(hs))
	for i := range hs {
		hashes[i] = bytes.Clone(hs[i][:])
	}
	rng, err := rangeFactory.NewRange(0, size, hashes)
	if err != nil {
		return nil, nil, err
	}
	var cproof [][]byte
	if size < cp.Size {
		tp, err := tlog.ProveTree(int64(cp.Size), int64(size), hr)
		if err != nil {
			return nil, nil, err
		}
		for _, h := range tp {
			cproof = append(cproof, bytes.Clone(h[:]))
		}
	}
	return rng, cproof, nil
}

// rootOf returns the root of a compact range starting at 0.
func rootOf(r *compact.Range) [32]byte {
	if r == nil || r.End() == 0 {
		return proof.EmptyRoot()
	}
	h, err := r.GetRootHash(nil)
	var out [32]byte
	if err == nil {
		copy(out[:], h)
	}
	return out
}

// splitRanges returns, from the tiles of the tree cp commits to
// (authenticated against cp), the compact range hashes of [0, size) and
// of [size, cp.Size): together they hash to cp's root, and the first
// alone is the root of the tree's prefix of that size. That pair is
// offline-checkable evidence of what the tree holds at size.
func splitRanges(ctx context.Context, src tileSource, cp checkpoint.Checkpoint, size uint64) (left, right [][]byte, err error) {
	hr := tlog.TileHashReader(tlog.Tree{N: int64(cp.Size), Hash: tlog.Hash(cp.Hash)}, tlogReader{ctx: ctx, src: src})
	read := func(begin, end uint64) ([][]byte, error) {
		ids := compact.RangeNodes(begin, end, nil)
		if len(ids) == 0 {
			return nil, nil
		}
		idx := make([]int64, len(ids))
		for i, id := range ids {
			idx[i] = tlog.StoredHashIndex(int(id.Level), int64(id.Index))
		}
		hs, err := hr.ReadHashes(idx)
		if err != nil {
			return nil, err
		}
		out := make([][]byte, len(hs))
		for i := range hs {
			out[i] = bytes.Clone(hs[i][:])
		}
		return out, nil
	}
	if left, err = read(0, size); err != nil {
		return nil, nil, err
	}
	if right, err = read(size, cp.Size); err != nil {
		return nil, nil, err
	}
	return left, right, nil
}
