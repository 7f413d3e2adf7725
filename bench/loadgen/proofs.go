package loadgen

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/provledger/provledger/api/client"
	"github.com/provledger/provledger/api/provledgerpb"
	"github.com/provledger/provledger/crypto/checkpoint"
	"github.com/provledger/provledger/crypto/proof"
)

// ProofsConfig is the proofs scenario: read load on a node that already
// holds a log (e.g. right after an append run).
type ProofsConfig struct {
	// Addr and HTTPAddr are the node's gRPC and HTTP addresses.
	Addr     string `json:"addr"`
	HTTPAddr string `json:"http_addr"`
	// LogKey is the log's public key (PEM file): the checkpoint of every
	// kind of proof is verified with it once, before the clock.
	LogKey string `json:"log_key,omitempty"`
	// Clients run concurrently, one request at a time each, for Duration
	// per kind of request.
	Clients  int           `json:"clients"`
	Duration time.Duration `json:"-"`
	// Keep is how many proofs of each kind are kept for the client-side
	// verification measurement (after the clock).
	Keep      int     `json:"keep"`
	DurationS float64 `json:"duration_s"`
}

// ProofsReport is the outcome of RunProofs.
type ProofsReport struct {
	Settings ProofsConfig `json:"settings"`
	TreeSize uint64       `json:"tree_size"`
	// Served per second over gRPC (GetInclusionProof at the latest size
	// for a random index, GetConsistencyProof from a random older size)
	// and over HTTP (a random full level-0 tile, tlog-tiles layout).
	Inclusion   ProofRate `json:"inclusion_grpc"`
	Consistency ProofRate `json:"consistency_grpc"`
	Tiles       ProofRate `json:"tiles_http"`
	// TileMBPerS is the tile bytes served per second (1 MB = 10^6 B).
	TileMBPerS float64 `json:"tile_mb_per_s"`
	// VerifyInclusionPerS and VerifyConsistencyPerS are client-side
	// Merkle verifications per second on all cores of the kept proofs
	// (checkpoint signatures checked once beforehand, as a client caching
	// its verified checkpoint does).
	VerifyInclusionPerS   float64 `json:"verify_inclusion_per_s"`
	VerifyConsistencyPerS float64 `json:"verify_consistency_per_s"`
	// LoadgenCores is the CPU the load generator used per second of load.
	LoadgenCores float64 `json:"loadgen_cores"`
	Errors       int64   `json:"errors"`
	FirstError   string  `json:"first_error,omitempty"`
}

// ProofRate is one kind of request's throughput and latency.
type ProofRate struct {
	Count   uint64  `json:"count"`
	PerS    float64 `json:"per_s"`
	Latency Latency `json:"latency_ms"`
}

// ErrEmptyLog is returned by RunProofs when the log has fewer than two
// entries: there is nothing to prove.
var ErrEmptyLog = errors.New("the log has fewer than 2 entries")

