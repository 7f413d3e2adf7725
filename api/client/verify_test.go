package client

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"
	"google.golang.org/protobuf/proto"

	"github.com/provledger/provledger/api/provledgerpb"
	"github.com/provledger/provledger/crypto/checkpoint"
	"github.com/provledger/provledger/crypto/envelope"
	"github.com/provledger/provledger/crypto/keys"
	"github.com/provledger/provledger/crypto/proof"
	"github.com/provledger/provledger/crypto/record"
	"github.com/provledger/provledger/crypto/tlogproof"
)

const testOrigin = "test.provledger/client"

func mth(leaves [][32]byte) [32]byte {
	switch len(leaves) {
	case 0:
		return proof.EmptyRoot()
	case 1:
		return leaves[0]
	}
	k := split(len(leaves))
	return proof.HashChildren(mth(leaves[:k]), mth(leaves[k:]))
}

func split(n int) int {
	k := 1
	for k*2 < n {
		k *= 2
	}
	return k
}

func auditPath(m int, leaves [][32]byte) [][]byte {
	if len(leaves) <= 1 {
		return nil
	}
	k := split(len(leaves))
	if m < k {
		h := mth(leaves[k:])
		return append(auditPath(m, leaves[:k]), h[:])
	}
	h := mth(leaves[:k])
	return append(auditPath(m-k, leaves[k:]), h[:])
}

type fixture struct {
	logPriv   ed25519.PrivateKey
	v         note.Verifier
	canonical []byte
	resp      *provledgerpb.AppendResponse
	entry     *provledgerpb.Entry
}

// newFixture builds a log of 6 entries whose entry 3 is a signed envelope,
// and the receipt and entry of it, as a server would return them.
func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{logPriv: ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, 32))}
	priv, err := keys.Generate(keys.AlgEd25519)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := keys.NewSigner(priv)
	if err != nil {
		t.Fatal(err)
	}
	env, err := envelope.Sign("application/vnd.in-toto+json", []byte(`{"_type":"https://in-toto.io/Statement/v1"}`), signer)
	if err != nil {
		t.Fatal(err)
	}
	f.canonical = env.Marshal()
	id, err := keys.IDOf(priv.Public())
	if err != nil {
		t.Fatal(err)
	}
	rec := record.Record{
		IntegratedTime: time.UnixMilli(1700000000123).UTC(),
		Namespace:      "team-a",
		PayloadType:    env.PayloadType,
		EnvelopeDigest: sha256.Sum256(f.canonical),
		EnvelopeSize:   uint32(len(f.canonical)),
		Signers:        [][32]byte{id},
	}
	raw, err := rec.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	var leaves [][32]byte
	for i := range 6 {
		if i == 3 {
			leaves = append(leaves, proof.LeafHash(raw))
			continue
		}
		leaves = append(leaves, proof.LeafHash([]byte{byte(i)}))
	}
	s, err := checkpoint.NewSigner(testOrigin, f.logPriv)
	if err != nil {
		t.Fatal(err)
	}
	signed, err := checkpoint.Sign(s, checkpoint.Checkpoint{Origin: testOrigin, Size: 6, Hash: mth(leaves)})
	if err != nil {
		t.Fatal(err)
	}
	f.v, err = checkpoint.NewVerifier(testOrigin, f.logPriv.Public().(ed25519.PublicKey))
	if err != nil {
		t.Fatal(err)
	}
	lh := proof.LeafHash(raw)
	f.resp = &provledgerpb.AppendResponse{
		Index: 3, LeafHash: lh[:], Record: raw, Checkpoint: signed, InclusionProof: auditPath(3, leaves),
	}
	f.entry = &provledgerpb.Entry{
		Index: 3, Record: raw, LeafHash: lh[:], EnvelopeJson: f.canonical, Checkpoint: signed, InclusionProof: auditPath(3, leaves),
	}
	return f
}

