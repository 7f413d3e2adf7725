package policyindex_test

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sigstore/sigstore/pkg/signature"

	"github.com/provledger/provledger/crypto/checkpoint"
	"github.com/provledger/provledger/crypto/envelope"
	"github.com/provledger/provledger/crypto/keys"
	"github.com/provledger/provledger/crypto/policy"
	"github.com/provledger/provledger/crypto/record"
	"github.com/provledger/provledger/ledger"
	"github.com/provledger/provledger/query/graph"
	"github.com/provledger/provledger/query/policyindex"
)

const origin = "test.provledger/policyindex"

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// key is a deterministic test key.
type key struct {
	priv   ed25519.PrivateKey
	id     keys.KeyID
	pem    string
	signer signature.Signer
}

func newKey(t testing.TB, name string) key {
	t.Helper()
	s := sha256.Sum256([]byte(name))
	priv := ed25519.NewKeyFromSeed(s[:])
	id, err := keys.IDOf(priv.Public())
	if err != nil {
		t.Fatal(err)
	}
	pem, err := keys.MarshalPublicPEM(priv.Public())
	if err != nil {
		t.Fatal(err)
	}
	sg, err := keys.NewSigner(priv)
	if err != nil {
		t.Fatal(err)
	}
	return key{priv: priv, id: id, pem: string(pem), signer: sg}
}

type testLog struct {
	*ledger.Log
	ix *policyindex.Index
	t  time.Time
}

// open opens (or reopens) the log in dir; with index false, without the
// policy index.
func open(t testing.TB, dir string, logKey key, index bool) *testLog {
	t.Helper()
	s, err := checkpoint.NewSigner(origin, logKey.priv)
	if err != nil {
		t.Fatal(err)
	}
	g := graph.New(graph.Options{Logger: quiet})
	opts := ledger.Options{Origin: origin, Signer: s, Logger: quiet, Indexer: g}
	var ix *policyindex.Index
	if index {
		ix = policyindex.New(policyindex.Options{Bootstrap: []keys.KeyID{logKey.id}, Next: g, Logger: quiet})
		opts.Indexer = ix
	}
	l, err := ledger.Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	if err := g.Attach(l); err != nil {
		t.Fatal(err)
	}
	if ix != nil {
		if err := ix.Attach(l); err != nil {
			t.Fatal(err)
		}
	}
	return &testLog{Log: l, ix: ix, t: time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC)}
}

func (l *testLog) apply(t testing.TB, es ...ledger.Entry) []uint64 {
	t.Helper()
	a, err := l.Apply(ledger.Batch{Time: l.t, Entries: es}, ledger.ApplyOptions{Sync: true})
	if err != nil {
		t.Fatal(err)
	}
	l.t = l.t.Add(time.Second)
	out := make([]uint64, len(a.Results))
	for i, r := range a.Results {
		if r.Err != nil {
			t.Fatal(r.Err)
		}
		out[i] = r.Index
	}
	return out
}

func signed(t testing.TB, ns, typ string, payload []byte, by ...key) ledger.Entry {
	t.Helper()
	var sgs []signature.Signer
	var ids [][32]byte
	for _, k := range by {
		sgs = append(sgs, k.signer)
		ids = append(ids, k.id)
	}
	env, err := envelope.Sign(typ, payload, sgs...)
	if err != nil {
		t.Fatal(err)
	}
	return ledger.Entry{Namespace: ns, PayloadType: typ, Envelope: env.Marshal(), Signers: ids}
}

func policyEntry(t testing.TB, doc string, by ...key) ledger.Entry {
	t.Helper()
	return signed(t, "provledger.policy", policy.PayloadType, []byte(doc), by...)
}

func event(t testing.TB, n int, ns string, by key) ledger.Entry {
	return signed(t, ns, "application/vnd.openlineage.run-event+json", fmt.Appendf(nil, `{"n":%d}`, n), by)
}

func grant(k key, admin bool, ns ...string) string {
	q := func(s string) string { return fmt.Sprintf("%q", s) }
	var nss []string
	for _, n := range ns {
		nss = append(nss, q(n))
	}
	return fmt.Sprintf(`{"publicKey": %s, "admin": %v, "namespaces": [%s]}`, q(k.pem), admin, strings.Join(nss, ","))
}

