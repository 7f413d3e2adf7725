package auth

import (
	"context"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/provledger/provledger/api/internal/apitest"
	"github.com/provledger/provledger/api/provledgerpb"
	"github.com/provledger/provledger/api/server"
	"github.com/provledger/provledger/crypto/envelope"
)

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

const otherType = "application/vnd.provledger.cost+json"

// testTokens is the tokens file of the authorization tests; the token of
// each principal is its name.
func testTokens(t *testing.T) []Principal {
	t.Helper()
	trusted := apitest.KeyID(apitest.TrustedKey).String()
	file := strings.Join([]string{
		"team-a " + HashToken("team-a"),
		"team-b " + HashToken("team-b") + " roles=appender ns=team-b,team-b/*",
		"reader " + HashToken("reader") + " roles=reader",
		"auditor " + HashToken("auditor") + " roles=auditor",
		"admin " + HashToken("admin") + " roles=admin",
		"typed " + HashToken("typed") + " roles=appender ns=team-a types=" + otherType,
		"keyed " + HashToken("keyed") + " roles=appender ns=team-a keys=" + trusted,
	}, "\n")
	ps, err := ParseFile([]byte(file))
	if err != nil {
		t.Fatal(err)
	}
	return ps
}

func startAuthed(t *testing.T, privateAudit bool) (*apitest.Env, *Authenticator) {
	t.Helper()
	a, err := New(Config{Principals: testTokens(t), PrivateAudit: privateAudit, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	e := apitest.Start(t, apitest.Options{Server: func(c *server.Config) {
		c.UnaryInterceptors = append(c.UnaryInterceptors, a.UnaryInterceptor)
		c.StreamInterceptors = append(c.StreamInterceptors, a.StreamInterceptor)
		c.HTTPMiddleware = a.HTTPMiddleware
		// Services this test server does not run still go through the
		// interceptors, as unknown services (answered Unimplemented).
		c.ServerOptions = append(c.ServerOptions, grpc.UnknownServiceHandler(func(any, grpc.ServerStream) error {
			return status.Error(codes.Unimplemented, "not served by this test server")
		}))
	}})
	return e, a
}

func withToken(tok string) context.Context {
	if tok == "" {
		return context.Background()
	}
	return metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+tok)
}

func nsRequest(i int, ns string) *provledgerpb.AppendRequest {
	r := apitest.Request(i)
	r.Namespace = ns
	return r
}

func TestGRPCAuthorization(t *testing.T) {
	e, _ := startAuthed(t, false)
	lc := e.Client
	cc := provledgerpb.NewClusterClient(e.Conn)
	qc := provledgerpb.NewQueryClient(e.Conn)
	i := 0
	next := func() int { i++; return i }
	typedReq := func(ptype string) *provledgerpb.AppendRequest {
		n := next()
		return &provledgerpb.AppendRequest{Namespace: "team-a", Body: &provledgerpb.AppendRequest_Envelope{Envelope: apitest.Sign(ptype, apitest.Payload(n), apitest.TrustedKey)}}
	}
	dsse := func(ptype string) *provledgerpb.AppendRequest {
		env := apitest.Sign(ptype, apitest.Payload(next()), apitest.TrustedKey)
		e := &envelope.Envelope{PayloadType: env.PayloadType, Payload: env.Payload, Signatures: []envelope.Signature{{KeyID: env.Signatures[0].Keyid, Sig: env.Signatures[0].Sig}}}
		return &provledgerpb.AppendRequest{Namespace: "team-a", Body: &provledgerpb.AppendRequest_DsseJson{DsseJson: e.Marshal()}}
	}
	otherSigner := func() *provledgerpb.AppendRequest {
		return &provledgerpb.AppendRequest{Namespace: "team-a", Body: &provledgerpb.AppendRequest_Envelope{Envelope: apitest.Sign(apitest.PayloadType, apitest.Payload(next()), apitest.OtherKey)}}
	}
	for _, tc := range []struct {
		name, token string
		call        func(ctx context.Context) error
		want        codes.Code
	}{
		{"anonymous append", "", func(ctx context.Context) error { _, err := lc.Append(ctx, nsRequest(next(), "team-a")); return err }, codes.Unauthenticated},
		{"unknown token", "nope", func(ctx context.Context) error { _, err := lc.Append(ctx, nsRequest(next(), "team-a")); return err }, codes.Unauthenticated},
		{"A appends to A", "team-a", func(ctx context.Context) error { _, err := lc.Append(ctx, nsRequest(next(), "team-a")); return err }, codes.OK},
		{"A appends to B", "team-a", func(ctx context.Context) error { _, err := lc.Append(ctx, nsRequest(next(), "team-b")); return err }, codes.PermissionDenied},
		{"B appends to B/x", "team-b", func(ctx context.Context) error { _, err := lc.Append(ctx, nsRequest(next(), "team-b/x")); return err }, codes.OK},
		{"B appends to team-bx", "team-b", func(ctx context.Context) error { _, err := lc.Append(ctx, nsRequest(next(), "team-bx")); return err }, codes.PermissionDenied},
		{"B batch with an A item", "team-b", func(ctx context.Context) error {
			_, err := lc.AppendBatch(ctx, &provledgerpb.AppendBatchRequest{Requests: []*provledgerpb.AppendRequest{nsRequest(next(), "team-b"), nsRequest(next(), "team-a")}})
			return err
		}, codes.PermissionDenied},
		{"B batch", "team-b", func(ctx context.Context) error {
			_, err := lc.AppendBatch(ctx, &provledgerpb.AppendBatchRequest{Requests: []*provledgerpb.AppendRequest{nsRequest(next(), "team-b")}})
			return err
		}, codes.OK},
		{"appender reads", "team-a", func(ctx context.Context) error {
			_, err := lc.GetEntry(ctx, &provledgerpb.GetEntryRequest{Index: 0})
			return err
		}, codes.PermissionDenied},
		{"reader reads", "reader", func(ctx context.Context) error {
			_, err := lc.GetEntry(ctx, &provledgerpb.GetEntryRequest{Index: 0})
			return err
		}, codes.OK},
		{"anonymous reads", "", func(ctx context.Context) error {
			_, err := lc.GetEntry(ctx, &provledgerpb.GetEntryRequest{Index: 0})
			return err
		}, codes.Unauthenticated},
		{"auditor reads entries", "auditor", func(ctx context.Context) error {
			_, err := lc.GetEntry(ctx, &provledgerpb.GetEntryRequest{Index: 0})
			return err
		}, codes.PermissionDenied},
		{"anonymous checkpoint (public audit)", "", func(ctx context.Context) error {
			_, err := lc.GetCheckpoint(ctx, &provledgerpb.GetCheckpointRequest{})
			return err
		}, codes.OK},
		{"reader appends", "reader", func(ctx context.Context) error { _, err := lc.Append(ctx, nsRequest(next(), "team-a")); return err }, codes.PermissionDenied},
		{"appender calls admin RPC", "team-a", func(ctx context.Context) error { _, err := cc.Join(ctx, &provledgerpb.JoinRequest{}); return err }, codes.PermissionDenied},
		{"reader calls admin RPC", "reader", func(ctx context.Context) error { _, err := cc.Remove(ctx, &provledgerpb.RemoveRequest{}); return err }, codes.PermissionDenied},
		{"admin calls admin RPC (not served here)", "admin", func(ctx context.Context) error { _, err := cc.Join(ctx, &provledgerpb.JoinRequest{}); return err }, codes.Unimplemented},
		{"admin appends anywhere", "admin", func(ctx context.Context) error { _, err := lc.Append(ctx, nsRequest(next(), "elsewhere")); return err }, codes.OK},
		{"appender queries", "team-a", func(ctx context.Context) error { _, err := qc.History(ctx, &provledgerpb.NodeQuery{}); return err }, codes.PermissionDenied},
		{"typed: allowed type", "typed", func(ctx context.Context) error { _, err := lc.Append(ctx, typedReq(otherType)); return err }, codes.OK},
		{"typed: other type", "typed", func(ctx context.Context) error { _, err := lc.Append(ctx, typedReq(apitest.PayloadType)); return err }, codes.PermissionDenied},
		{"typed: other type as DSSE JSON", "typed", func(ctx context.Context) error { _, err := lc.Append(ctx, dsse(apitest.PayloadType)); return err }, codes.PermissionDenied},
		{"keyed: its key", "keyed", func(ctx context.Context) error { _, err := lc.Append(ctx, nsRequest(next(), "team-a")); return err }, codes.OK},
		{"keyed: another key", "keyed", func(ctx context.Context) error { _, err := lc.Append(ctx, otherSigner()); return err }, codes.PermissionDenied},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call(withToken(tc.token))
			if got := status.Code(err); got != tc.want {
				t.Errorf("code %v (%v); want %v", got, err, tc.want)
			}
		})
	}
}

