package cluster

import (
	"context"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

// streamLayer is the raft.StreamLayer of the network transport: connections
// accepted on the caller's listener and dialed with the caller's dialer, so
// both can be wrapped (TLS) without raft knowing.
type streamLayer struct {
	net.Listener
	advertise net.Addr
	dial      func(ctx context.Context, addr string) (net.Conn, error)
}

var _ raft.StreamLayer = (*streamLayer)(nil)

// Dial implements raft.StreamLayer.
func (s *streamLayer) Dial(addr raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	c, err := s.dial(ctx, string(addr))
	if err != nil {
		return nil, fmt.Errorf("dial raft peer %s: %w", addr, err)
	}
	return c, nil
}

// Addr is the address the other nodes dial (raft records it in the
// configuration), not necessarily the listener's.
func (s *streamLayer) Addr() net.Addr { return s.advertise }

type advertiseAddr string

func (a advertiseAddr) Network() string { return "tcp" }
func (a advertiseAddr) String() string  { return string(a) }

// checkAdvertise refuses addresses other nodes cannot dial.
func checkAdvertise(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("raft advertise address %q: %w", addr, err)
	}
	if port == "" || port == "0" {
		return fmt.Errorf("raft advertise address %q has no port", addr)
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		return fmt.Errorf("raft advertise address %q is not dialable by other nodes; set Advertise", addr)
	}
	return nil
}

func defaultDial(ctx context.Context, addr string) (net.Conn, error) {
	var d net.Dialer
	return d.DialContext(ctx, "tcp", addr)
}

// guardTransport wraps the node's transport so that Shutdown can wait for
// raft's heartbeat handler. raft runs that handler on the transport's own
// goroutines (not its main loop), and raft.Shutdown neither stops nor waits
// for them; one still running when the log store closes fails to persist a
// term and panics. After quiesce, heartbeats are refused.
//
// It also expands the snapshots raft sends (InstallSnapshot): a node's own
// snapshots are references to its ledger (fsm/snapref.go), replaced here
// by the ledger's full stream.
type guardTransport struct {
	raft.Transport
	mu     sync.RWMutex
	closed bool
	// expand is fsm.FSM.ExpandSnapshot, set before raft starts.
	expand func(data io.Reader, size int64) (io.Reader, int64, func(), error)
}

// guardTransportPreVote adds pre-vote, which raft enables only if the
// transport has it.
type guardTransportPreVote struct{ *guardTransport }

func newGuardTransport(t raft.Transport) (raft.Transport, *guardTransport) {
	g := &guardTransport{Transport: t}
	if _, ok := t.(raft.WithPreVote); ok {
		return guardTransportPreVote{g}, g
	}
	return g, g
}

func (g guardTransportPreVote) RequestPreVote(id raft.ServerID, target raft.ServerAddress, args *raft.RequestPreVoteRequest, resp *raft.RequestPreVoteResponse) error {
	return g.Transport.(raft.WithPreVote).RequestPreVote(id, target, args, resp)
}

// SetHeartbeatHandler implements raft.Transport.
func (g *guardTransport) SetHeartbeatHandler(cb func(rpc raft.RPC)) {
	if cb == nil {
		g.Transport.SetHeartbeatHandler(nil)
		return
	}
	g.Transport.SetHeartbeatHandler(func(rpc raft.RPC) {
		g.mu.RLock()
		defer g.mu.RUnlock()
		if g.closed {
			rpc.Respond(nil, raft.ErrRaftShutdown)
			return
		}
		cb(rpc)
	})
}

// InstallSnapshot implements raft.Transport: a snapshot reference is sent
// as the full stream of this node's ledger (with its size), a full snapshot
// as it is.
func (g *guardTransport) InstallSnapshot(id raft.ServerID, target raft.ServerAddress, args *raft.InstallSnapshotRequest, resp *raft.InstallSnapshotResponse, data io.Reader) error {
	if g.expand != nil {
		r, size, done, err := g.expand(data, args.Size)
		if err != nil {
			return fmt.Errorf("snapshot for %s: %w", id, err)
		}
		defer done()
		args.Size, data = size, r
	}
	return g.Transport.InstallSnapshot(id, target, args, resp, data)
}

// Close implements raft.WithClose.
func (g *guardTransport) Close() error {
	if c, ok := g.Transport.(raft.WithClose); ok {
		return c.Close()
	}
	return nil
}

// quiesce waits for running heartbeat handlers and refuses later ones.
func (g *guardTransport) quiesce() {
	g.mu.Lock()
	g.closed = true
	g.mu.Unlock()
}
