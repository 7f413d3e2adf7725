package limits

import (
	"context"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"

	"github.com/provledger/provledger/api/internal/apitest"
	"github.com/provledger/provledger/api/server"
)

// TestStreamDeadline: on a real server, a stream whose client set no
// deadline gets StreamTimeout; one whose client set a deadline keeps it
// (the unary default is TestInterceptors').
func TestStreamDeadline(t *testing.T) {
	l, err := New(Config{StreamTimeout: 42 * time.Minute, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var seen []time.Duration // time left when the handler ran; -1: no deadline
	probe := func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
		d, ok := ss.Context().Deadline()
		mu.Lock()
		if ok {
			seen = append(seen, time.Until(d))
		} else {
			seen = append(seen, -1)
		}
		mu.Unlock()
		return h(srv, ss)
	}
	e := apitest.Start(t, apitest.Options{Server: func(c *server.Config) {
		c.StreamInterceptors = append(c.StreamInterceptors, l.StreamInterceptor, probe)
	}})
	open := func(ctx context.Context, i int) {
		s, err := e.Client.AppendStream(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Send(apitest.Request(i)); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Recv(); err != nil {
			t.Fatal(err)
		}
		s.CloseSend()
	}
	open(context.Background(), 0)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	open(ctx, 1)
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != 2 {
		t.Fatalf("%d streams reached the handler; want 2", len(seen))
	}
	if d := seen[0]; d < 41*time.Minute || d > 42*time.Minute {
		t.Errorf("stream without a client deadline: handler deadline in %v; want the 42m StreamTimeout", d)
	}
	if d := seen[1]; d <= 0 || d > time.Minute {
		t.Errorf("stream with a 1m client deadline: handler deadline in %v", d)
	}
}