func TestVerifyReceipt(t *testing.T) {
	f := newFixture(t)
	if err := VerifyReceipt(f.resp, f.canonical, f.v); err != nil {
		t.Fatalf("valid receipt: %v", err)
	}
	if err := VerifyReceipt(f.resp, f.canonical, nil); err != nil {
		t.Fatalf("valid receipt, no log key: %v", err)
	}
	otherPub, _, _ := ed25519.GenerateKey(nil)
	otherKey, _ := checkpoint.NewVerifier(testOrigin, otherPub)
	otherName, _ := checkpoint.NewVerifier("other.test/log", f.logPriv.Public().(ed25519.PublicKey))

	reencode := func(r *provledgerpb.AppendResponse, edit func(*record.Record)) {
		rec, err := record.Unmarshal(r.Record)
		if err != nil {
			t.Fatal(err)
		}
		edit(&rec)
		raw, err := rec.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		lh := proof.LeafHash(raw)
		r.Record, r.LeafHash = raw, lh[:]
	}
	flip := func(b []byte, i int) []byte {
		c := bytes.Clone(b)
		c[i] ^= 1
		return c
	}
	for _, tc := range []struct {
		name string
		edit func(r *provledgerpb.AppendResponse, env *[]byte)
		v    note.Verifier
		// sigOnly: the tampering is only visible to the signature check.
		sigOnly bool
	}{
		{name: "index", edit: func(r *provledgerpb.AppendResponse, _ *[]byte) { r.Index = 2 }},
		{name: "index beyond size", edit: func(r *provledgerpb.AppendResponse, _ *[]byte) { r.Index = 6 }},
		{name: "leaf hash", edit: func(r *provledgerpb.AppendResponse, _ *[]byte) { r.LeafHash = flip(r.LeafHash, 0) }},
		{name: "leaf hash missing", edit: func(r *provledgerpb.AppendResponse, _ *[]byte) { r.LeafHash = nil }},
		{name: "record byte (leaf hash kept)", edit: func(r *provledgerpb.AppendResponse, _ *[]byte) { r.Record = flip(r.Record, 12) }},
		{name: "record truncated", edit: func(r *provledgerpb.AppendResponse, _ *[]byte) { r.Record = r.Record[:len(r.Record)-1] }},
		{name: "record namespace (leaf rehashed)", edit: func(r *provledgerpb.AppendResponse, _ *[]byte) {
			reencode(r, func(rec *record.Record) { rec.Namespace = "team-b" })
		}},
		{name: "record time (leaf rehashed)", edit: func(r *provledgerpb.AppendResponse, _ *[]byte) {
			reencode(r, func(rec *record.Record) { rec.IntegratedTime = rec.IntegratedTime.Add(time.Millisecond) })
		}},
		{name: "record digest (leaf rehashed)", edit: func(r *provledgerpb.AppendResponse, _ *[]byte) {
			reencode(r, func(rec *record.Record) { rec.EnvelopeDigest[0] ^= 1 })
		}},
		{name: "record size (leaf rehashed)", edit: func(r *provledgerpb.AppendResponse, _ *[]byte) {
			reencode(r, func(rec *record.Record) { rec.EnvelopeSize++ })
		}},
		{name: "record payload type (leaf rehashed)", edit: func(r *provledgerpb.AppendResponse, _ *[]byte) {
			reencode(r, func(rec *record.Record) { rec.PayloadType = "application/vnd.provledger.cost+json" })
		}},
		{name: "record signers (leaf rehashed)", edit: func(r *provledgerpb.AppendResponse, _ *[]byte) {
			reencode(r, func(rec *record.Record) { rec.Signers[0][0] ^= 1 })
		}},
		{name: "envelope changed", edit: func(_ *provledgerpb.AppendResponse, env *[]byte) { *env = flip(*env, len(*env)/2) }},
		{name: "envelope extended", edit: func(_ *provledgerpb.AppendResponse, env *[]byte) { *env = append(bytes.Clone(*env), ' ') }},
		{name: "proof hash", edit: func(r *provledgerpb.AppendResponse, _ *[]byte) {
			r.InclusionProof = append([][]byte{}, r.InclusionProof...)
			r.InclusionProof[1] = flip(r.InclusionProof[1], 31)
		}},
		{name: "proof dropped", edit: func(r *provledgerpb.AppendResponse, _ *[]byte) {
			r.InclusionProof = r.InclusionProof[:len(r.InclusionProof)-1]
		}},
		{name: "proof extra hash", edit: func(r *provledgerpb.AppendResponse, _ *[]byte) {
			r.InclusionProof = append(append([][]byte{}, r.InclusionProof...), make([]byte, 32))
		}},
		{name: "proof empty", edit: func(r *provledgerpb.AppendResponse, _ *[]byte) { r.InclusionProof = nil }},
		// Index 3 has the same proof shape in trees of size 6 and 7, so only
		// the signature shows this one.
		{name: "checkpoint size", sigOnly: true, edit: func(r *provledgerpb.AppendResponse, _ *[]byte) {
			r.Checkpoint = []byte(strings.Replace(string(r.Checkpoint), "\n6\n", "\n7\n", 1))
		}},
		{name: "checkpoint size below index", edit: func(r *provledgerpb.AppendResponse, _ *[]byte) {
			r.Checkpoint = []byte(strings.Replace(string(r.Checkpoint), "\n6\n", "\n3\n", 1))
		}},
		{name: "checkpoint root", edit: func(r *provledgerpb.AppendResponse, _ *[]byte) {
			lines := strings.SplitN(string(r.Checkpoint), "\n", 4)
			lines[2] = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
			r.Checkpoint = []byte(strings.Join(lines, "\n"))
		}},
		{name: "checkpoint signature", sigOnly: true, edit: func(r *provledgerpb.AppendResponse, _ *[]byte) {
			i := bytes.LastIndex(r.Checkpoint, []byte(" ")) + 10
			c := bytes.Clone(r.Checkpoint)
			if c[i] == 'A' {
				c[i] = 'B'
			} else {
				c[i] = 'A'
			}
			r.Checkpoint = c
		}},
		{name: "checkpoint missing", edit: func(r *provledgerpb.AppendResponse, _ *[]byte) { r.Checkpoint = nil }},
		{name: "error set", edit: func(r *provledgerpb.AppendResponse, _ *[]byte) {
			r.Error = &provledgerpb.Error{Code: 3, Message: "bad"}
		}},
		{name: "other log key", sigOnly: true, v: otherKey, edit: func(*provledgerpb.AppendResponse, *[]byte) {}},
		{name: "other log name", sigOnly: true, v: otherName, edit: func(*provledgerpb.AppendResponse, *[]byte) {}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := proto.Clone(f.resp).(*provledgerpb.AppendResponse)
			env := f.canonical
			tc.edit(r, &env)
			v := tc.v
			if v == nil {
				v = f.v
			}
			err := VerifyReceipt(r, env, v)
			if err == nil {
				t.Fatal("VerifyReceipt accepted a tampered receipt")
			}
			t.Log(err)
			if !tc.sigOnly && tc.name != "error set" {
				if err := VerifyReceipt(r, env, nil); err == nil {
					t.Fatal("tampering only caught by the signature check")
				}
			}
		})
	}
}

