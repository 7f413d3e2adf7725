package server_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/provledger/provledger/api/internal/apitest"
	"github.com/provledger/provledger/api/provledgerpb"
	"github.com/provledger/provledger/api/server"
	"github.com/provledger/provledger/api/service"
)

// TestRecvMsgSize: the gRPC receive cap follows the envelope and batch
// limits, within [one maximal Append, MaxRecvMsgSize].
func TestRecvMsgSize(t *testing.T) {
	for _, tc := range []struct {
		env, batch, want int
	}{
		{64 << 10, 1, 192 << 10},
		{64 << 10, 0, 192 << 10},
		{64 << 10, 100, 100 * (192 << 10)},
		{1 << 20, 1000, server.MaxRecvMsgSize}, // capped
		{1 << 40, 1 << 40, 2<<40 + 64<<10},     // overflow: never below one Append
		{64 << 20, 2, 2*(64<<20) + 64<<10},     // one Append above the cap still fits
		{1 << 20, 64, server.MaxRecvMsgSize},   // 64 x 2.06 MiB
		{1 << 20, 16, 16 * (2<<20 + 64<<10)},   // under the cap
	} {
		if got := server.RecvMsgSize(tc.env, tc.batch); got != tc.want {
			t.Errorf("RecvMsgSize(%d, %d) = %d; want %d", tc.env, tc.batch, got, tc.want)
		}
	}
}

// TestRequestSizeCap: a request above the node's receive cap is refused
// with ResourceExhausted before the service sees it, nothing is appended,
// and the node goes on serving.
func TestRequestSizeCap(t *testing.T) {
	e := apitest.Start(t, apitest.Options{TOFU: true, Service: func(c *service.Config) { c.MaxBatch = 1 }}) // cap 192 KiB
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	big := apitest.Sign(apitest.PayloadType, []byte(`{"pad":"`+strings.Repeat("x", 300<<10)+`"}`), apitest.TrustedKey)
	_, err := e.Client.Append(ctx, &provledgerpb.AppendRequest{Namespace: "ns", Body: &provledgerpb.AppendRequest_Envelope{Envelope: big}})
	if st := status.Convert(err); st.Code() != codes.ResourceExhausted || !strings.Contains(st.Message(), "larger than max") {
		t.Fatalf("oversize request: %v; want ResourceExhausted", err)
	}
	if size := e.Log.Latest().Size; size != 0 {
		t.Fatalf("log size %d after a refused request", size)
	}
	if _, err := e.Client.Append(ctx, apitest.Request(0)); err != nil {
		t.Fatalf("append after the refused request: %v", err)
	}
}
