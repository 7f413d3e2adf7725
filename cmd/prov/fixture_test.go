package main

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/provledger/provledger/api/httpapi"
	"github.com/provledger/provledger/api/server"
	"github.com/provledger/provledger/api/service"
	"github.com/provledger/provledger/crypto/checkpoint"
	"github.com/provledger/provledger/crypto/envelope"
	"github.com/provledger/provledger/crypto/keys"
	"github.com/provledger/provledger/ledger"
)

const fixtureOrigin = "test.provledger/audit"

// logFixture is a real ledger (the ledger library in a temp dir, as a
// node stores it) served by api/httpapi over loopback HTTP.
type logFixture struct {
	dir     string
	logPriv ed25519.PrivateKey
	signer  ed25519.PrivateKey // the pipeline key that signs envelopes
	log     *ledger.Log
	srv     *httptest.Server
	url     string
	logPub  string // PEM log key path
	trust   string // PEM trust file path (the pipeline key)
	n       uint64 // entries appended so far (envelope counter)
}

var fixtureLogger = slog.New(slog.NewTextHandler(io.Discard, nil))

// newLogFixture opens (or reopens) a log in dir with the fixed test log key.
func newLogFixture(t testing.TB, dir string) *logFixture {
	t.Helper()
	seed := sha256.Sum256([]byte("prov audit test log key"))
	f := &logFixture{dir: dir, logPriv: ed25519.NewKeyFromSeed(seed[:])}
	s2 := sha256.Sum256([]byte("prov audit test signer"))
	f.signer = ed25519.NewKeyFromSeed(s2[:])
	f.open(t)
	pubPEM, _ := keys.MarshalPublicPEM(f.logPriv.Public())
	f.logPub = filepath.Join(dir, "log.pub")
	if err := os.WriteFile(f.logPub, pubPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	spub, _ := keys.MarshalPublicPEM(f.signer.Public())
	f.trust = filepath.Join(dir, "trust.pem")
	if err := os.WriteFile(f.trust, spub, 0o644); err != nil {
		t.Fatal(err)
	}
	f.srv = httptest.NewServer(httpapi.New(f.log, httpapi.Options{Logger: fixtureLogger}))
	f.url = f.srv.URL
	t.Cleanup(func() { f.srv.Close(); f.log.Close() })
	return f
}

func (f *logFixture) open(t testing.TB) {
	t.Helper()
	s, err := checkpoint.NewSigner(fixtureOrigin, f.logPriv)
	if err != nil {
		t.Fatal(err)
	}
	l, err := ledger.Open(filepath.Join(f.dir, "ledger"), ledger.Options{Origin: fixtureOrigin, Signer: s, Logger: fixtureLogger})
	if err != nil {
		t.Fatal(err)
	}
	f.log = l
	f.n = l.Latest().Size
}

// entry builds the signed entry number i; salt makes a different history.
func (f *logFixture) entry(t testing.TB, i uint64, salt string) ledger.Entry {
	ks, err := keys.NewSigner(f.signer)
	if err != nil {
		t.Fatal(err)
	}
	payload := fmt.Appendf(nil, `{"BilledCost": %d, "BillingCurrency": "USD", "x_salt": %q}`, i, salt)
	env, err := envelope.Sign("application/vnd.provledger.cost+json", payload, ks)
	if err != nil {
		t.Fatal(err)
	}
	id, _ := keys.IDOf(f.signer.Public())
	return ledger.Entry{Namespace: "audit", PayloadType: env.PayloadType, Envelope: env.Marshal(), Signers: [][32]byte{id}}
}

// append adds n entries in batches of batch (one checkpoint per batch).
func (f *logFixture) append(t testing.TB, n, batch int, salt string) {
	t.Helper()
	es := make([]ledger.Entry, 0, batch)
	flush := func() {
		if len(es) == 0 {
			return
		}
		if _, err := f.log.Apply(ledger.Batch{Time: time.UnixMilli(1_800_000_000_000), Entries: es}, ledger.ApplyOptions{}); err != nil {
			t.Fatal(err)
		}
		es = es[:0]
	}
	for range n {
		es = append(es, f.entry(t, f.n, salt))
		f.n++
		if len(es) == batch {
			flush()
		}
	}
	flush()
	if err := f.log.Sync(); err != nil {
		t.Fatal(err)
	}
}

func recordKey(i uint64) []byte {
	k := make([]byte, 9)
	k[0] = 'r'
	binary.BigEndian.PutUint64(k[1:], i)
	return k
}

func (f *logFixture) record(t testing.TB, i uint64) []byte {
	v, closer, err := f.log.DB().Get(recordKey(i))
	if err != nil {
		t.Fatal(err)
	}
	defer closer.Close()
	return append([]byte(nil), v...)
}

func (f *logFixture) setRecord(t testing.TB, i uint64, v []byte) {
	if err := f.log.DB().Set(recordKey(i), v, pebble.Sync); err != nil {
		t.Fatal(err)
	}
}

// Tampering with the stored data, as an attacker with disk access would.

// flipByte flips one bit of stored entry record i.
func (f *logFixture) flipByte(t testing.TB, i uint64) {
	r := f.record(t, i)
	r[len(r)-1] ^= 0x01
	f.setRecord(t, i, r)
}

// dropEntry removes stored entry i: every later record moves down one place.
func (f *logFixture) dropEntry(t testing.TB, i uint64) {
	size := f.log.Latest().Size
	for j := i; j+1 < size; j++ {
		f.setRecord(t, j, f.record(t, j+1))
	}
	if err := f.log.DB().Delete(recordKey(size-1), pebble.Sync); err != nil {
		t.Fatal(err)
	}
}

// swapEntries swaps stored entries i and j.
func (f *logFixture) swapEntries(t testing.TB, i, j uint64) {
	a, b := f.record(t, i), f.record(t, j)
	f.setRecord(t, i, b)
	f.setRecord(t, j, a)
}

// logKeyVerifierNote returns the latest checkpoint note.
func (f *logFixture) latestNote() []byte { return f.log.Latest().Note }

// appendIndexes appends the entries with the given numbers (a history in
// which entries are missing, reordered or changed), in one batch.
func (f *logFixture) appendIndexes(t testing.TB, idx []uint64, salt func(i uint64) string) {
	t.Helper()
	es := make([]ledger.Entry, 0, len(idx))
	for _, i := range idx {
		es = append(es, f.entry(t, i, salt(i)))
	}
	if _, err := f.log.Apply(ledger.Batch{Time: time.UnixMilli(1_800_000_000_000), Entries: es}, ledger.ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	f.n += uint64(len(idx))
}

func seq(from, to uint64) []uint64 {
	var out []uint64
	for i := from; i < to; i++ {
		out = append(out, i)
	}
	return out
}

func noSalt(uint64) string { return "" }

// switchHandler serves whichever handler was set last: one URL whose log
// changes under the client (the server that starts lying).
type switchHandler struct{ h atomic.Value }

func (s *switchHandler) set(h http.Handler) { s.h.Store(&h) }

func (s *switchHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	(*s.h.Load().(*http.Handler)).ServeHTTP(w, r)
}

// newSwitch serves f's log at a fresh URL that can be switched to another log.
func newSwitch(t testing.TB, f *logFixture) (*switchHandler, string) {
	sw := &switchHandler{}
	sw.set(f.srv.Config.Handler)
	srv := httptest.NewServer(sw)
	t.Cleanup(srv.Close)
	return sw, srv.URL
}

// serveGRPC serves the fixture's log over gRPC (api/server) and returns
// the address.
func serveGRPC(t testing.TB, f *logFixture) string {
	t.Helper()
	seq, err := ledger.NewLocalSequencer(f.log, ledger.SequencerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	kr, _ := keys.NewKeyring(f.signer.Public())
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv, err := server.New(server.Config{
		Service:      service.Config{Log: f.log, Sequencer: seq, Logger: fixtureLogger, Verifier: &envelope.Verifier{Keyring: kr}},
		GRPCListener: lis, Logger: fixtureLogger,
	})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve() }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Stop(ctx)
		<-done
		seq.Close()
	})
	return lis.Addr().String()
}
