// Package client is the Go client of a provledger node: a gRPC connection
// to the Ledger service plus the checks a client runs on what the server
// returns, so that nothing the server says is believed unverified.
//
// The server is untrusted. Every receipt, entry and proof can be checked
// with the log's Ed25519 public key alone (DATA/log.pub on the node):
// VerifyReceipt checks an Append response, VerifyEntry an entry read back
// with its proof, and VerifyProof a saved receipt (a C2SP tlog-proof file,
// see crypto/tlogproof) offline.
package client

import (
	"context"
	"fmt"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/provledger/provledger/api/provledgerpb"
)

// DefaultAddr is the gRPC address a provd --dev node listens on.
const DefaultAddr = "127.0.0.1:7400"

// maxRecvMsgSize lets GetEntry return an envelope at the server's largest
// configurable size with room to spare.
const maxRecvMsgSize = 64 << 20

// Client is a connection to one provledger node. It embeds the generated
// LedgerClient, so every RPC is a method of Client.
type Client struct {
	provledgerpb.LedgerClient
	conn *grpc.ClientConn
}

// Dial connects to the node at addr (host:port). With no options it uses a
// plaintext connection, which is what a loopback or --dev node serves; pass
// grpc.WithTransportCredentials (and any other options) to change that.
// The connection is made lazily: an unreachable server shows up as a
// codes.Unavailable error on the first call, not here.
func Dial(ctx context.Context, addr string, opts ...grpc.DialOption) (*Client, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if addr == "" {
		addr = DefaultAddr
	}
	all := []grpc.DialOption{grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(maxRecvMsgSize))}
	if len(opts) == 0 {
		all = append(all, grpc.WithTransportCredentials(insecure.NewCredentials()))
	}
	all = append(all, opts...)
	conn, err := grpc.NewClient(addr, all...)
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", addr, err)
	}
	return &Client{LedgerClient: provledgerpb.NewLedgerClient(conn), conn: conn}, nil
}

// Close closes the connection.
func (c *Client) Close() error { return c.conn.Close() }
