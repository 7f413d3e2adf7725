package service

import (
	"context"
	"crypto"
	"errors"
	"io"
	"runtime"
	"slices"
	"strings"
	"sync"
	"unicode/utf8"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/provledger/provledger/api/provledgerpb"
	"github.com/provledger/provledger/crypto/envelope"
	"github.com/provledger/provledger/crypto/keys"
	"github.com/provledger/provledger/ledger"
	"github.com/provledger/provledger/query/jsonscan"
)

// MaxStreamInFlight caps the appends of one AppendStream being verified or
// waiting for their commit at a time; the stream stops reading beyond it.
const MaxStreamInFlight = 256

// maxPEMCache caps the parsed public keys kept across calls.
const maxPEMCache = 4096

// pemCache remembers parsed PEM public keys and their ids, so a client
// that sends its key with every append (trust on first use) costs one parse,
// not one per call.
type pemCache struct {
	mu sync.RWMutex
	m  map[string]pemKey
}

type pemKey struct {
	pub crypto.PublicKey
	id  keys.KeyID
}

func (c *pemCache) parse(b []byte) (pemKey, error) {
	c.mu.RLock()
	k, ok := c.m[string(b)] // no allocation for the lookup
	c.mu.RUnlock()
	if ok {
		return k, nil
	}
	pub, err := keys.ParsePublicPEM(b)
	if err != nil {
		return pemKey{}, err
	}
	id, err := keys.IDOf(pub)
	if err != nil {
		return pemKey{}, err
	}
	k = pemKey{pub: pub, id: id}
	c.mu.Lock()
	if len(c.m) < maxPEMCache {
		c.m[string(b)] = k
	}
	c.mu.Unlock()
	return k, nil
}

// prepare checks one append request and builds its ledger entry. Its
// errors are status errors that say what to fix. The check itself runs on
// one of the service's VerifyWorkers checker goroutines (see checker).
func (s *Service) prepare(ctx context.Context, req *provledgerpb.AppendRequest) (ledger.Entry, error) {
	var (
		reqs    = [1]*provledgerpb.AppendRequest{req}
		entries [1]ledger.Entry
		errs    [1]error
		wg      sync.WaitGroup
	)
	wg.Add(1)
	if !s.enqueue(ctx, checkJob{reqs: reqs[:], entries: entries[:], errs: errs[:], wg: &wg}) {
		return ledger.Entry{}, s.statusError(ctx, "append", ctx.Err())
	}
	wg.Wait()
	return entries[0], errs[0]
}

// checkJob is a run of append requests to check in order: the checker
// stores entries[i] and errs[i] for reqs[i], then calls wg.Done once.
type checkJob struct {
	reqs    []*provledgerpb.AppendRequest
	entries []ledger.Entry
	errs    []error
	wg      *sync.WaitGroup
}

// checkChunk is the most requests of one AppendBatch that a checker takes
// as one job. A large batch is split so that the checkers share it; a
// small one (the usual 1–8) is checked in one go on one goroutine. With a
// job per request, the requests of concurrent batches interleaved in the
// queue and nearly every batch finished only with the whole burst of
// checks (docs/api.md, "Checking appends").
const checkChunk = 8

// checkJobs is the capacity of the checkers' queue; beyond it, enqueue
// waits.
const checkJobs = 4096

// enqueue hands j to the checkers, starting one if fewer than VerifyWorkers
// run. It reports false (and j is not run) if ctx ended first.
func (s *Service) enqueue(ctx context.Context, j checkJob) bool {
	select {
	case s.jobs <- j:
	default:
		s.startChecker()
		select {
		case s.jobs <- j:
		case <-ctx.Done():
			return false
		}
	}
	s.startChecker()
	return true
}

func (s *Service) startChecker() {
	for {
		n := s.checkers.Load()
		if n >= int32(s.cfg.VerifyWorkers) {
			return
		}
		if s.checkers.CompareAndSwap(n, n+1) {
			go s.checker()
			return
		}
	}
}

