package client_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/provledger/provledger/api/auth"
	"github.com/provledger/provledger/api/client"
	"github.com/provledger/provledger/api/internal/apitest"
	"github.com/provledger/provledger/api/server"
)

func TestSecurityDialOptions(t *testing.T) {
	for _, tc := range []struct {
		name string
		sec  client.Security
		addr string
		is   error
		err  string
	}{
		{"anonymous plaintext", client.Security{}, "ledger.example:7400", nil, ""},
		{"token to loopback", client.Security{Token: "t"}, "127.0.0.1:7400", nil, ""},
		{"token to localhost", client.Security{Token: "t"}, "localhost:7400", nil, ""},
		{"token in plaintext elsewhere", client.Security{Token: "t"}, "ledger.example:7400", client.ErrTokenInPlaintext, ""},
		{"token over TLS", client.Security{Token: "t", TLS: true}, "ledger.example:7400", nil, ""},
		{"missing CA file", client.Security{CAFile: "/nonexistent/ca.pem"}, "ledger.example:7400", nil, "CA file"},
		{"cert without key", client.Security{CertFile: "c.pem"}, "ledger.example:7400", nil, "both"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opts, err := tc.sec.DialOptions(tc.addr)
			switch {
			case tc.is != nil || tc.err != "":
				if err == nil || (tc.is != nil && !errors.Is(err, tc.is)) || !strings.Contains(err.Error(), tc.err) {
					t.Errorf("error %v; want %v %q", err, tc.is, tc.err)
				}
			case err != nil:
				t.Fatal(err)
			case len(opts) == 0:
				t.Error("no dial options (a transport security option is always returned)")
			}
		})
	}
}

// TestTokenReachesServer: a client with Security.Token is authenticated
// by a node running api/auth; without it, it is not.
func TestTokenReachesServer(t *testing.T) {
	ps, err := auth.ParseFile([]byte("team-a " + auth.HashToken("secret-a") + "\n"))
	if err != nil {
		t.Fatal(err)
	}
	a, err := auth.New(auth.Config{Principals: ps, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	e := apitest.Start(t, apitest.Options{Server: func(c *server.Config) {
		c.UnaryInterceptors = append(c.UnaryInterceptors, a.UnaryInterceptor)
	}})
	addr := e.Conn.Target()
	for _, tc := range []struct {
		token string
		want  codes.Code
	}{{"secret-a", codes.OK}, {"", codes.Unauthenticated}, {"wrong", codes.Unauthenticated}} {
		opts, err := client.Security{Token: tc.token}.DialOptions(addr)
		if err != nil {
			t.Fatal(err)
		}
		c, err := client.Dial(context.Background(), addr, opts...)
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.Append(context.Background(), apitest.Request(len(tc.token)))
		c.Close()
		if got := status.Code(err); got != tc.want {
			t.Errorf("token %q: %v; want %v", tc.token, err, tc.want)
		}
	}
}