func TestReceiptRoundTrip(t *testing.T) {
	f := newFixture(t)
	b := ReceiptFromResponse(f.resp).Marshal()
	p, err := tlogproof.Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	rec, cp, err := VerifyProof(p, f.v)
	if err != nil {
		t.Fatal(err)
	}
	if rec.Namespace != "team-a" || cp.Size != 6 || cp.Origin != testOrigin {
		t.Fatalf("got %+v %+v", rec, cp)
	}
	if err := CheckEnvelope(rec, f.canonical); err != nil {
		t.Fatal(err)
	}
	// Tampered receipts fail.
	p.Extra = bytes.Clone(p.Extra)
	p.Extra[20] ^= 1
	if _, _, err := VerifyProof(p, f.v); !errors.Is(err, ErrVerify) {
		t.Fatalf("tampered record: %v", err)
	}
	p, _ = tlogproof.Parse(b)
	p.Index = 4
	if _, _, err := VerifyProof(p, f.v); err == nil {
		t.Fatal("tampered index accepted")
	}
	p, _ = tlogproof.Parse(b)
	if _, _, err := VerifyProof(p, nil); err == nil {
		t.Fatal("VerifyProof without a key must fail")
	}
}

func TestVerifyEntry(t *testing.T) {
	f := newFixture(t)
	ve, err := VerifyEntry(f.entry, f.v)
	if err != nil {
		t.Fatal(err)
	}
	if ve.Index != 3 || !ve.SignatureChecked || ve.Checkpoint.Size != 6 || ve.Record.Namespace != "team-a" {
		t.Fatalf("%+v", ve)
	}
	e := proto.Clone(f.entry).(*provledgerpb.Entry)
	e.EnvelopeJson = append(bytes.Clone(e.EnvelopeJson), '\n')
	if _, err := VerifyEntry(e, f.v); !errors.Is(err, ErrVerify) {
		t.Fatalf("changed envelope: %v", err)
	}
	// Redacted: no envelope, but the record and proof still verify.
	e = proto.Clone(f.entry).(*provledgerpb.Entry)
	e.EnvelopeJson = nil
	if _, err := VerifyEntry(e, f.v); err == nil {
		t.Fatal("missing envelope without redaction accepted")
	}
	by := uint64(5)
	e.RedactedBy = &by
	if _, err := VerifyEntry(e, f.v); err != nil {
		t.Fatalf("redacted entry: %v", err)
	}
	e = proto.Clone(f.entry).(*provledgerpb.Entry)
	e.InclusionProof, e.Checkpoint = nil, nil
	if _, err := VerifyEntry(e, f.v); err == nil {
		t.Fatal("entry without proof accepted")
	}
}

