package limits

import (
	"context"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	"github.com/provledger/provledger/api/auth"
	"github.com/provledger/provledger/api/internal/apitest"
	"github.com/provledger/provledger/api/metrics"
)

// BenchmarkInterceptors measures what metrics, auth and limits add to an
// Append (the handler does nothing).
func BenchmarkInterceptors(b *testing.B) {
	ps, err := auth.ParseFile([]byte("team-a " + auth.HashToken("a") + " roles=appender ns=team-a\n"))
	if err != nil {
		b.Fatal(err)
	}
	a, _ := auth.New(auth.Config{Principals: ps, Logger: quiet()})
	m := metrics.New(metrics.Options{NoProcessMetrics: true})
	l, _ := New(Config{Rate: 1e9, Burst: 1 << 20, MaxConcurrent: 1 << 20, Logger: quiet()})
	chain := []grpc.UnaryServerInterceptor{m.UnaryInterceptor, a.UnaryInterceptor, l.UnaryInterceptor}
	info := &grpc.UnaryServerInfo{FullMethod: "/provledger.v1.Ledger/Append"}
	var handler grpc.UnaryHandler = func(ctx context.Context, req any) (any, error) { return nil, nil }
	for i := len(chain) - 1; i >= 0; i-- {
		ic, next := chain[i], handler
		handler = func(ctx context.Context, req any) (any, error) { return ic(ctx, req, info, next) }
	}
	ctx := metadata.NewIncomingContext(context.Background(), metadata.Pairs("authorization", "Bearer a"))
	req := apitest.Request(1)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if _, err := handler(ctx, req); err != nil {
			b.Fatal(err)
		}
	}
}