// checker checks queued requests until the queue is empty, then exits.
//
// Checking is the bulk of an append's CPU (an Ed25519 verification is
// ~70 µs) while everything else on an append's path is short: reading the
// request, the sequencer's loop, the WAL sync, sending the receipt. Go's
// scheduler has no priorities, and a goroutine woken by another (as a
// checker woken by a channel) runs next on that core, ahead of the run
// queue. Checking on at most VerifyWorkers long-lived goroutines that
// yield (runtime.Gosched, which puts them at the back of the global run
// queue) after each request lets the short work run first, so the
// sequencer is never stuck behind hundreds of verifications and batches
// commit as soon as they are ready.
func (s *Service) checker() {
	for {
		select {
		case j := <-s.jobs:
			for i, req := range j.reqs {
				j.entries[i], j.errs[i] = s.check(req)
			}
			j.wg.Done()
			runtime.Gosched()
			continue
		default:
		}
		s.checkers.Add(-1)
		// A job queued after the receive above failed may have seen all
		// checkers busy and started none: take over if so.
		if len(s.jobs) == 0 {
			return
		}
		n := s.checkers.Load()
		if n >= int32(s.cfg.VerifyWorkers) || !s.checkers.CompareAndSwap(n, n+1) {
			return
		}
	}
}

func (s *Service) check(req *provledgerpb.AppendRequest) (ledger.Entry, error) {
	if err := checkNamespace(req.GetNamespace()); err != nil {
		return ledger.Entry{}, err
	}
	var env *envelope.Envelope
	switch b := req.GetBody().(type) {
	case *provledgerpb.AppendRequest_Envelope:
		if b.Envelope == nil {
			return ledger.Entry{}, invalid("envelope is empty: set payload_type, payload and signatures")
		}
		env = &envelope.Envelope{PayloadType: b.Envelope.GetPayloadType(), Payload: b.Envelope.GetPayload()}
		if sigs := b.Envelope.GetSignatures(); len(sigs) > 0 {
			env.Signatures = make([]envelope.Signature, len(sigs))
			for i, sg := range sigs {
				env.Signatures[i] = envelope.Signature{KeyID: sg.GetKeyid(), Sig: sg.GetSig()}
			}
		}
	case *provledgerpb.AppendRequest_DsseJson:
		if len(b.DsseJson) > 2*s.cfg.MaxEnvelopeSize+64<<10 {
			// Far above what can canonicalize under the limit: do not parse.
			return ledger.Entry{}, invalid("dsse_json is %d bytes; the envelope limit is %d (provd --max-envelope-size)", len(b.DsseJson), s.cfg.MaxEnvelopeSize)
		}
		var err error
		if env, err = envelope.Parse(b.DsseJson); err != nil {
			return ledger.Entry{}, invalid("dsse_json is not a DSSE envelope: %v; send {\"payloadType\", \"payload\" (base64), \"signatures\": [{\"keyid\", \"sig\" (base64)}]}", err)
		}
	default:
		return ledger.Entry{}, invalid("the request has no envelope: set envelope or dsse_json")
	}
	if env.PayloadType == "" {
		return ledger.Entry{}, invalid("the envelope's payload type is empty; set it to one of: %s", s.typeList)
	}
	canonical := env.Marshal()
	if len(canonical) > s.cfg.MaxEnvelopeSize {
		return ledger.Entry{}, invalid("envelope is %d bytes; the limit is %d (provd --max-envelope-size)", len(canonical), s.cfg.MaxEnvelopeSize)
	}
	if !s.cfg.AllowAnyPayloadType {
		if _, ok := s.types[env.PayloadType]; !ok {
			return ledger.Entry{}, invalid("payload type %q is not accepted; use one of: %s (or have the operator allow it)", env.PayloadType, s.typeList)
		}
	}
	if len(env.PayloadType) > 255 || !utf8.ValidString(env.PayloadType) {
		return ledger.Entry{}, invalid("payload type must be 1..255 bytes of UTF-8")
	}
	if strings.HasSuffix(env.PayloadType, "+json") && !jsonscan.Valid(env.Payload) {
		return ledger.Entry{}, invalid("payload type %q says JSON but the payload is not valid JSON; fix the payload or its type", env.PayloadType)
	}
	for i := range env.Signatures {
		if _, err := keys.ParseKeyID(env.Signatures[i].KeyID); err != nil {
			return ledger.Entry{}, invalid("signatures[%d].keyid: %v; set it to the signer's key id (SHA-256 of its DER public key, as prov keys prints it)", i, err)
		}
	}
	// Keys the keyring already holds are verified with its cached verifiers;
	// only keys new to it are handed to Verify, and only on first use.
	var fresh []pemKey
	if pk := req.GetPublicKeys(); len(pk) > 0 {
		if len(pk) > envelope.MaxSignatures {
			return ledger.Entry{}, invalid("%d public keys; send at most %d (one per signature)", len(pk), envelope.MaxSignatures)
		}
		for i, b := range pk {
			k, err := s.pems.parse(b)
			if err != nil {
				return ledger.Entry{}, invalid("public_keys[%d] is not a PEM public key: %v; send one PKIX \"PUBLIC KEY\" PEM block per key", i, err)
			}
			if s.verifier.TrustOnFirstUse {
				if _, known := s.verifier.Keyring.Lookup(k.id); !known {
					fresh = append(fresh, k)
				}
			}
		}
	}
	var extra []crypto.PublicKey
	if len(fresh) > 0 {
		extra = make([]crypto.PublicKey, len(fresh))
		for i, k := range fresh {
			extra[i] = k.pub
		}
	}
	ids, err := s.verifier.Verify(env, extra...)
	if err != nil {
		return ledger.Entry{}, verifyError(err)
	}
	if len(fresh) > 0 {
		s.trustNewKeys(fresh, ids)
	}
	signers := make([][32]byte, len(ids))
	for i, id := range ids {
		signers[i] = id
	}
	e := ledger.Entry{
		Namespace:   req.GetNamespace(),
		PayloadType: env.PayloadType,
		Envelope:    canonical,
		Signers:     signers,
	}
	if err := s.checkPolicyHook(&e); err != nil { // policy.go
		return ledger.Entry{}, err
	}
	if s.cfg.Preparer != nil {
		e.Prepared = s.cfg.Preparer.Prepare(env.PayloadType, env.Payload)
	}
	return e, nil
}

