package policy_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/provledger/provledger/crypto/policy"
)

// FuzzParse: any input is refused with ErrBadPolicy or parses to a policy
// whose canonical payload parses back to the same bytes. The seed corpus
// (testdata/fuzz/FuzzParse) holds YAML and JSON documents and runs with
// plain go test.
func FuzzParse(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := policy.Parse(b)
		if err != nil {
			if !errors.Is(err, policy.ErrBadPolicy) {
				t.Fatalf("error %v does not wrap ErrBadPolicy", err)
			}
			return
		}
		canon, err := p.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		q, err := policy.ParseJSON(canon)
		if err != nil {
			t.Fatalf("canonical payload %s does not parse: %v", canon, err)
		}
		again, _ := q.Marshal()
		if !bytes.Equal(again, canon) {
			t.Fatalf("not canonical:\n%s\n%s", canon, again)
		}
		// Folding it must not panic either.
		s := (*policy.State)(nil).Apply(1, p)
		_ = s.Allows([32]byte{}, "ns", policy.PayloadType)
		_ = s.Policy()
	})
}