// TestGRPCAuthorizationStream: a refused item of an AppendStream is an
// item error; the items around it commit.
func TestGRPCAuthorizationStream(t *testing.T) {
	e, _ := startAuthed(t, false)
	st, err := e.Client.AppendStream(withToken("team-a"))
	if err != nil {
		t.Fatal(err)
	}
	reqs := []*provledgerpb.AppendRequest{nsRequest(1, "team-a"), nsRequest(2, "team-b"), nsRequest(3, "team-a")}
	for _, r := range reqs {
		if err := st.Send(r); err != nil {
			t.Fatal(err)
		}
	}
	st.CloseSend()
	got := map[uint64]codes.Code{}
	for range reqs {
		resp, err := st.Recv()
		if err != nil {
			t.Fatal(err)
		}
		got[resp.GetRequestId()] = codes.Code(resp.GetError().GetCode())
	}
	want := map[uint64]codes.Code{1: codes.OK, 2: codes.PermissionDenied, 3: codes.OK}
	for id, c := range want {
		if got[id] != c {
			t.Errorf("request %d: %v; want %v", id, got[id], c)
		}
	}
	if _, err := st.Recv(); err != io.EOF {
		t.Errorf("stream end: %v", err)
	}
	if n := e.Log.Latest().Size; n != 2 {
		t.Errorf("log size %d; want 2", n)
	}
}

