package ledger_test

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/cockroachdb/pebble/v2"

	"github.com/provledger/provledger/crypto/envelope"
	"github.com/provledger/provledger/crypto/proof"
	"github.com/provledger/provledger/crypto/record"
	"github.com/provledger/provledger/ledger"
	"github.com/provledger/provledger/ledger/redaction"
)

var (
	adminID = sha256.Sum256([]byte("admin key"))
	userID  = sha256.Sum256([]byte("k"))
)

func withAdmin(o *ledger.Options) { o.AdminKeys = ledger.NewAdminKeySet(adminID) }

// redactEntry builds a redaction entry naming the given entries (index and
// the digest of entry(i)'s envelope unless digests overrides it).
func redactEntry(t testing.TB, signer [32]byte, reason string, targets ...redaction.Target) ledger.Entry {
	t.Helper()
	p, err := redaction.Encode(redaction.Payload{Targets: targets, Reason: reason})
	if err != nil {
		t.Fatal(err)
	}
	env := envelope.Envelope{PayloadType: redaction.PayloadType, Payload: p, Signatures: []envelope.Signature{{KeyID: fmt.Sprintf("%x", signer), Sig: []byte("sig")}}}
	return ledger.Entry{Namespace: "admin", PayloadType: redaction.PayloadType, Envelope: env.Marshal(), Signers: [][32]byte{signer}}
}

func target(i int) redaction.Target {
	e := entry(i)
	return redaction.Target{Index: uint64(i), EnvelopeDigest: e.Digest()}
}

func TestRedactionDeletesEnvelopeKeepsRecordAndProofs(t *testing.T) {
	dir := t.TempDir()
	l := openLog(t, dir, withAdmin)
	apply(t, l, entries(0, 5))
	before := leafHashes(t, l)
	a := apply(t, l, []ledger.Entry{redactEntry(t, adminID, "GDPR erasure request 42", target(2))})
	if err := a.Results[0].Err; err != nil {
		t.Fatalf("redaction refused: %v", err)
	}
	if a.Results[0].Index != 5 {
		t.Fatalf("redaction at %d, want 5", a.Results[0].Index)
	}
	check := func(l *ledger.Log) {
		t.Helper()
		d := entry(2).Digest()
		_, err := l.Envelope(d)
		if !errors.Is(err, ledger.ErrRedacted) || !strings.Contains(err.Error(), "by entry 5 (reason: GDPR erasure request 42)") {
			t.Fatalf("Envelope of the redacted entry: %v", err)
		}
		rd, err := l.RedactionOf(2)
		if err != nil || rd.By != 5 || rd.Reason != "GDPR erasure request 42" {
			t.Fatalf("RedactionOf(2) = %+v, %v", rd, err)
		}
		if _, err := l.RedactionOf(1); !errors.Is(err, ledger.ErrNotFound) {
			t.Fatalf("RedactionOf(1) = %v, want ErrNotFound", err)
		}
		if idx, err := l.IndexOfEnvelope(d); err != nil || idx != 2 {
			t.Fatalf("IndexOfEnvelope = %d, %v", idx, err)
		}
		for _, i := range []int{0, 1, 3, 4} {
			if env, err := l.Envelope(entry(i).Digest()); err != nil || string(env) != string(entry(i).Envelope) {
				t.Fatalf("entry %d's envelope: %q, %v", i, env, err)
			}
		}
		// Every leaf is unchanged and every proof verifies.
		after := leafHashes(t, l)
		for i := range before {
			if before[i] != after[i] {
				t.Fatalf("leaf %d changed", i)
			}
		}
		cp := l.Latest()
		for i := uint64(0); i < cp.Size; i++ {
			rec, err := l.Record(i)
			if err != nil {
				t.Fatal(err)
			}
			p, err := l.InclusionProof(i, cp.Size)
			if err != nil {
				t.Fatal(err)
			}
			if err := proof.VerifyInclusion(i, cp.Size, proof.LeafHash(rec), p, cp.Hash); err != nil {
				t.Fatalf("inclusion of %d: %v", i, err)
			}
		}
	}
	check(l)
	// Appending the erased envelope again resolves to the redacted entry:
	// the payload is not stored again.
	dup := apply(t, l, []ledger.Entry{entry(2)})
	if !dup.Results[0].Duplicate || dup.Results[0].Index != 2 {
		t.Fatalf("re-append of the redacted envelope: %+v", dup.Results[0])
	}
	if _, err := l.Envelope(entry(2).Digest()); !errors.Is(err, ledger.ErrRedacted) {
		t.Fatalf("after re-append: %v", err)
	}
	l.Close()
	check(openLog(t, dir, withAdmin))
}

