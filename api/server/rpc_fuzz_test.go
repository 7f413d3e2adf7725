package server_test

import (
	"context"
	"errors"
	"io"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/provledger/provledger/api/internal/apitest"
	"github.com/provledger/provledger/api/provledgerpb"
)

// rawCodec sends and receives message bytes as they are, so a fuzz input
// reaches the server's own protobuf decoder.
type rawCodec struct{}

func (rawCodec) Marshal(v any) ([]byte, error) { return *(v.(*[]byte)), nil }
func (rawCodec) Unmarshal(b []byte, v any) error {
	*(v.(*[]byte)) = append([]byte(nil), b...)
	return nil
}
func (rawCodec) Name() string { return "proto" }

// ledgerRPC is one method of the Ledger service as the fuzzer calls it.
type ledgerRPC struct {
	method string
	// unary, server-streaming (one request, many replies) or bidi.
	kind    int
	appends bool
}

const (
	unary = iota
	serverStream
	bidiStream
)

var ledgerRPCs = []ledgerRPC{
	{provledgerpb.Ledger_Append_FullMethodName, unary, true},
	{provledgerpb.Ledger_AppendBatch_FullMethodName, unary, true},
	{provledgerpb.Ledger_AppendStream_FullMethodName, bidiStream, true},
	{provledgerpb.Ledger_GetEntry_FullMethodName, unary, false},
	{provledgerpb.Ledger_GetEntries_FullMethodName, serverStream, false},
	{provledgerpb.Ledger_GetCheckpoint_FullMethodName, unary, false},
	{provledgerpb.Ledger_GetInclusionProof_FullMethodName, unary, false},
	{provledgerpb.Ledger_GetConsistencyProof_FullMethodName, unary, false},
}

// callRaw calls m with body as the request's bytes and returns the replies'
// bytes and the final status.
func callRaw(ctx context.Context, conn *grpc.ClientConn, m ledgerRPC, body []byte) ([][]byte, error) {
	if m.kind == unary {
		var out []byte
		err := conn.Invoke(ctx, m.method, &body, &out, grpc.ForceCodec(rawCodec{}))
		if err != nil {
			return nil, err
		}
		return [][]byte{out}, nil
	}
	desc := &grpc.StreamDesc{ServerStreams: true, ClientStreams: m.kind == bidiStream}
	s, err := conn.NewStream(ctx, desc, m.method, grpc.ForceCodec(rawCodec{}))
	if err != nil {
		return nil, err
	}
	if err := s.SendMsg(&body); err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	if err := s.CloseSend(); err != nil {
		return nil, err
	}
	var outs [][]byte
	for {
		var out []byte
		err := s.RecvMsg(&out)
		if errors.Is(err, io.EOF) {
			return outs, nil
		}
		if err != nil {
			return outs, err
		}
		outs = append(outs, out)
	}
}

// appended counts the entries that replies say grew the log.
func appended(t *testing.T, m ledgerRPC, outs [][]byte) uint64 {
	var n uint64
	count := func(r *provledgerpb.AppendResponse) {
		if r.GetError() == nil && !r.GetDuplicate() {
			n++
		}
	}
	for _, b := range outs {
		if m.method == provledgerpb.Ledger_AppendBatch_FullMethodName {
			r := &provledgerpb.AppendBatchResponse{}
			if err := proto.Unmarshal(b, r); err != nil {
				t.Fatalf("%s: the reply does not decode: %v", m.method, err)
			}
			for _, x := range r.GetResponses() {
				count(x)
			}
			continue
		}
		r := &provledgerpb.AppendResponse{}
		if err := proto.Unmarshal(b, r); err != nil {
			t.Fatalf("%s: the reply does not decode: %v", m.method, err)
		}
		count(r)
	}
	return n
}

// FuzzLedgerRPC sends arbitrary bytes as the request of every Ledger
// method (unary and streaming) to a real server over gRPC: the server's
// protobuf decoder and handler take them. Whatever the bytes, the call
// ends with a proper status (never Unknown or Internal, always with a
// message), and the log grows only by the entries a reply acknowledged.
func FuzzLedgerRPC(f *testing.F) {
	e := apitest.Start(f, apitest.Options{})
	e.Fill(f, 0, 20, 10)
	seeds := []proto.Message{
		apitest.Request(1000),
		&provledgerpb.AppendBatchRequest{Requests: []*provledgerpb.AppendRequest{apitest.Request(1001), apitest.Request(1)}},
		apitest.Request(1002),
		&provledgerpb.GetEntryRequest{Index: 3, WithProof: true},
		&provledgerpb.GetEntriesRequest{Start: 2, End: 9},
		&provledgerpb.GetCheckpointRequest{Size: 7},
		&provledgerpb.GetInclusionProofRequest{Leaf: &provledgerpb.GetInclusionProofRequest_Index{Index: 4}, TreeSize: 11},
		&provledgerpb.GetConsistencyProofRequest{OldSize: 3, NewSize: 12},
	}
	for i, m := range seeds {
		b, err := proto.Marshal(m)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(uint8(i), b)
	}
	f.Fuzz(func(t *testing.T, which uint8, body []byte) {
		m := ledgerRPCs[int(which)%len(ledgerRPCs)]
		before := e.Log.Latest().Size
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		outs, err := callRaw(ctx, e.Conn, m, body)
		st := status.Convert(err)
		switch st.Code() {
		case codes.OK, codes.InvalidArgument, codes.NotFound, codes.OutOfRange, codes.FailedPrecondition, codes.PermissionDenied, codes.ResourceExhausted:
		default:
			t.Fatalf("%s(%x): status %v", m.method, body, st)
		}
		if st.Code() != codes.OK && st.Message() == "" {
			t.Fatalf("%s(%x): %v without a message", m.method, body, st.Code())
		}
		after := e.Log.Latest().Size
		var want uint64
		if m.appends {
			want = appended(t, m, outs)
		}
		if after-before > want {
			t.Fatalf("%s(%x): the log grew by %d entries, the replies acknowledged %d", m.method, body, after-before, want)
		}
	})
}
