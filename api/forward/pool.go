package forward

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// ErrPoolClosed is returned by Pool.Conn after Close.
var ErrPoolClosed = errors.New("forward: connection pool closed")

// maxMsgSize bounds the messages exchanged with another node: a forwarded
// batch and its receipts (chunks are kept well below it).
const maxMsgSize = 64 << 20

// Pool caches one gRPC connection per node API address, so forwarding to
// the leader does not dial per request. Safe for concurrent use.
type Pool struct {
	opts []grpc.DialOption

	mu     sync.Mutex
	conns  map[string]*grpc.ClientConn
	closed bool
}

// NewPool returns a pool dialing with opts; with none, plaintext gRPC (a
// cluster without node TLS). provd, with --peer-tls-*, passes
// grpc.WithTransportCredentials of tlsreload.Reloader.GRPCCredentials: the
// node's certificate as client certificate, the other node's checked
// against the cluster CA. A dialer, if not nil, replaces the TCP dial
// (e.g. for tests).
func NewPool(dialer func(ctx context.Context, addr string) (net.Conn, error), opts ...grpc.DialOption) *Pool {
	all := []grpc.DialOption{grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(maxMsgSize), grpc.MaxCallSendMsgSize(maxMsgSize))}
	if len(opts) == 0 {
		all = append(all, grpc.WithTransportCredentials(insecure.NewCredentials()))
	}
	if dialer != nil {
		all = append(all, grpc.WithContextDialer(dialer))
	}
	return &Pool{opts: append(all, opts...), conns: map[string]*grpc.ClientConn{}}
}

// Conn returns the connection to addr, creating it on first use (gRPC
// connects lazily and reconnects on its own).
func (p *Pool) Conn(addr string) (*grpc.ClientConn, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil, ErrPoolClosed
	}
	if c, ok := p.conns[addr]; ok {
		return c, nil
	}
	c, err := grpc.NewClient(addr, p.opts...)
	if err != nil {
		return nil, fmt.Errorf("forward: connect to %s: %w", addr, err)
	}
	p.conns[addr] = c
	return c, nil
}

// Close closes every connection; later Conn calls fail.
func (p *Pool) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	var errs []error
	for a, c := range p.conns {
		errs = append(errs, c.Close())
		delete(p.conns, a)
	}
	return errors.Join(errs...)
}