func verifyError(err error) error {
	switch {
	case errors.Is(err, envelope.ErrUnknownKey):
		// The message already says to add the key to the trust file.
		return status.Errorf(codes.PermissionDenied, "%v (provd --trust; with provd --dev, send the key in public_keys)", err)
	case errors.Is(err, envelope.ErrNoSignatures):
		return invalid("%v; sign the envelope (prov append --key) before appending", err)
	case errors.Is(err, envelope.ErrBadSignature):
		return invalid("%v; re-sign the exact payload type and payload (DSSE PAE) with the key its keyid names", err)
	case errors.Is(err, envelope.ErrMalformed):
		return invalid("%v", err)
	}
	return invalid("envelope rejected: %v", err)
}

// trustNewKeys adds to the keyring the fresh keys that signed an accepted
// envelope (so later appends need not send them) and calls OnNewKey once
// for each.
func (s *Service) trustNewKeys(fresh []pemKey, signers []keys.KeyID) {
	for _, k := range fresh {
		if !slices.Contains(signers, k.id) {
			continue
		}
		if _, err := s.verifier.Keyring.Add(k.pub); err != nil {
			s.logger.Warn("cannot add a first-use key to the keyring", "key_id", k.id.String(), "err", err)
			continue
		}
		if _, loaded := s.notified.LoadOrStore(k.id, struct{}{}); loaded {
			continue
		}
		s.logger.Info("trusting a new signing key on first use", "key_id", k.id.String())
		if s.cfg.OnNewKey != nil {
			s.cfg.OnNewKey(k.pub)
		}
	}
}

// response turns a receipt into an AppendResponse. It shares the receipt's
// buffers: the response must be sent before they change (they never do).
func response(requestID uint64, r *ledger.Receipt) *provledgerpb.AppendResponse {
	resp := &provledgerpb.AppendResponse{
		RequestId:      requestID,
		Index:          r.Index,
		LeafHash:       r.LeafHash[:],
		Record:         r.Record,
		Duplicate:      r.Duplicate,
		InclusionProof: r.Proof,
	}
	if r.Checkpoint != nil {
		resp.Checkpoint = r.Checkpoint.Note
	}
	return resp
}

// Append implements provledgerpb.LedgerServer.
func (s *Service) Append(ctx context.Context, req *provledgerpb.AppendRequest) (*provledgerpb.AppendResponse, error) {
	e, err := s.prepare(ctx, req)
	if err != nil {
		return nil, err
	}
	rs, err := s.seq.Submit(ctx, []ledger.Entry{e})
	if err != nil {
		return nil, s.statusError(ctx, "append", err)
	}
	if len(rs) != 1 {
		return nil, s.statusError(ctx, "append", errors.New("sequencer returned no receipt"))
	}
	if rs[0].Err != nil {
		return nil, s.statusError(ctx, "append", rs[0].Err)
	}
	return response(req.GetRequestId(), &rs[0]), nil
}

