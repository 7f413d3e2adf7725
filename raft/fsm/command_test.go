package fsm

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"reflect"
	"runtime"
	"testing"
	"time"

	"github.com/provledger/provledger/ledger"
)

func sampleBatch() ledger.Batch {
	return ledger.Batch{
		Time: time.UnixMilli(1_700_000_000_123),
		Entries: []ledger.Entry{
			{
				Namespace:   "team-a",
				PayloadType: "application/vnd.in-toto+json",
				Envelope:    []byte(`{"payloadType":"x","payload":"","signatures":[]}`),
				Signers:     [][32]byte{sha256.Sum256([]byte("k1")), sha256.Sum256([]byte("k2"))},
			},
			{Namespace: "b", PayloadType: "t", Envelope: []byte("{}")},
		},
	}
}

// TestBatchVector pins the encoding documented in docs/raft.md.
func TestBatchVector(t *testing.T) {
	b := ledger.Batch{
		Time: time.UnixMilli(1_700_000_000_123),
		Entries: []ledger.Entry{{
			Namespace:   "ns",
			PayloadType: "t",
			Envelope:    []byte("{}"),
			Signers:     [][32]byte{{0: 0xaa, 31: 0xbb}},
		}},
	}
	got, err := EncodeBatch(b)
	if err != nil {
		t.Fatal(err)
	}
	const want = "0101" + "0000018bcfe5687b" + "01" + "026e73" + "0174" + "027b7d" + "01" +
		"aa000000000000000000000000000000000000000000000000000000000000bb"
	if hex.EncodeToString(got) != want {
		t.Fatalf("EncodeBatch = %x\nwant          %s", got, want)
	}
	if len(got) != BatchSize(b.Entries) {
		t.Fatalf("BatchSize = %d, encoded %d", BatchSize(b.Entries), len(got))
	}
	m, _ := EncodeSetMember(Member{ID: "n1", APIAddr: "127.0.0.1:7000"})
	if h := hex.EncodeToString(m); h != "0102"+"026e31"+"0e3132372e302e302e313a37303030" {
		t.Fatalf("EncodeSetMember = %s", h)
	}
	r, _ := EncodeRemoveMember("n1")
	if h := hex.EncodeToString(r); h != "0103026e31" {
		t.Fatalf("EncodeRemoveMember = %s", h)
	}
}

func TestRoundTrip(t *testing.T) {
	b := sampleBatch()
	enc, err := EncodeBatch(b)
	if err != nil {
		t.Fatal(err)
	}
	c, err := Decode(enc)
	if err != nil {
		t.Fatal(err)
	}
	if c.Kind != KindBatch || !c.Batch.Time.Equal(b.Time) || !reflect.DeepEqual(c.Batch.Entries, b.Entries) {
		t.Fatalf("Decode = %+v; want %+v", c.Batch, b)
	}
	for _, m := range []Member{{ID: "node-1", APIAddr: "10.0.0.1:7443"}} {
		enc, _ := EncodeSetMember(m)
		c, err := Decode(enc)
		if err != nil || c.Kind != KindSetMember || c.Member != m {
			t.Fatalf("Decode(SetMember) = %+v, %v", c, err)
		}
		enc, _ = EncodeRemoveMember(m.ID)
		c, err = Decode(enc)
		if err != nil || c.Kind != KindRemoveMember || c.Member.ID != m.ID {
			t.Fatalf("Decode(RemoveMember) = %+v, %v", c, err)
		}
	}
}

func TestEncodeRejects(t *testing.T) {
	if _, err := EncodeBatch(ledger.Batch{Time: time.Now()}); err == nil {
		t.Error("encoded an empty batch")
	}
	if _, err := EncodeSetMember(Member{ID: "x"}); err == nil {
		t.Error("encoded a member without an API address")
	}
	if _, err := EncodeSetMember(Member{ID: string(make([]byte, MaxMemberID+1)), APIAddr: "a"}); err == nil {
		t.Error("encoded an oversized member id")
	}
	if _, err := EncodeRemoveMember(""); err == nil {
		t.Error("encoded an empty member id")
	}
}

func TestDecodeRejects(t *testing.T) {
	good, _ := EncodeBatch(sampleBatch())
	for i := range len(good) {
		if _, err := Decode(good[:i]); !errors.Is(err, ErrMalformed) {
			t.Fatalf("Decode of the first %d of %d bytes: %v", i, len(good), err)
		}
	}
	mod := func(f func([]byte) []byte) []byte { return f(bytes.Clone(good)) }
	cases := map[string][]byte{
		"trailing byte":     append(bytes.Clone(good), 0),
		"version 2":         mod(func(b []byte) []byte { b[0] = 2; return b }),
		"version 0":         mod(func(b []byte) []byte { b[0] = 0; return b }),
		"unknown kind":      mod(func(b []byte) []byte { b[1] = 9; return b }),
		"zero entries":      append([]byte{1, 1, 0, 0, 0, 0, 0, 0, 0, 0}, 0),
		"huge count":        append([]byte{1, 1, 0, 0, 0, 0, 0, 0, 0, 0}, 0xff, 0xff, 0xff, 0xff, 0x0f),
		"non-minimal count": append([]byte{1, 1, 0, 0, 0, 0, 0, 0, 0, 0}, 0x81, 0x00, 0, 0, 0, 0),
		"huge signers":      append([]byte{1, 1, 0, 0, 0, 0, 0, 0, 0, 0}, 1, 0, 0, 0, 0x7f),
		"member no addr":    {1, 2, 1, 'a', 0},
		"member empty id":   {1, 3, 0},
		"member long id":    append([]byte{1, 3, 0x80, 0x02}, make([]byte, 256)...),
	}
	for name, b := range cases {
		if _, err := Decode(b); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: Decode(%x) = %v; want ErrMalformed", name, b, err)
		}
	}
}

// TestDecodeDoesNotAllocateFromCounts checks that a small command cannot make
// the decoder allocate for a large claimed count.
func TestDecodeDoesNotAllocateFromCounts(t *testing.T) {
	bogus := [][]byte{
		append([]byte{1, 1, 0, 0, 0, 0, 0, 0, 0, 0}, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f),
		append([]byte{1, 1, 0, 0, 0, 0, 0, 0, 0, 0}, 1, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x0f),
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range 100 {
		for _, b := range bogus {
			if _, err := Decode(b); err == nil {
				t.Fatalf("Decode(%x) succeeded", b)
			}
		}
	}
	runtime.ReadMemStats(&after)
	if n := after.TotalAlloc - before.TotalAlloc; n > 1<<20 {
		t.Fatalf("decoding 200 bogus counts allocated %d bytes", n)
	}
}
