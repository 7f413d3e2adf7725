package client

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
)

// Security is how a client authenticates to a node that runs with TLS
// and/or authentication (provd --tls-cert, --auth-tokens; see
// docs/security.md). The zero value is a plaintext, anonymous client.
type Security struct {
	// Token is a bearer token, sent as "authorization: Bearer <token>".
	Token string
	// CAFile is a PEM bundle to verify the node's certificate with; set
	// it (or TLS) to connect over TLS. Empty with TLS: the system roots.
	CAFile string
	// CertFile and KeyFile are a client certificate for mutual TLS.
	CertFile, KeyFile string
	// TLS connects over TLS even without CAFile (system roots).
	TLS bool
	// ServerName overrides the name checked in the node's certificate.
	ServerName string
}

// ErrTokenInPlaintext is returned when a token would be sent over a
// plaintext connection to a non-loopback address.
var ErrTokenInPlaintext = errors.New("client: refusing to send a bearer token without TLS to a non-loopback address (set a CA file or TLS)")

// DialOptions returns the gRPC options that implement s for a connection
// to addr; pass them to Dial. A token over plaintext is allowed to
// loopback addresses only.
func (s Security) DialOptions(addr string) ([]grpc.DialOption, error) {
	useTLS := s.TLS || s.CAFile != "" || s.CertFile != ""
	var opts []grpc.DialOption
	if useTLS {
		cfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: s.ServerName}
		if s.CAFile != "" {
			b, err := os.ReadFile(s.CAFile)
			if err != nil {
				return nil, fmt.Errorf("client: CA file: %w", err)
			}
			cfg.RootCAs = x509.NewCertPool()
			if !cfg.RootCAs.AppendCertsFromPEM(b) {
				return nil, fmt.Errorf("client: CA file %s holds no PEM certificate", s.CAFile)
			}
		}
		if (s.CertFile == "") != (s.KeyFile == "") {
			return nil, errors.New("client: a client certificate needs both its certificate and key files")
		}
		if s.CertFile != "" {
			c, err := tls.LoadX509KeyPair(s.CertFile, s.KeyFile)
			if err != nil {
				return nil, fmt.Errorf("client: client certificate: %w", err)
			}
			cfg.Certificates = []tls.Certificate{c}
		}
		opts = append(opts, grpc.WithTransportCredentials(credentials.NewTLS(cfg)))
	} else {
		if s.Token != "" && !isLoopback(addr) {
			return nil, ErrTokenInPlaintext
		}
		opts = append(opts, grpc.WithTransportCredentials(insecure.NewCredentials()))
	}
	if s.Token != "" {
		opts = append(opts, grpc.WithPerRPCCredentials(bearerToken{token: s.Token, requireTLS: useTLS}))
	}
	return opts, nil
}

type bearerToken struct {
	token      string
	requireTLS bool
}

func (b bearerToken) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + b.token}, nil
}

func (b bearerToken) RequireTransportSecurity() bool { return b.requireTLS }

func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		host = addr
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
