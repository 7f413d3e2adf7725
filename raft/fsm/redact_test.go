package fsm_test

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/provledger/provledger/crypto/checkpoint"
	"github.com/provledger/provledger/crypto/envelope"
	"github.com/provledger/provledger/ledger"
	"github.com/provledger/provledger/ledger/redaction"
	"github.com/provledger/provledger/raft/fsm"
)

var adminID = sha256.Sum256([]byte("raft admin"))

func redactionEntry(t *testing.T, signer [32]byte, targets ...int) ledger.Entry {
	t.Helper()
	p := redaction.Payload{Reason: "erasure"}
	for _, i := range targets {
		e := entry(i)
		p.Targets = append(p.Targets, redaction.Target{Index: uint64(i), EnvelopeDigest: e.Digest()})
	}
	b, err := redaction.Encode(p)
	if err != nil {
		t.Fatal(err)
	}
	env := envelope.Envelope{PayloadType: redaction.PayloadType, Payload: b, Signatures: []envelope.Signature{{KeyID: fmt.Sprintf("%x", signer), Sig: []byte("s")}}}
	return ledger.Entry{Namespace: "admin", PayloadType: redaction.PayloadType, Envelope: env.Marshal(), Signers: [][32]byte{signer}}
}

func openLogWith(t *testing.T, dir string, mod func(*ledger.Options)) *ledger.Log {
	t.Helper()
	s, err := checkpoint.NewSigner(origin, logKey)
	if err != nil {
		t.Fatal(err)
	}
	o := ledger.Options{Origin: origin, Signer: s, Logger: quiet}
	mod(&o)
	l, err := ledger.Open(dir, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

func entriesLog(t *testing.T, index uint64, es ...ledger.Entry) *raft.Log {
	t.Helper()
	data, err := fsm.EncodeBatch(ledger.Batch{Time: time.UnixMilli(1_700_000_000_000 + int64(index)), Entries: es})
	if err != nil {
		t.Fatal(err)
	}
	return &raft.Log{Index: index, Term: 1, Type: raft.LogCommand, Data: data}
}

// Redactions go through the Raft state machine like any batch: every
// replica applies them the same way, a non-admin one is refused on every
// replica, and replaying the Raft log changes nothing.
func TestRedactionReplicates(t *testing.T) {
	logs := func(t *testing.T) []*raft.Log {
		return []*raft.Log{
			batchLog(t, 1, 0, 4),
			entriesLog(t, 2, redactionEntry(t, adminID, 1)),
			entriesLog(t, 3, redactionEntry(t, sha256.Sum256([]byte("k")), 2)),
		}
	}
	var replicas []*ledger.Log
	for range 2 {
		l := openLogWith(t, t.TempDir(), func(o *ledger.Options) { o.AdminKeys = ledger.NewAdminKeySet(adminID) })
		f := newFSM(t, l, fsm.Options{})
		for i, lg := range logs(t) {
			a := mustApplied(t, f.Apply(lg))
			if i == 2 {
				if err := a.Results[0].Err; !errors.Is(err, ledger.ErrNotAdmin) {
					t.Fatalf("non-admin redaction: %v", err)
				}
			} else if err := a.Results[0].Err; err != nil {
				t.Fatalf("raft log %d: %v", lg.Index, err)
			}
		}
		// A replay after a crash is skipped.
		if a := mustApplied(t, f.Apply(logs(t)[1])); !a.Skipped {
			t.Fatal("a replayed redaction was applied again")
		}
		replicas = append(replicas, l)
	}
	for i, l := range replicas {
		if l.Latest().Size != 5 {
			t.Fatalf("replica %d: size %d, want 5", i, l.Latest().Size)
		}
		_, err := l.Envelope(entry(1).Digest())
		if !errors.Is(err, ledger.ErrRedacted) || !strings.Contains(err.Error(), "by entry 4") {
			t.Fatalf("replica %d: entry 1: %v", i, err)
		}
		if _, err := l.Envelope(entry(2).Digest()); err != nil {
			t.Fatalf("replica %d: entry 2 (non-admin redaction refused): %v", i, err)
		}
	}
	if !bytes.Equal(replicas[0].Latest().Note, replicas[1].Latest().Note) {
		t.Fatal("the replicas signed different checkpoints")
	}
}
