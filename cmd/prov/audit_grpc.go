package main

import (
	"context"
	"fmt"
	"io"

	"github.com/provledger/provledger/api/client"
	"github.com/provledger/provledger/api/provledgerpb"
)

// grpcEnvelopes reads envelopes in bulk with GetEntries (prov audit
// --envelopes grpc). Only the envelopes are used; records, leaves and the
// tree come from the tiles.
type grpcEnvelopes struct {
	c      *client.Client
	rpcCtx func(context.Context) (context.Context, context.CancelFunc)
}

func (g grpcEnvelopes) Envelopes(ctx context.Context, lo, hi uint64) ([][]byte, error) {
	rctx, cancel := g.rpcCtx(ctx)
	defer cancel()
	stream, err := g.c.GetEntries(rctx, &provledgerpb.GetEntriesRequest{Start: lo, End: hi})
	if err != nil {
		return nil, err
	}
	out := make([][]byte, hi-lo)
	for {
		e, err := stream.Recv()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		if e.GetIndex() < lo || e.GetIndex() >= hi {
			return nil, fmt.Errorf("%w: asked for entries [%d, %d), got entry %d", client.ErrVerify, lo, hi, e.GetIndex())
		}
		if len(e.GetEnvelopeJson()) > 0 {
			out[e.GetIndex()-lo] = e.GetEnvelopeJson()
		}
	}
}
