package server_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"

	mproof "github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/note"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/provledger/provledger/api/internal/apitest"
	"github.com/provledger/provledger/api/provledgerpb"
	"github.com/provledger/provledger/crypto/checkpoint"
	"github.com/provledger/provledger/crypto/keys"
	"github.com/provledger/provledger/crypto/record"
)

func logVerifier(t testing.TB) note.Verifier {
	v, err := checkpoint.NewVerifier(apitest.Origin, apitest.LogKey.Public().(ed25519.PublicKey))
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func openCheckpoint(t testing.TB, n []byte) checkpoint.Checkpoint {
	t.Helper()
	c, err := checkpoint.Open(n, logVerifier(t))
	if err != nil {
		t.Fatalf("checkpoint does not verify: %v\n%s", err, n)
	}
	return c
}

func wantCode(t testing.TB, err error, code codes.Code, msg string) {
	t.Helper()
	st, ok := status.FromError(err)
	if !ok {
		t.Fatalf("error %v is not a status", err)
	}
	if st.Code() != code || !strings.Contains(st.Message(), msg) {
		t.Fatalf("got %v %q, want %v containing %q", st.Code(), st.Message(), code, msg)
	}
}

func pem(t testing.TB, k ed25519.PrivateKey) []byte {
	b, err := keys.MarshalPublicPEM(k.Public())
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestAppendErrors(t *testing.T) {
	env := apitest.Start(t, apitest.Options{TOFU: true})
	env.Fill(t, 0, 3, 3)
	ctx := context.Background()
	withEnv := func(e *provledgerpb.Envelope) *provledgerpb.AppendRequest {
		return &provledgerpb.AppendRequest{Namespace: "ns", Body: &provledgerpb.AppendRequest_Envelope{Envelope: e}}
	}
	good := apitest.Sign(apitest.PayloadType, apitest.Payload(100), apitest.TrustedKey)
	badSig := apitest.Sign(apitest.PayloadType, apitest.Payload(100), apitest.TrustedKey)
	badSig.Signatures[0].Sig[0] ^= 1
	big := apitest.Sign(apitest.PayloadType, []byte(`"`+strings.Repeat("a", 70<<10)+`"`), apitest.TrustedKey)
	for _, tc := range []struct {
		name string
		req  *provledgerpb.AppendRequest
		code codes.Code
		msg  string
	}{
		{"no namespace", &provledgerpb.AppendRequest{Body: &provledgerpb.AppendRequest_Envelope{Envelope: good}}, codes.InvalidArgument, "namespace is required"},
		{"long namespace", &provledgerpb.AppendRequest{Namespace: strings.Repeat("n", 256), Body: &provledgerpb.AppendRequest_Envelope{Envelope: good}}, codes.InvalidArgument, "namespace is 256 bytes; the limit is 255"},
		{"control char namespace", &provledgerpb.AppendRequest{Namespace: "a\nb", Body: &provledgerpb.AppendRequest_Envelope{Envelope: good}}, codes.InvalidArgument, "control character"},
		{"no body", &provledgerpb.AppendRequest{Namespace: "ns"}, codes.InvalidArgument, "set envelope or dsse_json"},
		{"bad dsse json", &provledgerpb.AppendRequest{Namespace: "ns", Body: &provledgerpb.AppendRequest_DsseJson{DsseJson: []byte(`{"payloadType":`)}}, codes.InvalidArgument, "dsse_json is not a DSSE envelope"},
		{"too large", withEnv(big), codes.InvalidArgument, "; the limit is 65536 (provd --max-envelope-size)"},
		{"unknown type", withEnv(apitest.Sign("text/plain", []byte("hi"), apitest.TrustedKey)), codes.InvalidArgument, `payload type "text/plain" is not accepted; use one of: application/vnd.openlineage.run-event+json`},
		{"not json", withEnv(apitest.Sign(apitest.PayloadType, []byte("{nope"), apitest.TrustedKey)), codes.InvalidArgument, "not valid JSON"},
		{"no signatures", withEnv(apitest.Sign(apitest.PayloadType, apitest.Payload(101))), codes.InvalidArgument, "sign the envelope"},
		{"bad signature", withEnv(badSig), codes.InvalidArgument, "re-sign"},
		{"unknown key", withEnv(apitest.Sign(apitest.PayloadType, apitest.Payload(102), apitest.OtherKey)), codes.PermissionDenied, "trust file"},
		{"bad pem", func() *provledgerpb.AppendRequest {
			r := withEnv(apitest.Sign(apitest.PayloadType, apitest.Payload(103), apitest.OtherKey))
			r.PublicKeys = [][]byte{[]byte("-----BEGIN PUBLIC KEY-----\nnope\n-----END PUBLIC KEY-----\n")}
			return r
		}(), codes.InvalidArgument, "public_keys[0] is not a PEM public key"},
		{"malformed keyid", withEnv(&provledgerpb.Envelope{PayloadType: apitest.PayloadType, Payload: apitest.Payload(104), Signatures: []*provledgerpb.Signature{{Keyid: "xyz", Sig: []byte{1}}}}), codes.InvalidArgument, "signatures[0].keyid"},
		{"duplicate keyid", func() *provledgerpb.AppendRequest {
			e := apitest.Sign(apitest.PayloadType, apitest.Payload(106), apitest.TrustedKey)
			e.Signatures = append(e.Signatures, e.Signatures[0])
			return withEnv(e)
		}(), codes.InvalidArgument, "already signed"},
		{"wrong key for signature", func() *provledgerpb.AppendRequest {
			// The signature names OtherKey, and the PEM sent is TrustedKey's.
			r := withEnv(apitest.Sign(apitest.PayloadType, apitest.Payload(105), apitest.OtherKey))
			r.PublicKeys = [][]byte{pem(t, apitest.TrustedKey)}
			return r
		}(), codes.PermissionDenied, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := env.Log.Latest()
			_, err := env.Client.Append(ctx, tc.req)
			wantCode(t, err, tc.code, tc.msg)
			if after := env.Log.Latest(); after.Size != before.Size || !bytes.Equal(after.Note, before.Note) {
				t.Fatalf("log changed: size %d → %d", before.Size, after.Size)
			}
		})
	}
	if n := len(env.NewKeys()); n != 0 {
		t.Fatalf("OnNewKey called %d times by failed appends", n)
	}
}

func TestAppendAndDedup(t *testing.T) {
	env := apitest.Start(t, apitest.Options{})
	ctx := context.Background()
	req := apitest.Request(1)
	req.RequestId = 77
	r1, err := env.Client.Append(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if r1.RequestId != 77 || r1.Index != 0 || r1.Duplicate || r1.Error != nil {
		t.Fatalf("first append: %+v", r1)
	}
	verifyReceipt(t, r1)
	// The same envelope again, as DSSE JSON this time: same entry.
	got, err := env.Client.GetEntry(ctx, &provledgerpb.GetEntryRequest{Index: 0})
	if err != nil {
		t.Fatal(err)
	}
	r2, err := env.Client.Append(ctx, &provledgerpb.AppendRequest{Namespace: "team-a", Body: &provledgerpb.AppendRequest_DsseJson{DsseJson: got.EnvelopeJson}})
	if err != nil {
		t.Fatal(err)
	}
	if !r2.Duplicate || r2.Index != r1.Index || !bytes.Equal(r2.LeafHash, r1.LeafHash) {
		t.Fatalf("second append: %+v, want duplicate of %d", r2, r1.Index)
	}
	if size := env.Log.Latest().Size; size != 1 {
		t.Fatalf("log size %d after a duplicate, want 1", size)
	}
	verifyReceipt(t, r2)
}

func verifyReceipt(t testing.TB, r *provledgerpb.AppendResponse) {
	t.Helper()
	cp := openCheckpoint(t, r.Checkpoint)
	leaf := rfc6962.DefaultHasher.HashLeaf(r.Record)
	if !bytes.Equal(leaf, r.LeafHash) {
		t.Fatalf("leaf hash %x, want SHA-256(0x00||record) %x", r.LeafHash, leaf)
	}
	if err := mproof.VerifyInclusion(rfc6962.DefaultHasher, r.Index, cp.Size, leaf, r.InclusionProof, cp.Hash[:]); err != nil {
		t.Fatalf("receipt %d does not verify against checkpoint %d: %v", r.Index, cp.Size, err)
	}
}

func TestAppendTOFU(t *testing.T) {
	env := apitest.Start(t, apitest.Options{TOFU: true})
	ctx := context.Background()
	for i := range 3 {
		r := &provledgerpb.AppendRequest{
			Namespace:  "dev",
			Body:       &provledgerpb.AppendRequest_Envelope{Envelope: apitest.Sign(apitest.PayloadType, apitest.Payload(i), apitest.OtherKey)},
			PublicKeys: [][]byte{pem(t, apitest.OtherKey)},
		}
		if _, err := env.Client.Append(ctx, r); err != nil {
			t.Fatalf("append %d with a new key: %v", i, err)
		}
	}
	nk := env.NewKeys()
	if len(nk) != 1 || !apitest.OtherKey.Public().(ed25519.PublicKey).Equal(nk[0]) {
		t.Fatalf("OnNewKey got %d keys, want OtherKey once", len(nk))
	}
}

func TestAppendStream(t *testing.T) {
	env := apitest.Start(t, apitest.Options{})
	ctx := context.Background()
	stream, err := env.Client.AppendStream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	const n = 1000
	const bad = 500 // one failing item must not end the stream
	go func() {
		for i := range n {
			req := apitest.Request(i)
			if i == bad {
				req.Namespace = ""
			}
			if err := stream.Send(req); err != nil {
				t.Errorf("Send %d: %v", i, err)
				return
			}
		}
		stream.CloseSend()
	}()
	seen := map[uint64]bool{}
	indexes := map[uint64]bool{}
	for {
		r, err := stream.Recv()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("Recv: %v", err)
		}
		if seen[r.RequestId] {
			t.Fatalf("request %d answered twice", r.RequestId)
		}
		seen[r.RequestId] = true
		if r.RequestId == bad {
			if r.Error == nil || codes.Code(r.Error.Code) != codes.InvalidArgument || !strings.Contains(r.Error.Message, "namespace") {
				t.Fatalf("bad item answered %+v", r)
			}
			continue
		}
		if r.Error != nil {
			t.Fatalf("request %d failed: %v", r.RequestId, r.Error)
		}
		if indexes[r.Index] {
			t.Fatalf("index %d given twice", r.Index)
		}
		indexes[r.Index] = true
	}
	if len(seen) != n || len(indexes) != n-1 {
		t.Fatalf("%d answers, %d indexes; want %d, %d", len(seen), len(indexes), n, n-1)
	}
	if size := env.Log.Latest().Size; size != n-1 {
		t.Fatalf("log size %d, want %d", size, n-1)
	}
}

func TestAppendBatch(t *testing.T) {
	env := apitest.Start(t, apitest.Options{})
	ctx := context.Background()
	// 20 requests: the checkers take them in jobs of 8 (service.checkChunk),
	// so the bad items sit inside the first job, first in the second and
	// last in the third.
	const n = 20
	bad := map[int]bool{4: true, 8: true, 19: true}
	req := &provledgerpb.AppendBatchRequest{}
	for i := range n {
		req.Requests = append(req.Requests, apitest.Request(i))
		if bad[i] {
			req.Requests[i] = &provledgerpb.AppendRequest{Namespace: "ns", RequestId: uint64(i), Body: &provledgerpb.AppendRequest_Envelope{Envelope: apitest.Sign("text/plain", []byte(fmt.Sprint("x", i)), apitest.TrustedKey)}}
		}
	}
	req.Requests[7] = apitest.Request(2) // duplicate within the batch
	req.Requests[7].RequestId = 7
	resp, err := env.Client.AppendBatch(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Responses) != n {
		t.Fatalf("%d responses, want %d", len(resp.Responses), n)
	}
	for i, r := range resp.Responses {
		if r.RequestId != uint64(i) {
			t.Fatalf("responses[%d] answers request %d", i, r.RequestId)
		}
		switch {
		case bad[i]:
			if r.Error == nil || codes.Code(r.Error.Code) != codes.InvalidArgument || !strings.Contains(r.Error.Message, "not accepted") {
				t.Fatalf("bad item %d: %+v", i, r)
			}
		case i == 7:
			if r.Error != nil || !r.Duplicate || r.Index != resp.Responses[2].Index {
				t.Fatalf("duplicate item: %+v", r)
			}
		default:
			if r.Error != nil {
				t.Fatalf("item %d: %v", i, r.Error)
			}
			verifyReceipt(t, r)
		}
	}
	if size, want := env.Log.Latest().Size, uint64(n-len(bad)-1); size != want {
		t.Fatalf("log size %d, want %d", size, want)
	}
	// One batch, one checkpoint: every receipt names the same one.
	if !bytes.Equal(resp.Responses[0].Checkpoint, resp.Responses[n-2].Checkpoint) {
		t.Fatal("one AppendBatch produced several checkpoints")
	}
	// Over the limit.
	big := &provledgerpb.AppendBatchRequest{}
	for i := range 101 {
		big.Requests = append(big.Requests, apitest.Request(1000+i))
	}
	_, err = env.Client.AppendBatch(ctx, big)
	wantCode(t, err, codes.InvalidArgument, "batch has 101 requests; the limit is 100")
	// Empty.
	if r, err := env.Client.AppendBatch(ctx, &provledgerpb.AppendBatchRequest{}); err != nil || len(r.Responses) != 0 {
		t.Fatalf("empty batch: %v, %v", r, err)
	}
}

func TestReads(t *testing.T) {
	env := apitest.Start(t, apitest.Options{})
	ctx := context.Background()
	env.Fill(t, 0, 10, 4) // checkpoints at 4, 8, 10
	c := env.Client

	t.Run("GetEntry", func(t *testing.T) {
		e, err := c.GetEntry(ctx, &provledgerpb.GetEntryRequest{Index: 5, WithProof: true})
		if err != nil {
			t.Fatal(err)
		}
		rec, err := record.Unmarshal(e.Record)
		if err != nil {
			t.Fatal(err)
		}
		if rec.Namespace != "team-a" || rec.PayloadType != apitest.PayloadType || rec.EnvelopeDigest != sha256Sum(e.EnvelopeJson) || e.RedactedBy != nil {
			t.Fatalf("entry 5: %+v", rec)
		}
		var dsse struct{ PayloadType, Payload string }
		if err := json.Unmarshal(e.EnvelopeJson, &dsse); err != nil || dsse.PayloadType != apitest.PayloadType {
			t.Fatalf("envelope_json %s: %v", e.EnvelopeJson, err)
		}
		cp := openCheckpoint(t, e.Checkpoint)
		if err := mproof.VerifyInclusion(rfc6962.DefaultHasher, 5, cp.Size, rfc6962.DefaultHasher.HashLeaf(e.Record), e.InclusionProof, cp.Hash[:]); err != nil {
			t.Fatal(err)
		}
		_, err = c.GetEntry(ctx, &provledgerpb.GetEntryRequest{Index: 10})
		wantCode(t, err, codes.OutOfRange, "index 10 is not below the log size 10")
	})
	t.Run("GetEntries", func(t *testing.T) {
		for _, tc := range []struct {
			start, end uint64
			want       []uint64
			code       codes.Code
		}{
			{0, 0, seq(0, 10), codes.OK},
			{3, 7, seq(3, 7), codes.OK},
			{10, 0, nil, codes.OK},
			{0, 11, nil, codes.OutOfRange},
			{7, 3, nil, codes.InvalidArgument},
			{11, 0, nil, codes.OutOfRange},
		} {
			st, err := c.GetEntries(ctx, &provledgerpb.GetEntriesRequest{Start: tc.start, End: tc.end})
			if err != nil {
				t.Fatal(err)
			}
			var got []uint64
			for {
				e, err := st.Recv()
				if err == io.EOF {
					break
				}
				if err != nil {
					if status.Code(err) != tc.code {
						t.Fatalf("[%d,%d): %v, want %v", tc.start, tc.end, err, tc.code)
					}
					break
				}
				if len(e.EnvelopeJson) == 0 || len(e.LeafHash) != 32 {
					t.Fatalf("entry %d incomplete", e.Index)
				}
				got = append(got, e.Index)
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Fatalf("[%d,%d): got %v, want %v", tc.start, tc.end, got, tc.want)
			}
		}
	})
	t.Run("GetCheckpoint", func(t *testing.T) {
		latest, err := c.GetCheckpoint(ctx, &provledgerpb.GetCheckpointRequest{})
		if err != nil {
			t.Fatal(err)
		}
		cp := openCheckpoint(t, latest.Note)
		if latest.Size != 10 || cp.Size != 10 || latest.Origin != apitest.Origin || !bytes.Equal(latest.RootHash, cp.Hash[:]) {
			t.Fatalf("latest checkpoint %+v", latest)
		}
		old, err := c.GetCheckpoint(ctx, &provledgerpb.GetCheckpointRequest{Size: 8})
		if err != nil || old.Size != 8 || openCheckpoint(t, old.Note).Size != 8 {
			t.Fatalf("checkpoint 8: %v %v", old, err)
		}
		_, err = c.GetCheckpoint(ctx, &provledgerpb.GetCheckpointRequest{Size: 11})
		wantCode(t, err, codes.OutOfRange, "beyond the latest checkpoint")
		_, err = c.GetCheckpoint(ctx, &provledgerpb.GetCheckpointRequest{Size: 5})
		wantCode(t, err, codes.NotFound, "one checkpoint per committed batch")
	})
	t.Run("GetInclusionProof", func(t *testing.T) {
		e, err := c.GetEntry(ctx, &provledgerpb.GetEntryRequest{Index: 6})
		if err != nil {
			t.Fatal(err)
		}
		for _, req := range []*provledgerpb.GetInclusionProofRequest{
			{Leaf: &provledgerpb.GetInclusionProofRequest_Index{Index: 6}},
			{Leaf: &provledgerpb.GetInclusionProofRequest_LeafHash{LeafHash: e.LeafHash}},
			{Leaf: &provledgerpb.GetInclusionProofRequest_Index{Index: 6}, TreeSize: 8},
		} {
			p, err := c.GetInclusionProof(ctx, req)
			if err != nil {
				t.Fatal(err)
			}
			cp := openCheckpoint(t, p.Checkpoint)
			if p.Index != 6 || cp.Size != p.TreeSize || !bytes.Equal(p.LeafHash, e.LeafHash) {
				t.Fatalf("proof %+v", p)
			}
			if err := mproof.VerifyInclusion(rfc6962.DefaultHasher, 6, p.TreeSize, p.LeafHash, p.Hashes, cp.Hash[:]); err != nil {
				t.Fatal(err)
			}
		}
		// An unpublished size: the proof comes without a checkpoint.
		p, err := c.GetInclusionProof(ctx, &provledgerpb.GetInclusionProofRequest{Leaf: &provledgerpb.GetInclusionProofRequest_Index{Index: 2}, TreeSize: 7})
		if err != nil || p.Checkpoint != nil || p.TreeSize != 7 {
			t.Fatalf("proof at size 7: %v %v", p, err)
		}
		for _, tc := range []struct {
			req  *provledgerpb.GetInclusionProofRequest
			code codes.Code
			msg  string
		}{
			{&provledgerpb.GetInclusionProofRequest{Leaf: &provledgerpb.GetInclusionProofRequest_Index{Index: 1}, TreeSize: 11}, codes.OutOfRange, "tree size 11 is beyond the latest checkpoint"},
			{&provledgerpb.GetInclusionProofRequest{Leaf: &provledgerpb.GetInclusionProofRequest_Index{Index: 8}, TreeSize: 8}, codes.OutOfRange, "index 8 is not below tree size 8"},
			{&provledgerpb.GetInclusionProofRequest{Leaf: &provledgerpb.GetInclusionProofRequest_Index{Index: 10}}, codes.OutOfRange, ""},
			{&provledgerpb.GetInclusionProofRequest{Leaf: &provledgerpb.GetInclusionProofRequest_LeafHash{LeafHash: []byte{1, 2}}}, codes.InvalidArgument, "32-byte"},
			{&provledgerpb.GetInclusionProofRequest{Leaf: &provledgerpb.GetInclusionProofRequest_LeafHash{LeafHash: make([]byte, 32)}}, codes.NotFound, "leaf hash"},
			{&provledgerpb.GetInclusionProofRequest{}, codes.InvalidArgument, "set index or leaf_hash"},
		} {
			_, err := c.GetInclusionProof(ctx, tc.req)
			wantCode(t, err, tc.code, tc.msg)
		}
	})
	t.Run("GetConsistencyProof", func(t *testing.T) {
		for _, sizes := range [][2]uint64{{0, 0}, {0, 10}, {4, 8}, {4, 0}, {8, 10}, {10, 10}, {3, 7}} {
			p, err := c.GetConsistencyProof(ctx, &provledgerpb.GetConsistencyProofRequest{OldSize: sizes[0], NewSize: sizes[1]})
			if err != nil {
				t.Fatal(err)
			}
			if sizes[1] == 0 && p.NewSize != 10 {
				t.Fatalf("new_size 0 gave %d, want the latest (10)", p.NewSize)
			}
			if sizes[0] == 3 { // unpublished sizes: no checkpoints, proof still right
				if p.OldCheckpoint != nil || p.NewCheckpoint != nil {
					t.Fatal("checkpoints for unpublished sizes")
				}
				continue
			}
			c1, c2 := openCheckpoint(t, p.OldCheckpoint), openCheckpoint(t, p.NewCheckpoint)
			if err := mproof.VerifyConsistency(rfc6962.DefaultHasher, c1.Size, c2.Size, p.Hashes, c1.Hash[:], c2.Hash[:]); err != nil {
				t.Fatalf("%v: %v", sizes, err)
			}
		}
		_, err := c.GetConsistencyProof(ctx, &provledgerpb.GetConsistencyProofRequest{OldSize: 4, NewSize: 11})
		wantCode(t, err, codes.OutOfRange, "beyond the latest checkpoint")
		_, err = c.GetConsistencyProof(ctx, &provledgerpb.GetConsistencyProofRequest{OldSize: 9, NewSize: 8})
		wantCode(t, err, codes.OutOfRange, "old size 9 is above new size 8")
	})
}

func TestHealth(t *testing.T) {
	env := apitest.Start(t, apitest.Options{})
	r, err := healthpb.NewHealthClient(env.Conn).Check(context.Background(), &healthpb.HealthCheckRequest{Service: "provledger.v1.Ledger"})
	if err != nil || r.Status != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("health: %v %v", r, err)
	}
}

// TestConcurrentAppends hammers Append from many goroutines; run with -race.
func TestConcurrentAppends(t *testing.T) {
	env := apitest.Start(t, apitest.Options{})
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for g := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 20 {
				if _, err := env.Client.Append(context.Background(), apitest.Request(g*100+i)); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if size := env.Log.Latest().Size; size != 320 {
		t.Fatalf("size %d, want 320", size)
	}
}

func seq(a, b uint64) []uint64 {
	var s []uint64
	for i := a; i < b; i++ {
		s = append(s, i)
	}
	return s
}
