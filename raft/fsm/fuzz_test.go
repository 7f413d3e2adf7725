package fsm

import (
	"bytes"
	"reflect"
	"testing"
	"time"

	"github.com/provledger/provledger/ledger"
)

// reencode encodes a decoded command again.
func reencode(t *testing.T, c Command) []byte {
	t.Helper()
	var b []byte
	var err error
	switch c.Kind {
	case KindBatch:
		b, err = EncodeBatch(c.Batch)
	case KindSetMember:
		b, err = EncodeSetMember(c.Member)
	case KindRemoveMember:
		b, err = EncodeRemoveMember(c.Member.ID)
	}
	if err != nil {
		t.Fatalf("re-encode %+v: %v", c, err)
	}
	return b
}

// FuzzDecode: whatever decodes re-encodes to the same bytes (the encoding is
// canonical, so every node reads a command the same way), and nothing
// panics.
func FuzzDecode(f *testing.F) {
	b, _ := EncodeBatch(sampleBatch())
	f.Add(b)
	m, _ := EncodeSetMember(Member{ID: "n1", APIAddr: "127.0.0.1:7000"})
	f.Add(m)
	r, _ := EncodeRemoveMember("n1")
	f.Add(r)
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Decode(data)
		if err != nil {
			return
		}
		if got := reencode(t, c); !bytes.Equal(got, data) {
			t.Fatalf("Decode then encode changed the command:\n in  %x\n out %x", data, got)
		}
		if c.Kind == KindBatch && BatchSize(c.Batch.Entries) != len(data) {
			t.Fatalf("BatchSize = %d for a %d-byte command", BatchSize(c.Batch.Entries), len(data))
		}
	})
}

// FuzzBatchRoundTrip: any batch encodes deterministically and decodes to
// itself (time at millisecond precision, which is what the ledger records).
func FuzzBatchRoundTrip(f *testing.F) {
	f.Add(int64(1_700_000_000_123), "ns", "application/vnd.in-toto+json", []byte(`{"a":1}`), uint8(2), "b", "t", []byte{})
	f.Add(int64(-1), "", "", []byte{}, uint8(0), "x", "y", []byte("z"))
	f.Fuzz(func(t *testing.T, ms int64, ns1, pt1 string, env1 []byte, nsig uint8, ns2, pt2 string, env2 []byte) {
		sig := [][32]byte(nil)
		for i := range int(nsig % 5) {
			sig = append(sig, [32]byte{byte(i), 1, 2})
		}
		b := ledger.Batch{Time: time.UnixMilli(ms), Entries: []ledger.Entry{
			{Namespace: ns1, PayloadType: pt1, Envelope: env1, Signers: sig},
			{Namespace: ns2, PayloadType: pt2, Envelope: env2},
		}}
		enc, err := EncodeBatch(b)
		if err != nil {
			t.Fatal(err)
		}
		enc2, _ := EncodeBatch(b)
		if !bytes.Equal(enc, enc2) {
			t.Fatal("encoding is not deterministic")
		}
		c, err := Decode(enc)
		if err != nil {
			t.Fatalf("Decode(EncodeBatch(b)): %v", err)
		}
		if c.Batch.Time.UnixMilli() != ms {
			t.Fatalf("time %d ms decoded as %d", ms, c.Batch.Time.UnixMilli())
		}
		for i := range b.Entries {
			w, g := b.Entries[i], c.Batch.Entries[i]
			if w.Namespace != g.Namespace || w.PayloadType != g.PayloadType || !bytes.Equal(w.Envelope, g.Envelope) || !reflect.DeepEqual(w.Signers, g.Signers) {
				t.Fatalf("entry %d: decoded %+v, want %+v", i, g, w)
			}
		}
	})
}
