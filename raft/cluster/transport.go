package cluster

import (
	"context"
	"fmt"
	"net"
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
