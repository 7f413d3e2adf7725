package auth

import (
	"strings"
	"testing"

	"github.com/provledger/provledger/api/internal/apitest"
	"github.com/provledger/provledger/api/provledgerpb"
	"github.com/provledger/provledger/crypto/envelope"
	"github.com/provledger/provledger/crypto/policy"
)

// BenchmarkAuthorizeAppend is what the auth interceptor does per append of
// a DSSE JSON envelope (4 KiB payload): authenticate the token, then
// authorize the request, with the grant from the tokens file or from the
// identities of the policy in force.
func BenchmarkAuthorizeAppend(b *testing.B) {
	payload := []byte(`{"x":"` + strings.Repeat("a", 4096) + `"}`)
	env := apitest.Sign(apitest.PayloadType, payload, apitest.TrustedKey)
	de := &envelope.Envelope{PayloadType: env.PayloadType, Payload: env.Payload, Signatures: []envelope.Signature{{KeyID: env.Signatures[0].Keyid, Sig: env.Signatures[0].Sig}}}
	req := &provledgerpb.AppendRequest{Namespace: "team-a", Body: &provledgerpb.AppendRequest_DsseJson{DsseJson: de.Marshal()}}
	p, err := policy.Parse([]byte("policyVersion: 1\nidentities:\n  - {name: team-a, roles: [appender], namespaces: [team-a]}\n"))
	if err != nil {
		b.Fatal(err)
	}
	st := (*policy.State)(nil).Apply(0, p)
	for _, tc := range []struct {
		name string
		src  PolicySource
	}{{"tokens-file", nil}, {"policy-identity", func() *policy.State { return st }}} {
		b.Run(tc.name, func(b *testing.B) {
			ps, err := ParseFile([]byte("team-a " + HashToken("team-a")))
			if err != nil {
				b.Fatal(err)
			}
			a, err := New(Config{Principals: ps, Logger: quietLogger()})
			if err != nil {
				b.Fatal(err)
			}
			if tc.src != nil {
				a.SetPolicy(tc.src)
			}
			b.ReportAllocs()
			for b.Loop() {
				pr, err := a.Authenticate(Credentials{HasBearer: true, Bearer: "team-a"})
				if err != nil {
					b.Fatal(err)
				}
				if err := a.AuthorizeAppend(pr, req); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
