package main

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/sha256"
	"encoding/binary"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sigstore/sigstore/pkg/signature"

	"github.com/provledger/provledger/crypto/envelope"
	"github.com/provledger/provledger/crypto/keys"
	"github.com/provledger/provledger/crypto/record"
)

// FuzzSplitEnvelopeBundle: the envelope bundle decoder never panics, and
// what it accepts re-encodes to the same bytes with exactly n items.
func FuzzSplitEnvelopeBundle(f *testing.F) {
	f.Add([]byte{0, 0, 0, 1, 'x'}, 1)
	f.Fuzz(func(t *testing.T, b []byte, n int) {
		if n < 0 || n > 256 {
			return
		}
		envs, err := splitEnvelopeBundle(b, n)
		if err != nil {
			return
		}
		if len(envs) != n {
			t.Fatalf("%d envelopes, want %d", len(envs), n)
		}
		var re []byte
		for _, e := range envs {
			re = binary.BigEndian.AppendUint32(re, uint32(len(e)))
			re = append(re, e...)
		}
		if !bytes.Equal(re, b) {
			t.Fatal("accepted bundle does not re-encode to the same bytes")
		}
	})
}

func TestSplitEnvelopeBundle(t *testing.T) {
	item := func(s string) []byte { return append(binary.BigEndian.AppendUint32(nil, uint32(len(s))), s...) }
	cat := func(bs ...[]byte) []byte { return bytes.Join(bs, nil) }
	for _, tc := range []struct {
		name string
		b    []byte
		n    int
		want []string // "" = redacted
		err  string
	}{
		{"two", cat(item("{a}"), item("{bc}")), 2, []string{"{a}", "{bc}"}, ""},
		{"redacted", cat(item("{a}"), item("")), 2, []string{"{a}", ""}, ""},
		{"empty bundle of 0", nil, 0, nil, ""},
		{"too few", item("{a}"), 2, nil, "holds 1 envelopes, want 2"},
		{"too many", cat(item("{a}"), item("{b}")), 1, nil, "after the 1 envelopes"},
		{"cut short", item("{a}")[:5], 1, nil, "cut short"},
		{"short prefix", []byte{0, 0}, 1, nil, "truncated length prefix"},
		{"huge length", []byte{0xff, 0xff, 0xff, 0xff, '{'}, 1, nil, "cut short"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			envs, err := splitEnvelopeBundle(tc.b, tc.n)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil || len(envs) != len(tc.want) {
				t.Fatalf("%q, %v", envs, err)
			}
			for i, w := range tc.want {
				if (w == "") != (envs[i] == nil) || string(envs[i]) != w {
					t.Fatalf("envelope %d = %q, want %q", i, envs[i], w)
				}
			}
		})
	}
}