// RunProofs measures proofs served per second and client verification.
func RunProofs(ctx context.Context, cfg ProofsConfig) (*ProofsReport, error) {
	if cfg.Clients < 1 || cfg.Duration <= 0 {
		return nil, fmt.Errorf("proofs: clients %d and duration %v must be positive", cfg.Clients, cfg.Duration)
	}
	if cfg.Keep < 1 {
		cfg.Keep = 1000
	}
	cfg.DurationS = cfg.Duration.Seconds()
	c, err := client.Dial(ctx, cfg.Addr)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	// A client asks for consistency from a checkpoint it saw: make some,
	// by appending a few entries one at a time, before the clock.
	oldSizes, err := seedCheckpoints(ctx, c, seedCheckpointCount)
	if err != nil {
		return nil, err
	}
	cp, err := c.GetCheckpoint(ctx, &provledgerpb.GetCheckpointRequest{})
	if err != nil {
		return nil, fmt.Errorf("proofs: checkpoint: %w", err)
	}
	var v note.Verifier
	if cfg.LogKey != "" {
		if v, _, err = loadVerifier(cfg.LogKey, cp.GetNote()); err != nil {
			return nil, err
		}
	}
	head, err := client.OpenCheckpoint(cp.GetNote(), v)
	if err != nil {
		return nil, fmt.Errorf("proofs: %w", err)
	}
	if head.Size < 2 {
		return nil, ErrEmptyLog
	}
	rep := &ProofsReport{Settings: cfg, TreeSize: head.Size}
	var (
		errs     atomic.Int64
		firstErr sync.Once
		mu       sync.Mutex
		incl     []*provledgerpb.InclusionProof
		cons     []*provledgerpb.ConsistencyProof
		tileB    atomic.Int64
	)
	fail := func(err error) {
		errs.Add(1)
		firstErr.Do(func() { rep.FirstError = err.Error() })
	}
	size := head.Size
	httpc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: cfg.Clients}}
	fullTiles := size / 256
	cpu0 := SelfCPU()
	t0 := time.Now()
	rep.Inclusion = loadFor(ctx, cfg, func(rng *rand.Rand) error {
		p, err := c.GetInclusionProof(ctx, &provledgerpb.GetInclusionProofRequest{Leaf: &provledgerpb.GetInclusionProofRequest_Index{Index: rng.Uint64N(size)}, TreeSize: size})
		if err != nil {
			fail(err)
			return err
		}
		mu.Lock()
		if len(incl) < cfg.Keep {
			incl = append(incl, p)
		}
		mu.Unlock()
		return nil
	})
	rep.Consistency = loadFor(ctx, cfg, func(rng *rand.Rand) error {
		old := oldSizes[rng.IntN(len(oldSizes))]
		p, err := c.GetConsistencyProof(ctx, &provledgerpb.GetConsistencyProofRequest{OldSize: old, NewSize: size})
		if err != nil {
			fail(err)
			return err
		}
		mu.Lock()
		if len(cons) < cfg.Keep {
			cons = append(cons, p)
		}
		mu.Unlock()
		return nil
	})
	rep.Tiles = loadFor(ctx, cfg, func(rng *rand.Rand) error {
		path := TilePath(0, 0, size) // the partial tile when none is full
		if fullTiles > 0 {
			path = TilePath(0, rng.Uint64N(fullTiles), 0)
		}
		n, err := get(ctx, httpc, "http://"+cfg.HTTPAddr+"/"+path)
		if err != nil {
			fail(err)
			return err
		}
		tileB.Add(n)
		return nil
	})
	elapsed := time.Since(t0).Seconds()
	rep.LoadgenCores = (SelfCPU() - cpu0).Seconds() / elapsed
	rep.TileMBPerS = float64(tileB.Load()) / 1e6 / cfg.Duration.Seconds()
	rep.Errors = errs.Load()

	// Client-side verification, off the clock of the load above.
	inclJobs, err := inclusionJobs(incl, v)
	if err != nil {
		return nil, err
	}
	consJobs, err := consistencyJobs(cons, v)
	if err != nil {
		return nil, err
	}
	verifyFor := min(cfg.Duration, 2*time.Second)
	if rep.VerifyInclusionPerS, err = verifyRate(verifyFor, len(inclJobs), func(i int) error { return inclJobs[i]() }); err != nil {
		return nil, fmt.Errorf("proofs: an inclusion proof the node served did not verify: %w", err)
	}
	if rep.VerifyConsistencyPerS, err = verifyRate(verifyFor, len(consJobs), func(i int) error { return consJobs[i]() }); err != nil {
		return nil, fmt.Errorf("proofs: a consistency proof the node served did not verify: %w", err)
	}
	return rep, nil
}

// seedCheckpointCount is how many checkpoints RunProofs makes for the
// consistency requests to start from.
const seedCheckpointCount = 16

// seedCheckpoints appends n entries one at a time (a fresh Ed25519 key,
// introduced with the first) and returns the sizes of the checkpoints
// their receipts name: sizes a client holds a signed checkpoint of.
func seedCheckpoints(ctx context.Context, c *client.Client, n int) ([]uint64, error) {
	signers, err := newSigners("ed25519", 1)
	if err != nil {
		return nil, err
	}
	cfg := DefaultAppendConfig()
	nonce := runNonce() + "-proofs"
	var sizes []uint64
	for i := range n {
		req, _, err := signedRequest(&cfg, signers[0], nonce, uint64(i))
		if err != nil {
			return nil, err
		}
		if i == 0 {
			req.PublicKeys = [][]byte{signers[0].pubPEM}
		}
		resp, err := c.Append(ctx, req)
		if err != nil {
			return nil, fmt.Errorf("proofs: seed a checkpoint: %w", err)
		}
		cp, err := client.OpenCheckpoint(resp.GetCheckpoint(), nil)
		if err != nil {
			return nil, fmt.Errorf("proofs: seed a checkpoint: %w", err)
		}
		sizes = append(sizes, cp.Size)
	}
	return sizes, nil
}

