package limits

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/tap"

	"github.com/provledger/provledger/api/auth"
	"github.com/provledger/provledger/api/internal/apitest"
	"github.com/provledger/provledger/api/metrics"
	"github.com/provledger/provledger/api/provledgerpb"
	"github.com/provledger/provledger/api/server"
)

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func TestNewRejectsBadConfig(t *testing.T) {
	for _, c := range []Config{{Rate: -1}, {Rate: 1}, {MaxConcurrent: -1}, {MaxInflightAppends: -2}} {
		if _, err := New(c); err == nil {
			t.Errorf("New(%+v) succeeded", c)
		}
	}
}

func TestAdmit(t *testing.T) {
	for _, tc := range []struct {
		name   string
		cfg    Config
		costs  []int
		wantOK []bool
		is     error
	}{
		{"unlimited", Config{}, []int{1, 1000, 1}, []bool{true, true, true}, nil},
		{"burst then refused", Config{Rate: 0.001, Burst: 3}, []int{1, 2, 1}, []bool{true, true, false}, ErrRateLimited},
		{"batch above burst costs the burst", Config{Rate: 0.001, Burst: 5}, []int{50, 1}, []bool{true, false}, ErrRateLimited},
		{"concurrency", Config{MaxConcurrent: 2}, []int{1, 1, 1}, []bool{true, true, false}, ErrConcurrency},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.cfg.Logger = quiet()
			l, err := New(tc.cfg)
			if err != nil {
				t.Fatal(err)
			}
			for i, c := range tc.costs {
				_, _, err := l.admit("ip:a", c) // never released: all in flight
				if ok := err == nil; ok != tc.wantOK[i] {
					t.Fatalf("request %d (cost %d): %v; want ok=%v", i, c, err, tc.wantOK[i])
				}
				if err != nil && !errors.Is(err, tc.is) {
					t.Errorf("error %v; want %v", err, tc.is)
				}
			}
			// Another identity has its own budget.
			if _, _, err := l.admit("ip:b", 1); err != nil {
				t.Errorf("another identity refused: %v", err)
			}
		})
	}
}

func TestReleaseAndForget(t *testing.T) {
	l, err := New(Config{MaxConcurrent: 1, MaxIdentities: 2, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	rel, _, err := l.admit("ip:a", 1)
	if err != nil {
		t.Fatal(err)
	}
	rel()
	rel() // idempotent
	if _, _, err := l.admit("ip:a", 1); err != nil {
		t.Fatalf("after release: %v", err)
	}
	for _, id := range []string{"ip:b", "ip:c", "ip:d"} {
		r, _, err := l.admit(id, 1)
		if err != nil {
			t.Fatal(err)
		}
		r()
	}
	l.mu.Lock()
	n, a := len(l.ids), l.ids["ip:a"]
	l.mu.Unlock()
	if n > 3 || a == nil {
		t.Errorf("%d identities tracked (ip:a kept: %v); idle ones should be forgotten, busy ones kept", n, a != nil)
	}
}

func TestTapHandle(t *testing.T) {
	m := metrics.New(metrics.Options{NoProcessMetrics: true})
	l, err := New(Config{MaxInflightAppends: 2, Metrics: m, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	appendInfo := &tap.Info{FullMethodName: "/provledger.v1.Ledger/Append"}
	var cancels []context.CancelFunc
	for range 2 {
		ctx, cancel := context.WithCancel(context.Background())
		cancels = append(cancels, cancel)
		if _, err := l.TapHandle(ctx, appendInfo); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := l.TapHandle(context.Background(), appendInfo); status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("third append: %v; want ResourceExhausted", err)
	}
	if _, err := l.TapHandle(context.Background(), &tap.Info{FullMethodName: "/provledger.v1.Ledger/GetEntry"}); err != nil {
		t.Fatalf("a read was refused: %v", err)
	}
	cancels[0]() // the call ends: its slot is released (by context.AfterFunc, on its own goroutine)
	deadline := time.Now().Add(10 * time.Second)
	for l.InflightAppends() != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("in flight %d after a call ended; want 1", l.InflightAppends())
		}
		time.Sleep(time.Millisecond)
	}
	if _, err := l.TapHandle(context.Background(), appendInfo); err != nil {
		t.Fatalf("after a slot was released: %v", err)
	}
	cancels[1]()
}

// TestInterceptors runs the limits behind auth on a real server: the
// default deadline, per-principal rate limits, and ResourceExhausted.
func TestInterceptors(t *testing.T) {
	ps, err := auth.ParseFile([]byte("team-a " + auth.HashToken("a") + "\nteam-b " + auth.HashToken("b") + "\nnode-2 " + auth.HashToken("n2") + " roles=admin\n"))
	if err != nil {
		t.Fatal(err)
	}
	a, err := auth.New(auth.Config{Principals: ps, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	l, err := New(Config{Rate: 0.001, Burst: 2, Timeout: 42 * time.Second, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var deadlines []time.Duration
	probe := func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		if d, ok := ctx.Deadline(); ok {
			mu.Lock()
			deadlines = append(deadlines, time.Until(d))
			mu.Unlock()
		}
		return h(ctx, req)
	}
	e := apitest.Start(t, apitest.Options{Server: func(c *server.Config) {
		c.UnaryInterceptors = append(c.UnaryInterceptors, a.UnaryInterceptor, l.UnaryInterceptor, probe)
	}})
	as := func(tok string) context.Context {
		return metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+tok)
	}
	req := func(i int, ns string) *provledgerpb.AppendRequest {
		r := apitest.Request(i)
		r.Namespace = ns
		return r
	}
	for i, tc := range []struct {
		tok, ns string
		want    codes.Code
	}{
		{"a", "team-a", codes.OK},
		{"a", "team-a", codes.OK},
		{"a", "team-a", codes.ResourceExhausted},
		{"b", "team-b", codes.OK},
		// Admins (operators, forwarding nodes) are not limited.
		{"n2", "team-a", codes.OK},
		{"n2", "team-a", codes.OK},
		{"n2", "team-a", codes.OK},
	} {
		_, err := e.Client.Append(as(tc.tok), req(i, tc.ns))
		if got := status.Code(err); got != tc.want {
			t.Errorf("append %d as %s: %v; want %v", i, tc.tok, err, tc.want)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(deadlines) != 6 {
		t.Fatalf("%d calls reached the handler; want 6", len(deadlines))
	}
	for _, d := range deadlines[:3] {
		if d <= 0 || d > 42*time.Second {
			t.Errorf("handler deadline in %v; want the 42s default", d)
		}
	}
}

func TestHTTPMiddleware(t *testing.T) {
	l, err := New(Config{Rate: 0.001, Burst: 1, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	h := l.HTTPMiddleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	for i, want := range []int{200, 429} {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest("GET", "/checkpoint", nil)
		req.RemoteAddr = "192.0.2.1:1234"
		h.ServeHTTP(rec, req)
		if rec.Code != want {
			t.Errorf("request %d: %d; want %d", i, rec.Code, want)
		}
		if want == 429 && rec.Header().Get("Retry-After") == "" {
			t.Error("429 without Retry-After")
		}
	}
}
