package loadgen

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/sigstore/sigstore/pkg/signature"

	"github.com/provledger/provledger/api/provledgerpb"
	"github.com/provledger/provledger/crypto/envelope"
	"github.com/provledger/provledger/crypto/keys"
)

// Payload size bounds: below MinPayloadSize the distinct JSON does not
// fit; MaxPayloadSize keeps the canonical envelope (base64, 4/3 larger)
// under a node's default 1 MiB envelope limit.
const (
	MinPayloadSize = 64
	MaxPayloadSize = 700_000
)

// signer is one signing key of the run.
type signer struct {
	s      signature.Signer
	keyID  string // shared by every envelope it signs
	pubPEM []byte
}

func newSigners(alg string, n int) ([]signer, error) {
	out := make([]signer, n)
	for i := range out {
		priv, err := keys.Generate(alg)
		if err != nil {
			return nil, err
		}
		s, err := keys.NewSigner(priv)
		if err != nil {
			return nil, err
		}
		id, err := keys.IDOf(priv.Public())
		if err != nil {
			return nil, err
		}
		pem, err := keys.MarshalPublicPEM(priv.Public())
		if err != nil {
			return nil, err
		}
		out[i] = signer{s: s, keyID: id.String(), pubPEM: pem}
	}
	return out, nil
}

// payload returns a valid JSON payload of exactly size bytes, distinct for
// every (nonce, i): an in-toto Statement whose subject names the run and
// the index, padded in its predicate; below ~250 bytes a compact object.
func payload(size int, nonce string, i uint64) []byte {
	name := "provbench/" + nonce + "/" + strconv.FormatUint(i, 10)
	var head, tail []byte
	d := sha256.Sum256([]byte(name))
	head = fmt.Appendf(nil, `{"_type":"https://in-toto.io/Statement/v1","subject":[{"name":%q,"digest":{"sha256":"%s"}}],"predicateType":"https://provledger.dev/provbench/v1","predicate":{"pad":"`, name, hex.EncodeToString(d[:]))
	tail = []byte(`"}}`)
	if len(head)+len(tail) > size {
		head = fmt.Appendf(nil, `{"n":%q,"p":"`, name)
		tail = []byte(`"}`)
	}
	pad := size - len(head) - len(tail)
	if pad < 0 {
		panic(fmt.Sprintf("payload size %d is below the minimum for index %d", size, i))
	}
	b := make([]byte, 0, size)
	b = append(b, head...)
	b = append(b, bytes.Repeat([]byte{'x'}, pad)...)
	return append(b, tail...)
}

// presigned is the run's pool of signed append requests, made before the
// clock starts. reqs[i] has request_id i.
type presigned struct {
	reqs []*provledgerpb.AppendRequest
	// envBytes[i] is the size of reqs[i]'s canonical envelope JSON.
	envBytes []int32
}

// presign signs n envelopes (signer i%len(signers)) on all cores. Requests
// carry no public keys: the keys are introduced once, by prime requests.
func presign(ctx context.Context, cfg *AppendConfig, signers []signer, nonce string, first uint64, n int) (*presigned, error) {
	p := &presigned{reqs: make([]*provledgerpb.AppendRequest, n), envBytes: make([]int32, n)}
	var next atomic.Int64
	var firstErr error
	var once sync.Once
	var wg sync.WaitGroup
	for range runtime.GOMAXPROCS(0) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n || ctx.Err() != nil {
					return
				}
				id := first + uint64(i)
				req, size, err := signedRequest(cfg, signers[i%len(signers)], nonce, id)
				if err != nil {
					once.Do(func() { firstErr = err })
					return
				}
				p.reqs[i], p.envBytes[i] = req, int32(size)
			}
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return nil, firstErr
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return p, nil
}

// signedRequest builds the append request of envelope number id and
// returns it with the size of its canonical envelope.
func signedRequest(cfg *AppendConfig, s signer, nonce string, id uint64) (*provledgerpb.AppendRequest, int, error) {
	pl := payload(cfg.Size, nonce, id)
	sig, err := s.s.SignMessage(bytes.NewReader(envelope.PAE(cfg.PayloadType, pl)))
	if err != nil {
		return nil, 0, fmt.Errorf("pre-sign envelope %d: %w", id, err)
	}
	env := &provledgerpb.Envelope{
		PayloadType: cfg.PayloadType,
		Payload:     pl,
		Signatures:  []*provledgerpb.Signature{{Keyid: s.keyID, Sig: sig}},
	}
	req := &provledgerpb.AppendRequest{
		Namespace: cfg.Namespace,
		Body:      &provledgerpb.AppendRequest_Envelope{Envelope: env},
		RequestId: id,
	}
	return req, len(canonical(env)), nil
}

// canonical is the canonical DSSE JSON of a request's envelope: what the
// node stores and what its record's digest names.
func canonical(e *provledgerpb.Envelope) []byte {
	env := envelope.Envelope{PayloadType: e.GetPayloadType(), Payload: e.GetPayload()}
	for _, s := range e.GetSignatures() {
		env.Signatures = append(env.Signatures, envelope.Signature{KeyID: s.GetKeyid(), Sig: s.GetSig()})
	}
	return env.Marshal()
}

// runNonce makes this run's payloads distinct from every other run's, so
// appends to a long-lived node never hit dedup either.
func runNonce() string {
	var b [8]byte
	rand.Read(b[:]) // never fails (crypto/rand, Go 1.24+)
	return hex.EncodeToString(b[:])
}