func TestLoadLogKey(t *testing.T) {
	dir := t.TempDir()
	pub, _, _ := ed25519.GenerateKey(nil)
	der, _ := x509.MarshalPKIXPublicKey(pub)
	path := filepath.Join(dir, "log.pub")
	os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o644)
	got, err := LoadLogKey(path)
	if err != nil || !got.Equal(pub) {
		t.Fatalf("LoadLogKey: %v", err)
	}
	v, err := LoadLogVerifier(path, "a.example/log")
	if err != nil || v.Name() != "a.example/log" {
		t.Fatalf("LoadLogVerifier: %v", err)
	}
	if _, err := LoadLogVerifier(path, ""); err == nil {
		t.Fatal("LoadLogVerifier without origin must fail")
	}
	ecPriv, _ := keys.Generate(keys.AlgECDSAP256)
	ecPEM, _ := keys.MarshalPublicPEM(ecPriv.Public())
	if _, err := ParseLogKey(ecPEM); err == nil {
		t.Fatal("ECDSA log key accepted")
	}
	if _, err := ParseLogKey([]byte("not pem")); err == nil {
		t.Fatal("garbage accepted")
	}
	if _, err := LoadLogKey(filepath.Join(dir, "missing")); err == nil {
		t.Fatal("missing file accepted")
	}
	// The origin can come from a checkpoint.
	v, err = VerifierForCheckpoint(pub, "", []byte("b.example/log\n1\nAAAA\n\n— sig\n"))
	if err != nil || v.Name() != "b.example/log" {
		t.Fatalf("VerifierForCheckpoint: %v", err)
	}
}