func TestHTTPAuthorization(t *testing.T) {
	for _, private := range []bool{false, true} {
		e, _ := startAuthed(t, private)
		if _, err := e.Client.Append(withToken("admin"), apitest.Request(0)); err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct {
			path, token string
			want        int
		}{
			{"/checkpoint", "", map[bool]int{false: 200, true: 401}[private]},
			{"/checkpoint", "auditor", 200},
			{"/checkpoint", "team-a", map[bool]int{false: 200, true: 403}[private]},
			{"/tile/0/000.p/1", "", map[bool]int{false: 200, true: 401}[private]},
			{"/tile/entries/000.p/1", "", 401},
			{"/tile/entries/000.p/1", "auditor", 403},
			{"/tile/entries/000.p/1", "reader", 200},
			{"/envelope/sha256/" + strings.Repeat("0", 64), "reader", 404},
			{"/envelope/sha256/" + strings.Repeat("0", 64), "bad", 401},
		} {
			req, _ := http.NewRequest("GET", e.HTTPURL+tc.path, nil)
			if tc.token != "" {
				req.Header.Set("Authorization", "Bearer "+tc.token)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.want {
				t.Errorf("private=%v GET %s as %q: %d; want %d", private, tc.path, tc.token, resp.StatusCode, tc.want)
			}
		}
	}
}

func TestCertIdentity(t *testing.T) {
	ps, err := ParseFile([]byte("ci mtls:uri:spiffe://prod/ci roles=appender\nweb mtls:cn:web-1 roles=reader\n"))
	if err != nil {
		t.Fatal(err)
	}
	a, err := New(Config{Principals: ps, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse("spiffe://prod/ci")
	for _, tc := range []struct {
		name string
		cert *x509.Certificate
		want string
	}{
		{"URI SAN", &x509.Certificate{URIs: []*url.URL{u}, Subject: pkix.Name{CommonName: "web-1"}}, "ci"},
		{"common name", &x509.Certificate{Subject: pkix.Name{CommonName: "web-1"}, DNSNames: []string{"x.example"}}, "web"},
		{"unknown", &x509.Certificate{Subject: pkix.Name{CommonName: "stranger"}}, ""},
	} {
		p, err := a.Authenticate(Credentials{Cert: tc.cert})
		switch {
		case tc.want == "" && err == nil:
			t.Errorf("%s: authenticated as %v", tc.name, p)
		case tc.want != "" && (err != nil || p.Name != tc.want):
			t.Errorf("%s: %v %v; want %s", tc.name, p, err, tc.want)
		}
	}
	// A bearer token, when sent, wins over the certificate (and a bad one
	// is refused, not ignored).
	if _, err := a.Authenticate(Credentials{HasBearer: true, Bearer: "x", Cert: &x509.Certificate{URIs: []*url.URL{u}}}); err == nil {
		t.Error("a bad bearer token with a good certificate was accepted")
	}
}

// TestMethodClasses pins the class of the services' methods: reads of
// every service are ClassRead, changes stay admin, unknown methods admin.
func TestMethodClasses(t *testing.T) {
	a, err := New(Config{Principals: testTokens(t), Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		method string
		want   Class
	}{
		{provledgerpb.Ledger_Append_FullMethodName, ClassAppend},
		{provledgerpb.Ledger_GetEntry_FullMethodName, ClassRead},
		{provledgerpb.Ledger_GetCheckpoint_FullMethodName, ClassAudit},
		{provledgerpb.Cluster_Status_FullMethodName, ClassRead},
		{provledgerpb.Cluster_Join_FullMethodName, ClassAdmin},
		{provledgerpb.Scanner_ListFindings_FullMethodName, ClassRead},
		{provledgerpb.Scanner_ForecastCost_FullMethodName, ClassRead},
		{provledgerpb.Scanner_Scan_FullMethodName, ClassAdmin},
		{provledgerpb.Admin_Backup_FullMethodName, ClassAdmin}, // a copy of everything
		{"/provledger.v1.Unknown/Method", ClassAdmin},
	} {
		if got := a.MethodClass(tc.method); got != tc.want {
			t.Errorf("MethodClass(%s) = %v, want %v", tc.method, got, tc.want)
		}
	}
}