func TestRedactionRefusals(t *testing.T) {
	redactionOf3 := redactEntry(t, adminID, "first", target(3))
	policyEntry := entry(20)
	policyEntry.PayloadType = "application/vnd.provledger.policy+json"
	for _, tc := range []struct {
		name  string
		noAdm bool
		prior []ledger.Entry // applied (and must succeed) before
		batch func(t *testing.T) []ledger.Entry
		// want is the sentinel and a piece of the message for the
		// last entry of batch.
		want error
		msg  string
		// redacted is the entry of 0..4 that ends up redacted (-1: none).
		redacted int
	}{
		{name: "not an admin key", batch: func(t *testing.T) []ledger.Entry {
			return []ledger.Entry{redactEntry(t, userID, "r", target(1))}
		}, want: ledger.ErrNotAdmin, msg: "none of which is an admin key", redacted: -1},
		{name: "log without admin keys", noAdm: true, batch: func(t *testing.T) []ledger.Entry {
			return []ledger.Entry{redactEntry(t, adminID, "r", target(1))}
		}, want: ledger.ErrNotAdmin, msg: "--admin-keys", redacted: -1},
		{name: "unknown index", batch: func(t *testing.T) []ledger.Entry {
			return []ledger.Entry{redactEntry(t, adminID, "r", redaction.Target{Index: 99, EnvelopeDigest: entry(1).Digest()})}
		}, want: ledger.ErrOutOfRange, msg: "redaction target 99 is not in the log", redacted: -1},
		{name: "digest of another entry", batch: func(t *testing.T) []ledger.Entry {
			return []ledger.Entry{redactEntry(t, adminID, "r", redaction.Target{Index: 1, EnvelopeDigest: entry(2).Digest()})}
		}, want: ledger.ErrInvalidEntry, msg: "entry 1's envelope is sha256:", redacted: -1},
		{name: "twice", prior: []ledger.Entry{redactionOf3}, batch: func(t *testing.T) []ledger.Entry {
			return []ledger.Entry{redactEntry(t, adminID, "again", target(3))}
		}, want: ledger.ErrInvalidEntry, msg: "entry 3 is already redacted by entry 5", redacted: 3},
		{name: "twice, same envelope", prior: []ledger.Entry{redactionOf3}, batch: func(t *testing.T) []ledger.Entry {
			return []ledger.Entry{redactionOf3}
		}, want: ledger.ErrInvalidEntry, msg: "entry 3 is already redacted by entry 5", redacted: 3},
		{name: "twice in one batch", batch: func(t *testing.T) []ledger.Entry {
			return []ledger.Entry{redactEntry(t, adminID, "a", target(1)), redactEntry(t, adminID, "b", target(1))}
		}, want: ledger.ErrInvalidEntry, msg: "entry 1 is already redacted by entry 5", redacted: 1},
		{name: "a redaction", prior: []ledger.Entry{redactionOf3}, batch: func(t *testing.T) []ledger.Entry {
			e := redactEntry(t, adminID, "x", redaction.Target{Index: 5, EnvelopeDigest: redactionOf3.Digest()})
			return []ledger.Entry{e}
		}, want: ledger.ErrInvalidEntry, msg: "entry 5 is itself a redaction", redacted: 3},
		{name: "a policy entry", prior: []ledger.Entry{policyEntry}, batch: func(t *testing.T) []ledger.Entry {
			return []ledger.Entry{redactEntry(t, adminID, "x", redaction.Target{Index: 5, EnvelopeDigest: policyEntry.Digest()})}
		}, want: ledger.ErrInvalidEntry, msg: "entry 5 is a policy entry", redacted: -1},
		{name: "target in the same batch", batch: func(t *testing.T) []ledger.Entry {
			return []ledger.Entry{entry(7), redactEntry(t, adminID, "x", redaction.Target{Index: 5, EnvelopeDigest: entry(7).Digest()})}
		}, want: ledger.ErrInvalidEntry, msg: "appended in the same batch", redacted: -1},
		{name: "malformed payload", batch: func(t *testing.T) []ledger.Entry {
			env := envelope.Envelope{PayloadType: redaction.PayloadType, Payload: []byte(`{"targets":[],"reason":"x"}`), Signatures: []envelope.Signature{{KeyID: "k", Sig: []byte("s")}}}
			return []ledger.Entry{{Namespace: "admin", PayloadType: redaction.PayloadType, Envelope: env.Marshal(), Signers: [][32]byte{adminID}}}
		}, want: ledger.ErrInvalidEntry, msg: "targets is empty", redacted: -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var mods []func(*ledger.Options)
			if !tc.noAdm {
				mods = append(mods, withAdmin)
			}
			l := openLog(t, t.TempDir(), mods...)
			apply(t, l, entries(0, 5))
			for _, e := range tc.prior {
				if a := apply(t, l, []ledger.Entry{e}); a.Results[0].Err != nil {
					t.Fatalf("prior: %v", a.Results[0].Err)
				}
			}
			size := l.Latest().Size
			batch := tc.batch(t)
			a := apply(t, l, batch)
			err := a.Results[len(batch)-1].Err
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("got %v, want %v containing %q", err, tc.want, tc.msg)
			}
			if len(batch) == 1 && l.Latest().Size != size {
				t.Fatalf("a refused redaction grew the log from %d to %d", size, l.Latest().Size)
			}
			for i := 0; i < 5; i++ {
				_, err := l.Envelope(entry(i).Digest())
				if i == tc.redacted {
					if !errors.Is(err, ledger.ErrRedacted) {
						t.Fatalf("entry 3: %v", err)
					}
					continue
				}
				if err != nil {
					t.Fatalf("entry %d's envelope after a refused redaction: %v", i, err)
				}
			}
		})
	}
}