// TestSigCacheMatchesCheckSignatures: the audit's cached verifier gives
// the verdicts and counts of checkSignatures (the one prov get/verify use)
// on good, bad, unknown, malformed and missing signatures, for Ed25519
// and ECDSA keys.
func TestSigCacheMatchesCheckSignatures(t *testing.T) {
	seed := func(s string) []byte { h := sha256.Sum256([]byte(s)); return h[:] }
	ed1 := ed25519.NewKeyFromSeed(seed("one"))
	ed2 := ed25519.NewKeyFromSeed(seed("two"))
	ec, err := ecdsa.GenerateKey(elliptic.P256(), bytes.NewReader(bytes.Repeat(seed("ec"), 8)))
	if err != nil {
		t.Fatal(err)
	}
	signer := func(k crypto.Signer) signature.Signer {
		s, err := keys.NewSigner(k)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	kr, err := keys.NewKeyring(ed1.Public(), ec.Public())
	if err != nil {
		t.Fatal(err)
	}
	id := func(k any) [32]byte { i, _ := keys.IDOf(k); return i }
	sign := func(signers ...crypto.Signer) *envelope.Envelope {
		var ss []signature.Signer
		for _, s := range signers {
			ss = append(ss, signer(s))
		}
		e, err := envelope.Sign("application/vnd.provledger.cost+json", []byte(`{"BilledCost":1}`), ss...)
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	flip := func(e *envelope.Envelope, i int) *envelope.Envelope { e.Signatures[i].Sig[3] ^= 1; return e }
	for _, tc := range []struct {
		name         string
		env          *envelope.Envelope
		signers      [][32]byte
		verified     int
		unverifiable int
		fails        bool
	}{
		{"ed25519", sign(ed1), [][32]byte{id(ed1.Public())}, 1, 0, false},
		{"ecdsa", sign(ec), [][32]byte{id(ec.Public())}, 1, 0, false},
		{"two trusted", sign(ed1, ec), nil, 2, 0, false},
		{"unknown key", sign(ed2), [][32]byte{id(ed2.Public())}, 0, 1, false},
		{"trusted and unknown", sign(ed2, ed1), nil, 1, 1, false},
		{"bad ed25519 signature", flip(sign(ed1), 0), nil, 0, 0, true},
		{"bad ecdsa signature", flip(sign(ed1, ec), 1), nil, 0, 0, true},
		{"bad signature by an unknown key", flip(sign(ed2), 0), nil, 0, 1, false},
		{"malformed key id", func() *envelope.Envelope { e := sign(ed1); e.Signatures[0].KeyID = "ABC"; return e }(), nil, 0, 0, true},
		{"uppercase key id", func() *envelope.Envelope {
			e := sign(ed1)
			e.Signatures[0].KeyID = strings.ToUpper(e.Signatures[0].KeyID)
			return e
		}(), nil, 0, 0, true},
		{"record signer did not sign", sign(ed1), [][32]byte{id(ed1.Public()), id(ed2.Public())}, 1, 0, true},
		{"no signatures", &envelope.Envelope{PayloadType: "x"}, nil, 0, 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := record.Record{Signers: tc.signers}
			rep, wantErr := checkSignatures(tc.env, rec, kr)
			var c sigCache
			var buf []byte
			for range 2 { // the second call uses the cached ring
				n, err := c.check(tc.env, rec, kr, &buf)
				if (err != nil) != tc.fails || (wantErr != nil) != tc.fails {
					t.Fatalf("sigCache: %v; checkSignatures: %v; want failure %v", err, wantErr, tc.fails)
				}
				if err != nil {
					if err.Error() != wantErr.Error() {
						t.Fatalf("sigCache says %q, checkSignatures %q", err, wantErr)
					}
					continue
				}
				if n.verified != tc.verified || n.unverifiable != tc.unverifiable || len(rep.Verified) != n.verified || len(rep.Unverifiable) != n.unverifiable {
					t.Fatalf("counts %+v, checkSignatures %+v; want %d verified, %d unverifiable", n, rep, tc.verified, tc.unverifiable)
				}
			}
		})
	}
	// A key added to the keyring after the cache indexed it is honoured.
	var c sigCache
	var buf []byte
	if n, err := c.check(sign(ed2), record.Record{}, kr, &buf); err != nil || n.unverifiable != 1 {
		t.Fatalf("before Add: %+v %v", n, err)
	}
	if _, err := kr.Add(ed2.Public()); err != nil {
		t.Fatal(err)
	}
	if n, err := c.check(sign(ed2), record.Record{}, kr, &buf); err != nil || n.verified != 1 {
		t.Fatalf("after Add: %+v %v", n, err)
	}
	if n, err := c.check(flip(sign(ed2), 0), record.Record{}, kr, &buf); err == nil {
		t.Fatalf("bad signature by a key added later: %+v", n)
	}
}

// TestAuditEnvelopeSources: the three envelope sources give the same
// verified audit; a server that tampers with its envelope bundles is
// caught and the entry named.
func TestAuditEnvelopeSources(t *testing.T) {
	f := newLogFixture(t, t.TempDir())
	f.append(t, 600, 128, "")
	addr := serveGRPC(t, f)
	for _, src := range []string{"bundle", "http", "grpc"} {
		t.Run(src, func(t *testing.T) {
			state := filepath.Join(t.TempDir(), "state")
			code, rep := auditJSON(t, f.logPub, f.url, state, "--full", "--trust", f.trust, "--envelopes", src, "--server", addr)
			if code != 0 || rep.Stats.SigsVerified != 600 || rep.Stats.Entries != 600 {
				t.Fatalf("audit --envelopes %s: exit %d %+v", src, code, rep)
			}
		})
	}
	// A server whose envelope bundles lie.
	for _, tc := range []struct {
		name     string
		mangle   func(path string, b []byte) []byte
		wantKind string
		index    int64
	}{
		{"one envelope byte flipped", func(p string, b []byte) []byte {
			if p == "/envelopes/001" {
				b[4+10] ^= 1 // inside entry 256's envelope
			}
			return b
		}, kindEnvelope, 256},
		{"truncated", func(p string, b []byte) []byte {
			if p == "/envelopes/002.p/88" {
				return b[:len(b)-3]
			}
			return b
		}, kindShortBundle, 512},
		{"another entry's envelope", func(p string, b []byte) []byte {
			if p == "/envelopes/000" { // entries 0 and 1 swapped
				l0 := binary.BigEndian.Uint32(b)
				e0 := b[:4+l0]
				rest := b[4+l0:]
				l1 := binary.BigEndian.Uint32(rest)
				return bytes.Join([][]byte{rest[:4+l1], e0, rest[4+l1:]}, nil)
			}
			return b
		}, kindEnvelope, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sw, url := newSwitch(t, f)
			sw.set(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				rec := httptest.NewRecorder()
				f.srv.Config.Handler.ServeHTTP(rec, r)
				b, _ := io.ReadAll(rec.Body)
				if strings.HasPrefix(r.URL.Path, "/envelopes/") && rec.Code == 200 {
					b = tc.mangle(r.URL.Path, b)
				}
				w.WriteHeader(rec.Code)
				w.Write(b)
			}))
			state := filepath.Join(t.TempDir(), "state")
			code, rep := auditJSON(t, f.logPub, url, state, "--full", "--trust", f.trust)
			if code != exitFailed || rep.FirstBadIndex == nil || *rep.FirstBadIndex != tc.index || rep.Problems[0].Kind != tc.wantKind {
				t.Fatalf("exit %d, problems %+v (first bad %v); want %s at %d", code, rep.Problems, rep.FirstBadIndex, tc.wantKind, tc.index)
			}
		})
	}
}
