package record

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite testdata/vectors.json")

// vector is one test vector of docs/record.md: a record and its encoding.
type vector struct {
	Name           string   `json:"name"`
	IntegratedTime int64    `json:"integrated_time_ms"`
	Namespace      string   `json:"namespace"`
	PayloadType    string   `json:"payload_type"`
	EnvelopeDigest string   `json:"envelope_sha256"`
	EnvelopeSize   uint32   `json:"envelope_size"`
	Signers        []string `json:"signers"`
	Encoding       string   `json:"encoding_hex"`
	LeafHash       string   `json:"leaf_hash_hex"`
}

func vectorRecords() []struct {
	name string
	r    Record
} {
	d := sha256.Sum256([]byte(`{"payloadType":"application/vnd.in-toto+json","payload":"e30=","signatures":[]}`))
	k1 := sha256.Sum256([]byte("key one"))
	k2 := sha256.Sum256([]byte("key two"))
	return []struct {
		name string
		r    Record
	}{
		{"one signer", Record{time.UnixMilli(1764201600000).UTC(), "team-a", "application/vnd.in-toto+json", d, 84, [][32]byte{k1}}},
		{"two signers, openlineage", Record{time.UnixMilli(1764201600123).UTC(), "airflow://prod/etl", "application/vnd.openlineage.run-event+json", d, 1 << 20, [][32]byte{k1, k2}}},
		{"epoch", Record{time.UnixMilli(0).UTC(), "n", "t", [32]byte{}, 0, [][32]byte{{}}}},
	}
}

func leafHash(b []byte) [32]byte { return sha256.Sum256(append([]byte{0}, b...)) }

func TestVectors(t *testing.T) {
	path := filepath.Join("testdata", "vectors.json")
	var got []vector
	for _, v := range vectorRecords() {
		b, err := v.r.Marshal()
		if err != nil {
			t.Fatalf("%s: %v", v.name, err)
		}
		var signers []string
		for _, s := range v.r.Signers {
			signers = append(signers, hex.EncodeToString(s[:]))
		}
		lh := leafHash(b)
		got = append(got, vector{v.name, v.r.IntegratedTime.UnixMilli(), v.r.Namespace, v.r.PayloadType,
			hex.EncodeToString(v.r.EnvelopeDigest[:]), v.r.EnvelopeSize, signers, hex.EncodeToString(b), hex.EncodeToString(lh[:])})
	}
	if *update {
		b, _ := json.MarshalIndent(got, "", "  ")
		if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var want []vector
	if err := json.Unmarshal(raw, &want); err != nil {
		t.Fatal(err)
	}
	if len(want) != len(got) {
		t.Fatalf("%d vectors on file, %d computed", len(want), len(got))
	}
	for i := range want {
		if want[i].Encoding != got[i].Encoding || want[i].LeafHash != got[i].LeafHash {
			t.Errorf("vector %q: encoding changed:\n got %s\nwant %s", want[i].Name, got[i].Encoding, want[i].Encoding)
		}
		enc, _ := hex.DecodeString(want[i].Encoding)
		r, err := Unmarshal(enc)
		if err != nil {
			t.Fatalf("vector %q does not decode: %v", want[i].Name, err)
		}
		if r.Namespace != want[i].Namespace || r.PayloadType != want[i].PayloadType || r.IntegratedTime.UnixMilli() != want[i].IntegratedTime || r.EnvelopeSize != want[i].EnvelopeSize || len(r.Signers) != len(want[i].Signers) {
			t.Errorf("vector %q decodes to %+v", want[i].Name, r)
		}
	}
}

func TestRoundTrip(t *testing.T) {
	for _, v := range vectorRecords() {
		b, err := v.r.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		r, err := Unmarshal(b)
		if err != nil {
			t.Fatalf("%s: %v", v.name, err)
		}
		b2, _ := r.Marshal()
		if !bytes.Equal(b, b2) {
			t.Fatalf("%s: re-encoding differs", v.name)
		}
		if len(b) > MaxEncodedSize {
			t.Fatalf("%s: %d bytes > MaxEncodedSize", v.name, len(b))
		}
	}
}

func TestRejects(t *testing.T) {
	good, _ := vectorRecords()[0].r.Marshal()
	tooManySigners := vectorRecords()[0].r
	tooManySigners.Signers = make([][32]byte, MaxSigners+1)
	longNS := vectorRecords()[0].r
	longNS.Namespace = strings.Repeat("n", 256)
	badUTF8 := vectorRecords()[0].r
	badUTF8.Namespace = "\xff"
	for _, tc := range []struct {
		name string
		b    []byte
	}{
		{"empty", nil},
		{"version 2", append([]byte{2}, good[1:]...)},
		{"truncated", good[:len(good)-1]},
		{"trailing byte", append(append([]byte(nil), good...), 0)},
		{"zero signers", func() []byte { b := append([]byte(nil), good[:len(good)-33]...); return append(b, 0) }()},
	} {
		if _, err := Unmarshal(tc.b); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: err = %v, want ErrMalformed", tc.name, err)
		}
	}
	for name, r := range map[string]Record{"17 signers": tooManySigners, "256-byte namespace": longNS, "bad UTF-8": badUTF8} {
		if _, err := r.Marshal(); !errors.Is(err, ErrMalformed) {
			t.Errorf("Marshal %s: err = %v", name, err)
		}
	}
}

func FuzzUnmarshal(f *testing.F) {
	for _, v := range vectorRecords() {
		b, _ := v.r.Marshal()
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := Unmarshal(b)
		if err != nil {
			return
		}
		// Anything accepted has exactly this encoding.
		b2, err := r.Marshal()
		if err != nil {
			t.Fatalf("accepted record does not re-encode: %v", err)
		}
		if !bytes.Equal(b, b2) {
			t.Fatalf("accepted %x, re-encodes as %x", b, b2)
		}
	})
}