// appendItem is Append for AppendStream: failures become the response's
// error instead of a status.
func (s *Service) appendItem(ctx context.Context, req *provledgerpb.AppendRequest) *provledgerpb.AppendResponse {
	resp, err := s.Append(ctx, req)
	if err != nil {
		return s.failed(ctx, req.GetRequestId(), err)
	}
	return resp
}

func (s *Service) failed(ctx context.Context, requestID uint64, err error) *provledgerpb.AppendResponse {
	return &provledgerpb.AppendResponse{RequestId: requestID, Error: s.errorProto(ctx, "append", err)}
}

// AppendStream implements provledgerpb.LedgerServer. Requests are handled
// concurrently (up to MaxStreamInFlight at a time) and answered as each
// commits, so the sequencer can group them; clients match responses by
// request_id. A failed append is a response with error set; the stream
// itself fails only when the transport does.
func (s *Service) AppendStream(stream grpc.BidiStreamingServer[provledgerpb.AppendRequest, provledgerpb.AppendResponse]) error {
	ctx := stream.Context()
	var (
		sendMu  sync.Mutex
		sendErr error
		wg      sync.WaitGroup
		sem     = make(chan struct{}, MaxStreamInFlight)
	)
	send := func(resp *provledgerpb.AppendResponse) {
		sendMu.Lock()
		defer sendMu.Unlock()
		if sendErr == nil {
			sendErr = stream.Send(resp)
		}
	}
	var recvErr error
	for {
		req, err := stream.Recv()
		if err != nil {
			if err != io.EOF {
				recvErr = err
			}
			break
		}
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			recvErr = ctx.Err()
			break
		}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			send(s.appendItem(ctx, req))
		}()
	}
	wg.Wait() // a handler must not send after it returns
	if recvErr != nil {
		if _, ok := status.FromError(recvErr); ok {
			return recvErr
		}
		return s.statusError(ctx, "append stream", recvErr)
	}
	sendMu.Lock()
	defer sendMu.Unlock()
	return sendErr
}

// AppendBatch implements provledgerpb.LedgerServer. Every request is
// checked (in parallel); the valid ones go to the sequencer in one call, so
// they commit together. responses[i] answers requests[i].
func (s *Service) AppendBatch(ctx context.Context, req *provledgerpb.AppendBatchRequest) (*provledgerpb.AppendBatchResponse, error) {
	reqs := req.GetRequests()
	if len(reqs) > s.cfg.MaxBatch {
		return nil, invalid("batch has %d requests; the limit is %d: split it", len(reqs), s.cfg.MaxBatch)
	}
	out := &provledgerpb.AppendBatchResponse{Responses: make([]*provledgerpb.AppendResponse, len(reqs))}
	if len(reqs) == 0 {
		return out, nil
	}
	entries := make([]ledger.Entry, len(reqs))
	errs := make([]error, len(reqs))
	var wg sync.WaitGroup
	for i := 0; i < len(reqs); i += checkChunk {
		end := min(i+checkChunk, len(reqs))
		wg.Add(1)
		if !s.enqueue(ctx, checkJob{reqs: reqs[i:end], entries: entries[i:end], errs: errs[i:end], wg: &wg}) {
			wg.Add(-1)
			wg.Wait() // the checkers still hold pointers into entries and errs
			return nil, s.statusError(ctx, "append batch", ctx.Err())
		}
	}
	wg.Wait()
	for i := range reqs {
		if errs[i] == nil {
			errs[i] = s.statusError(ctx, "append", entries[i].Validate(s.cfg.MaxEnvelopeSize))
		}
	}
	valid := make([]ledger.Entry, 0, len(reqs))
	pos := make([]int, 0, len(reqs)) // valid[j] answers reqs[pos[j]]
	for i := range reqs {
		if errs[i] != nil {
			out.Responses[i] = s.failed(ctx, reqs[i].GetRequestId(), errs[i])
			continue
		}
		valid = append(valid, entries[i])
		pos = append(pos, i)
	}
	if len(valid) == 0 {
		return out, nil
	}
	rs, err := s.seq.Submit(ctx, valid)
	if err != nil {
		return nil, s.statusError(ctx, "append batch", err)
	}
	if len(rs) != len(valid) {
		return nil, s.statusError(ctx, "append batch", errors.New("sequencer returned the wrong number of receipts"))
	}
	for j := range rs {
		i := pos[j]
		if rs[j].Err != nil {
			out.Responses[i] = s.failed(ctx, reqs[i].GetRequestId(), rs[j].Err)
			continue
		}
		out.Responses[i] = response(reqs[i].GetRequestId(), &rs[j])
	}
	return out, nil
}
