package server_test

import (
	"context"
	"io"
	"testing"

	"github.com/provledger/provledger/api/internal/apitest"
	"github.com/provledger/provledger/api/provledgerpb"
)

// BenchmarkAppendStream measures pipelined appends over one gRPC stream,
// client and server on the same machine, every batch synced.
func BenchmarkAppendStream(b *testing.B) {
	env := apitest.Start(b, apitest.Options{})
	reqs := make([]*provledgerpb.AppendRequest, b.N)
	for i := range reqs {
		reqs[i] = apitest.Request(i)
	}
	b.ReportAllocs()
	b.ResetTimer()
	stream, err := env.Client.AppendStream(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	go func() {
		for _, r := range reqs {
			if err := stream.Send(r); err != nil {
				return
			}
		}
		stream.CloseSend()
	}()
	n := 0
	for {
		r, err := stream.Recv()
		if err == io.EOF {
			break
		}
		if err != nil {
			b.Fatal(err)
		}
		if r.Error != nil {
			b.Fatal(r.Error)
		}
		n++
	}
	if n != b.N {
		b.Fatalf("%d answers, want %d", n, b.N)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "appends/s")
}
