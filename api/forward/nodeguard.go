package forward

import (
	"context"
	"crypto/x509"
	"log/slog"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
)

// NodeGuard makes ForwardedHeader a cluster node's privilege: a call that
// carries it (a forwarded AppendBatch, a forwarded Cluster call) is
// refused with PermissionDenied unless the caller presented, over TLS, a
// client certificate that Verify accepts as a node's (provd: one chaining
// to --peer-tls-ca). A caller without the header is let through untouched;
// authentication and authorization (api/auth) still run after it, as the
// forwarding node's principal.
type NodeGuard struct {
	verify func(chain []*x509.Certificate) error
	lg     *slog.Logger
}

// NewNodeGuard returns a guard that accepts the certificate chains verify
// accepts (e.g. tlsreload.Reloader.VerifyPeer). lg receives refusals;
// nil means slog.Default().
func NewNodeGuard(verify func(chain []*x509.Certificate) error, lg *slog.Logger) *NodeGuard {
	if lg == nil {
		lg = slog.Default()
	}
	return &NodeGuard{verify: verify, lg: lg.With("component", "forward")}
}

// check returns nil for a call without ForwardedHeader or from a node.
func (g *NodeGuard) check(ctx context.Context, method string) error {
	v := metadata.ValueFromIncomingContext(ctx, ForwardedHeader)
	if len(v) == 0 {
		return nil
	}
	from := v[0] // even empty, the header is a claim to be a node
	var chain []*x509.Certificate
	if p, ok := peer.FromContext(ctx); ok {
		if ti, ok := p.AuthInfo.(credentials.TLSInfo); ok {
			chain = ti.State.PeerCertificates
		}
	}
	err := g.verify(chain)
	if err == nil {
		return nil
	}
	g.lg.WarnContext(ctx, "refused a call claiming to be forwarded by a cluster node", "method", method, "forwarded_by", from, "err", err)
	return status.Errorf(codes.PermissionDenied, "%s is reserved for the cluster's nodes and this caller is not one (%v): send the request without it; nodes present a certificate of the cluster CA (provd --peer-tls-cert)", ForwardedHeader, err)
}

// UnaryInterceptor applies the guard to unary calls.
func (g *NodeGuard) UnaryInterceptor(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	if err := g.check(ctx, info.FullMethod); err != nil {
		return nil, err
	}
	return handler(ctx, req)
}

// StreamInterceptor applies the guard to streams.
func (g *NodeGuard) StreamInterceptor(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	if err := g.check(ss.Context(), info.FullMethod); err != nil {
		return err
	}
	return handler(srv, ss)
}