// recordingRedactor is an Indexer that records what Redact is told.
type recordingRedactor struct {
	targets []ledger.RedactedEntry
	after   []uint64 // entries seen by EntriesAfter, with their envelope
	hidden  []uint64 // entries seen without an envelope
	entry   ledger.IndexedEntry
}

func (r *recordingRedactor) IndexBatch(*pebble.Batch, []ledger.IndexedEntry) error { return nil }

func (r *recordingRedactor) Redact(b *pebble.Batch, rs *ledger.Redactions) error {
	r.targets = append(r.targets, rs.Targets...)
	err := rs.EntriesAfter(0, func(record.Record) bool { return true }, func(e ledger.IndexedEntry) (bool, error) {
		if e.Envelope == nil {
			r.hidden = append(r.hidden, e.Index)
		} else {
			r.after = append(r.after, e.Index)
		}
		return true, nil
	})
	if err != nil {
		return err
	}
	r.entry, err = rs.Entry(1)
	return err
}

// chain is an Indexer that calls another (as the policy index chains the
// lineage index) and exposes it with Unwrap.
type chain struct{ next ledger.Indexer }

func (c chain) IndexBatch(b *pebble.Batch, es []ledger.IndexedEntry) error {
	return c.next.IndexBatch(b, es)
}
func (c chain) Unwrap() ledger.Indexer { return c.next }

func TestRedactorIsToldInTheBatch(t *testing.T) {
	rr := &recordingRedactor{}
	// The Redactor sits behind a wrapping indexer: the log finds it.
	l := openLog(t, t.TempDir(), withAdmin, func(o *ledger.Options) { o.Indexer = chain{rr} })
	apply(t, l, entries(0, 4))
	a := apply(t, l, []ledger.Entry{entry(10), redactEntry(t, adminID, "why", target(1), target(3)), entry(11)})
	for i, r := range a.Results {
		if r.Err != nil {
			t.Fatalf("result %d: %v", i, r.Err)
		}
	}
	if len(rr.targets) != 2 || rr.targets[0].Index != 1 || rr.targets[1].Index != 3 || rr.targets[0].By != 5 || rr.targets[0].Reason != "why" {
		t.Fatalf("targets: %+v", rr.targets)
	}
	if string(rr.targets[0].Envelope) != string(entry(1).Envelope) {
		t.Fatalf("the target's envelope is not handed over: %q", rr.targets[0].Envelope)
	}
	if fmt.Sprint(rr.after) != "[2 4 5 6]" || fmt.Sprint(rr.hidden) != "[1 3]" {
		t.Fatalf("EntriesAfter saw %v with envelopes and %v without", rr.after, rr.hidden)
	}
	if rr.entry.Index != 1 || rr.entry.Envelope != nil {
		t.Fatalf("Entry(1) = %d with envelope %q", rr.entry.Index, rr.entry.Envelope)
	}
}