// loadFor runs cfg.Clients goroutines calling op for cfg.Duration and
// returns the rate of successful calls and their latency.
func loadFor(ctx context.Context, cfg ProofsConfig, op func(*rand.Rand) error) ProofRate {
	hists := make([]Histogram, cfg.Clients)
	var wg sync.WaitGroup
	start := time.Now()
	deadline := start.Add(cfg.Duration)
	for i := range cfg.Clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(i), uint64(start.UnixNano())))
			for ctx.Err() == nil && time.Now().Before(deadline) {
				t := time.Now()
				if op(rng) == nil {
					hists[i].Record(time.Since(t))
				}
			}
		}()
	}
	wg.Wait()
	var h Histogram
	for i := range hists {
		h.Merge(&hists[i])
	}
	el := time.Since(start).Seconds()
	return ProofRate{Count: h.Count(), PerS: float64(h.Count()) / el, Latency: latencyOf(&h)}
}

// get fetches url and returns the body's length.
func get(ctx context.Context, c *http.Client, url string) (int64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	n, err := io.Copy(io.Discard, resp.Body)
	if err != nil {
		return n, err
	}
	if resp.StatusCode != http.StatusOK {
		return n, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return n, nil
}

// TilePath is the tlog-tiles path (https://c2sp.org/tlog-tiles) of the
// hash tile at level and index n; width > 0 names a partial tile of that
// many hashes. The index is written in groups of three digits, all but
// the last prefixed with x: tile/0/x001/x234/067.
func TilePath(level int, n uint64, width uint64) string {
	var groups []string
	s := strconv.FormatUint(n, 10)
	for len(s)%3 != 0 {
		s = "0" + s
	}
	for i := 0; i < len(s); i += 3 {
		groups = append(groups, s[i:i+3])
	}
	for i := range len(groups) - 1 {
		groups[i] = "x" + groups[i]
	}
	p := "tile/" + strconv.Itoa(level) + "/" + strings.Join(groups, "/")
	if width > 0 && width < 256 {
		p += ".p/" + strconv.FormatUint(width, 10)
	}
	return p
}

// inclusionJobs turns served inclusion proofs into verification closures,
// opening (and with v, verifying) each distinct checkpoint once.
func inclusionJobs(ps []*provledgerpb.InclusionProof, v note.Verifier) ([]func() error, error) {
	roots := map[string]checkpoint.Checkpoint{}
	var out []func() error
	for _, p := range ps {
		cp, err := openOnce(roots, p.GetCheckpoint(), v)
		if err != nil {
			return nil, err
		}
		if len(p.GetLeafHash()) != 32 {
			return nil, fmt.Errorf("proofs: inclusion proof of %d has a %d-byte leaf hash", p.GetIndex(), len(p.GetLeafHash()))
		}
		leaf := [32]byte(p.GetLeafHash())
		idx, size, hashes := p.GetIndex(), p.GetTreeSize(), p.GetHashes()
		out = append(out, func() error { return proof.VerifyInclusion(idx, size, leaf, hashes, cp.Hash) })
	}
	return out, nil
}

func consistencyJobs(ps []*provledgerpb.ConsistencyProof, v note.Verifier) ([]func() error, error) {
	roots := map[string]checkpoint.Checkpoint{}
	var out []func() error
	for _, p := range ps {
		if len(p.GetOldCheckpoint()) == 0 {
			continue // no checkpoint was published at the old size: no root to check against
		}
		oldCP, err := openOnce(roots, p.GetOldCheckpoint(), v)
		if err != nil {
			return nil, err
		}
		newCP, err := openOnce(roots, p.GetNewCheckpoint(), v)
		if err != nil {
			return nil, err
		}
		o, n, hashes := p.GetOldSize(), p.GetNewSize(), p.GetHashes()
		out = append(out, func() error { return proof.VerifyConsistency(o, n, hashes, oldCP.Hash, newCP.Hash) })
	}
	return out, nil
}

func openOnce(cache map[string]checkpoint.Checkpoint, cpNote []byte, v note.Verifier) (checkpoint.Checkpoint, error) {
	if cp, ok := cache[string(cpNote)]; ok {
		return cp, nil
	}
	cp, err := client.OpenCheckpoint(cpNote, v)
	if err != nil {
		return cp, fmt.Errorf("proofs: %w", err)
	}
	cache[string(cpNote)] = cp
	return cp, nil
}

// verifyRate runs job(i % n) on all cores for about d and returns
// verifications per second; the first failure ends it with an error.
func verifyRate(d time.Duration, n int, job func(int) error) (float64, error) {
	if n == 0 {
		return 0, nil
	}
	var next atomic.Int64
	var bad atomic.Pointer[error]
	r := parallel(d, func() {
		i := int(next.Add(1)-1) % n
		if err := job(i); err != nil {
			bad.CompareAndSwap(nil, &err)
		}
	})
	if e := bad.Load(); e != nil {
		return 0, *e
	}
	return r, nil
}