// TestPolicyAtEveryIndex: the bootstrap entry, an ignored non-admin
// entry and an admin revocation, then the policy at each index, the same
// after a restart and when the index is built from an existing log.
func TestPolicyAtEveryIndex(t *testing.T) {
	logKey, admin, teamA, teamB := newKey(t, "log"), newKey(t, "admin"), newKey(t, "team-a"), newKey(t, "team-b")
	dir := filepath.Join(t.TempDir(), "ledger")
	l := open(t, dir, logKey, true)
	boot := fmt.Sprintf(`{"policyVersion": 1, "replace": true, "keys": [%s, %s, %s]}`, grant(admin, true), grant(teamA, false, "team-a"), grant(teamB, false, "team-b"))
	idx := l.apply(t,
		policyEntry(t, `{"policyVersion": 1}`, teamA), // 0: ignored, no policy and not the log key
		policyEntry(t, boot, logKey),                  // 1: bootstrap
		event(t, 1, "team-a", teamA),                  // 2
		policyEntry(t, `{"policyVersion": 1, "revokedKeys": ["`+teamA.id.String()+`"]}`, teamB), // 3: ignored, not admin
	)
	rev := l.apply(t,
		event(t, 2, "team-b", teamB), // 4
		policyEntry(t, `{"policyVersion": 1, "revokedKeys": ["`+teamA.id.String()+`"]}`, admin), // 5: honoured
		event(t, 3, "team-a", teamA), // 6
	)
	if idx[1] != 1 || rev[1] != 5 {
		t.Fatalf("indexes %v %v", idx, rev)
	}
	l.apply(t, policyEntry(t, `{"policyVersion": 1, "budget": 1}`, admin)) // 7: does not parse

	check := func(t *testing.T, ix *policyindex.Index) {
		t.Helper()
		for _, tc := range []struct {
			at   uint64
			k    key
			ns   string
			want error
		}{
			{0, teamA, "team-b", nil}, // no policy in force yet
			{1, teamA, "team-b", nil}, // the bootstrap entry is judged by the policy before it
			{2, teamA, "team-a", nil},
			{2, teamA, "team-b", policy.ErrNamespace},
			{4, teamA, "team-a", nil}, // entry 3 was not signed by an admin
			{5, teamA, "team-a", nil}, // the revocation is in force after its index
			{6, teamA, "team-a", policy.ErrRevokedKey},
			{6, teamB, "team-b", nil},
			{100, teamA, "team-a", policy.ErrRevokedKey},
		} {
			err := ix.At(tc.at).Allows(tc.k.id, tc.ns, "application/vnd.openlineage.run-event+json")
			if (tc.want == nil) != (err == nil) || (tc.want != nil && !errors.Is(err, tc.want)) {
				t.Errorf("At(%d).Allows(%s) = %v, want %v", tc.at, tc.ns, err, tc.want)
			}
		}
		if got := ix.Current().Index(); got != 5 {
			t.Errorf("Current().Index() = %d, want 5", got)
		}
		// IsAdmin (ledger.AdminKeys: who may sign a redaction) follows the
		// policy of the index too.
		for _, tc := range []struct {
			k    key
			at   uint64
			want bool
		}{{admin, 1, false}, {admin, 2, true}, {admin, 100, true}, {teamA, 2, false}, {logKey, 2, false}} {
			if got := ix.IsAdmin(tc.k.id, tc.at); got != tc.want {
				t.Errorf("IsAdmin(%d) = %v, want %v", tc.at, got, tc.want)
			}
		}
		es := ix.Entries(0, 100)
		var got []string
		for _, e := range es {
			got = append(got, fmt.Sprintf("%d:%v", e.Index, e.Honoured))
		}
		if strings.Join(got, " ") != "0:false 1:true 3:false 5:true 7:false" {
			t.Errorf("entries %v", got)
		}
		for _, e := range es {
			switch e.Index {
			case 0:
				if !strings.Contains(e.Reason, "log key") {
					t.Errorf("entry 0 reason %q", e.Reason)
				}
			case 3:
				if !strings.Contains(e.Reason, "admin") {
					t.Errorf("entry 3 reason %q", e.Reason)
				}
			case 7:
				if !strings.Contains(e.Reason, "unknown field") {
					t.Errorf("entry 7 reason %q", e.Reason)
				}
			}
		}
	}
	t.Run("live", func(t *testing.T) { check(t, l.ix) })
	l.Close()
	t.Run("restart", func(t *testing.T) {
		l := open(t, dir, logKey, true)
		check(t, l.ix)
		l.Close()
	})
	t.Run("built from an existing log", func(t *testing.T) {
		dir2 := filepath.Join(t.TempDir(), "ledger")
		l := open(t, dir2, logKey, false)
		l.apply(t, policyEntry(t, `{"policyVersion": 1}`, teamA), policyEntry(t, boot, logKey), event(t, 1, "team-a", teamA),
			policyEntry(t, `{"policyVersion": 1, "revokedKeys": ["`+teamA.id.String()+`"]}`, teamB))
		l.apply(t, event(t, 2, "team-b", teamB), policyEntry(t, `{"policyVersion": 1, "revokedKeys": ["`+teamA.id.String()+`"]}`, admin), event(t, 3, "team-a", teamA))
		l.apply(t, policyEntry(t, `{"policyVersion": 1, "budget": 1}`, admin))
		l.Close()
		l = open(t, dir2, logKey, true)
		check(t, l.ix)
	})
}

