package redaction_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/provledger/provledger/ledger/redaction"
)

// TestDecodeFixtures decodes every payload in testdata/payloads: ok_*
// must decode and re-encode to a payload that decodes the same; bad_*
// must fail with ErrMalformed and the message below.
func TestDecodeFixtures(t *testing.T) {
	wantMsg := map[string]string{
		"bad_no_targets.json":    "targets is empty",
		"bad_no_reason.json":     "reason is required",
		"bad_no_index.json":      "targets[0].index is missing",
		"bad_digest_prefix.json": "targets[0].envelopeDigest",
		"bad_digest_upper.json":  "64 lowercase hex digits",
		"bad_duplicate.json":     "targets[1] names entry 1 again",
		"bad_unknown_field.json": "unknown field",
		"bad_trailing.json":      "data after the JSON object",
		"bad_negative.json":      "cannot unmarshal",
		"bad_control.json":       "control character",
		"bad_null.json":          "targets is empty",
	}
	files, err := filepath.Glob("testdata/payloads/*.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no fixtures: %v", err)
	}
	for _, f := range files {
		name := filepath.Base(f)
		t.Run(name, func(t *testing.T) {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			p, err := redaction.Decode(b)
			if strings.HasPrefix(name, "ok_") {
				if err != nil {
					t.Fatalf("Decode: %v", err)
				}
				enc, err := redaction.Encode(p)
				if err != nil {
					t.Fatalf("Encode: %v", err)
				}
				q, err := redaction.Decode(enc)
				if err != nil || q.Reason != p.Reason || q.Ticket != p.Ticket || len(q.Targets) != len(p.Targets) {
					t.Fatalf("round trip: %+v, %v", q, err)
				}
				for i := range p.Targets {
					if q.Targets[i] != p.Targets[i] {
						t.Fatalf("target %d: %+v != %+v", i, q.Targets[i], p.Targets[i])
					}
				}
				return
			}
			want, ok := wantMsg[name]
			if !ok {
				t.Fatalf("no expected message for fixture %s", name)
			}
			if !errors.Is(err, redaction.ErrMalformed) || !strings.Contains(err.Error(), want) {
				t.Fatalf("Decode = %v, want ErrMalformed containing %q", err, want)
			}
		})
	}
}

func TestDecodeOneTarget(t *testing.T) {
	b, err := os.ReadFile("testdata/payloads/ok_one.json")
	if err != nil {
		t.Fatal(err)
	}
	p, err := redaction.Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Targets) != 1 || p.Targets[0].Index != 7 || p.Reason != "GDPR erasure request" || p.Ticket != "DPO-2026-118" {
		t.Fatalf("%+v", p)
	}
	if got := redaction.FormatDigest(p.Targets[0].EnvelopeDigest); got != "sha256:5a79ece589e2084bcc5088cc7dd176a125c42cac9f5c77afcf3f04d18c2b71bf" {
		t.Fatalf("digest %s", got)
	}
}

func TestLimits(t *testing.T) {
	d := [32]byte{1}
	many := make([]redaction.Target, redaction.MaxTargets+1)
	for i := range many {
		many[i] = redaction.Target{Index: uint64(i), EnvelopeDigest: d}
	}
	for _, tc := range []struct {
		name string
		p    redaction.Payload
		msg  string
	}{
		{"too many targets", redaction.Payload{Targets: many, Reason: "r"}, "the limit is 64"},
		{"long reason", redaction.Payload{Targets: many[:1], Reason: strings.Repeat("r", redaction.MaxReason+1)}, "reason is 1025 bytes"},
		{"long ticket", redaction.Payload{Targets: many[:1], Reason: "r", Ticket: strings.Repeat("t", redaction.MaxTicket+1)}, "ticket is 257 bytes"},
		{"bad utf-8", redaction.Payload{Targets: many[:1], Reason: "\xff"}, "not valid UTF-8"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := redaction.Encode(tc.p); !errors.Is(err, redaction.ErrMalformed) || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("Encode = %v, want %q", err, tc.msg)
			}
		})
	}
	big := bytes.Repeat([]byte(" "), redaction.MaxPayload+1)
	if _, err := redaction.Decode(big); !errors.Is(err, redaction.ErrMalformed) {
		t.Fatalf("oversize: %v", err)
	}
}

// FuzzDecode: Decode never panics, and whatever it accepts re-encodes to
// a payload that decodes to the same thing.
func FuzzDecode(f *testing.F) {
	files, _ := filepath.Glob("testdata/payloads/*.json")
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := redaction.Decode(b)
		if err != nil {
			if !errors.Is(err, redaction.ErrMalformed) {
				t.Fatalf("error does not wrap ErrMalformed: %v", err)
			}
			return
		}
		enc, err := redaction.Encode(p)
		if err != nil {
			t.Fatalf("accepted payload does not encode: %v", err)
		}
		q, err := redaction.Decode(enc)
		if err != nil {
			t.Fatalf("re-encoded payload does not decode: %v", err)
		}
		if q.Reason != p.Reason || q.Ticket != p.Ticket || len(q.Targets) != len(p.Targets) {
			t.Fatalf("round trip changed the payload: %+v → %+v", p, q)
		}
		for i := range p.Targets {
			if p.Targets[i] != q.Targets[i] {
				t.Fatalf("round trip changed target %d", i)
			}
		}
	})
}