// TestChanged: the channel closes when a policy entry is indexed.
func TestChanged(t *testing.T) {
	logKey := newKey(t, "log")
	l := open(t, filepath.Join(t.TempDir(), "ledger"), logKey, true)
	ch := l.ix.Changed()
	l.apply(t, event(t, 1, "x", logKey))
	select {
	case <-ch:
		t.Fatal("closed without a policy entry")
	default:
	}
	l.apply(t, policyEntry(t, `{"policyVersion": 1}`, logKey))
	select {
	case <-ch:
	default:
		t.Fatal("not closed after a policy entry")
	}
	if !l.ix.Current().InForce() {
		t.Fatal("no policy in force")
	}
}

// TestBatchThatDidNotCommit: a batch indexed but never committed (the
// ledger rolled it back) leaves no trace once the same indexes are
// indexed again, and Current never shows it.
func TestBatchThatDidNotCommit(t *testing.T) {
	logKey, admin := newKey(t, "log"), newKey(t, "admin")
	l := open(t, filepath.Join(t.TempDir(), "ledger"), logKey, true)
	boot := policyEntry(t, fmt.Sprintf(`{"policyVersion": 1, "keys": [%s]}`, grant(admin, true)), logKey)
	ghost := ledger.IndexedEntry{Index: 0, Record: record.Record{Namespace: boot.Namespace, PayloadType: boot.PayloadType, Signers: boot.Signers}, Envelope: boot.Envelope}
	b := l.DB().NewBatch()
	if err := l.ix.IndexBatch(b, []ledger.IndexedEntry{ghost}); err != nil {
		t.Fatal(err)
	}
	b.Close() // never committed
	if l.ix.Current().InForce() {
		t.Fatal("Current shows a policy the log does not hold")
	}
	if !l.ix.At(1).InForce() {
		t.Fatal("the uncommitted batch was not indexed at all (the test proves nothing)")
	}
	// The log's real entry 0 is not a policy entry.
	l.apply(t, event(t, 1, "x", admin))
	if l.ix.At(100).InForce() || len(l.ix.Entries(0, 100)) != 0 {
		t.Fatalf("the uncommitted policy entry survived: %+v", l.ix.Entries(0, 100))
	}
}

// TestSnapshotRestore: a log whose store is replaced by a snapshot (as a
// Raft follower installs one) serves the policy of the snapshot, and
// indexes on from there.
func TestSnapshotRestore(t *testing.T) {
	logKey, admin, team := newKey(t, "log"), newKey(t, "admin"), newKey(t, "team")
	a := open(t, filepath.Join(t.TempDir(), "a"), logKey, true)
	a.apply(t,
		policyEntry(t, fmt.Sprintf(`{"policyVersion": 1, "keys": [%s, %s]}`, grant(admin, true), grant(team, false, "team")), logKey),
		event(t, 1, "team", team))
	a.apply(t, policyEntry(t, `{"policyVersion": 1, "revokedKeys": ["`+team.id.String()+`"]}`, admin))
	var snap bytes.Buffer
	if _, err := a.WriteSnapshot(&snap); err != nil {
		t.Fatal(err)
	}
	b := open(t, filepath.Join(t.TempDir(), "b"), logKey, true)
	if b.ix.Current().InForce() {
		t.Fatal("empty log has a policy")
	}
	if _, err := b.Restore(&snap, ledger.RestoreOptions{ScratchDir: t.TempDir()}); err != nil {
		t.Fatal(err)
	}
	if err := b.ix.Current().Allows(team.id, "team", "x"); !errors.Is(err, policy.ErrRevokedKey) {
		t.Fatalf("after the restore: %v, want the revocation", err)
	}
	b.apply(t, policyEntry(t, fmt.Sprintf(`{"policyVersion": 1, "keys": [%s]}`, grant(team, false, "team")), admin))
	if err := b.ix.Current().Allows(team.id, "team", "x"); err != nil {
		t.Fatalf("after granting again: %v", err)
	}
	if got := len(b.ix.Entries(0, 100)); got != 3 {
		t.Fatalf("%d policy entries, want 3", got)
	}
}
