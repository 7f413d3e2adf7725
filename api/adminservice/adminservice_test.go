package adminservice_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"

	"github.com/provledger/provledger/api/adminservice"
	"github.com/provledger/provledger/api/adminservice/backupclient"
	"github.com/provledger/provledger/api/provledgerpb"
	"github.com/provledger/provledger/crypto/checkpoint"
	"github.com/provledger/provledger/ledger"
)

const origin = "test.provledger/admin"

var logPriv = ed25519.NewKeyFromSeed(bytes.Repeat([]byte{1}, 32))

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func ledgerOptions(t testing.TB) (ledger.Options, string) {
	s, err := checkpoint.NewSigner(origin, logPriv)
	if err != nil {
		t.Fatal(err)
	}
	k, err := checkpoint.VerifierKey(origin, logPriv.Public().(ed25519.PublicKey))
	if err != nil {
		t.Fatal(err)
	}
	return ledger.Options{Origin: origin, Signer: s, Logger: quiet()}, k
}

type env struct {
	log    *ledger.Log
	seq    *ledger.LocalSequencer
	admin  provledgerpb.AdminClient
	logKey string
}

// start serves the Admin service of a real ledger over an in-process gRPC
// connection.
func start(t testing.TB, chunk int) *env {
	t.Helper()
	lo, key := ledgerOptions(t)
	l, err := ledger.Open(t.TempDir(), lo)
	if err != nil {
		t.Fatal(err)
	}
	seq, err := ledger.NewLocalSequencer(l, ledger.SequencerOptions{MaxBatch: 64})
	if err != nil {
		t.Fatal(err)
	}
	svc, err := adminservice.New(adminservice.Config{Log: l, LogKey: key, Node: "n1", ChunkSize: chunk, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	lis := bufconn.Listen(1 << 20)
	g := grpc.NewServer()
	provledgerpb.RegisterAdminServer(g, svc)
	go g.Serve(lis)
	conn, err := grpc.NewClient("passthrough:///bufnet", grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		conn.Close()
		g.Stop()
		seq.Close()
		l.Close()
	})
	return &env{log: l, seq: seq, admin: provledgerpb.NewAdminClient(conn), logKey: key}
}

func entry(i int) ledger.Entry {
	return ledger.Entry{
		Namespace:   "ns",
		PayloadType: "application/vnd.in-toto+json",
		Envelope:    fmt.Appendf(nil, `{"payloadType":"x","payload":"%08d","signatures":[]}`, i),
		Signers:     [][32]byte{sha256.Sum256([]byte("k"))},
	}
}

func (e *env) fill(t testing.TB, from, to int) {
	t.Helper()
	var es []ledger.Entry
	for i := from; i < to; i++ {
		es = append(es, entry(i))
	}
	if _, err := e.seq.Submit(context.Background(), es); err != nil {
		t.Fatal(err)
	}
}

// TestBackupStreamsRestorableBackup backs up a node while appends go on,
// checks the info and trailer, and restores the file into a new log that
// serves the backup's checkpoint and entries.
func TestBackupStreamsRestorableBackup(t *testing.T) {
	e := start(t, 4096) // small chunks: many messages
	e.fill(t, 0, 500)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 1000; ; i += 10 {
			select {
			case <-stop:
				return
			default:
			}
			var es []ledger.Entry
			for j := i; j < i+10; j++ {
				es = append(es, entry(j))
			}
			if _, err := e.seq.Submit(context.Background(), es); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	stream, err := e.admin.Backup(context.Background(), &provledgerpb.BackupRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	res, err := backupclient.Receive(stream, &buf)
	close(stop)
	wg.Wait()
	if err != nil {
		t.Fatalf("Receive: %v", err)
	}
	if res.Info.GetSize() < 500 || res.Info.GetLogKey() != e.logKey || res.Info.GetNode() != "n1" || res.Bytes != uint64(buf.Len()) {
		t.Fatalf("info %v, %d bytes, buffer %d", res.Info, res.Bytes, buf.Len())
	}
	v, _ := checkpoint.NewVerifier(origin, logPriv.Public().(ed25519.PublicKey))
	cp, err := checkpoint.Open(res.Info.GetCheckpoint(), v)
	if err != nil || cp.Size != res.Info.GetSize() {
		t.Fatalf("info checkpoint %v, size %d: %v", cp, res.Info.GetSize(), err)
	}

	path := filepath.Join(t.TempDir(), "node.backup")
	if err := os.WriteFile(path, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	lo, key := ledgerOptions(t)
	dir := filepath.Join(t.TempDir(), "restored")
	if _, err := ledger.RestoreBackup(dir, path, ledger.RestoreBackupOptions{Log: lo, LogKey: key}); err != nil {
		t.Fatalf("RestoreBackup: %v", err)
	}
	r, err := ledger.Open(dir, lo)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if !bytes.Equal(r.Latest().Note, res.Info.GetCheckpoint()) {
		t.Fatalf("restored log serves %q, the backup's info says %q", r.Latest().Note, res.Info.GetCheckpoint())
	}
	for i := uint64(0); i < cp.Size; i++ {
		a, _ := e.log.Record(i)
		b, err := r.Record(i)
		if err != nil || !bytes.Equal(a, b) {
			t.Fatalf("record %d: %v", i, err)
		}
	}
}

// TestBackupCancelled: a client that goes away mid-stream ends the call
// and releases the view; the node keeps serving.
func TestBackupCancelled(t *testing.T) {
	e := start(t, 1024)
	e.fill(t, 0, 300)
	ctx, cancel := context.WithCancel(context.Background())
	stream, err := e.admin.Backup(ctx, &provledgerpb.BackupRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := stream.Recv(); err != nil {
		t.Fatal(err)
	}
	cancel()
	for {
		if _, err = stream.Recv(); err != nil {
			break
		}
	}
	if status.Code(err) != codes.Canceled {
		t.Fatalf("after cancel: %v", err)
	}
	// A later backup works.
	s2, err := e.admin.Backup(context.Background(), &provledgerpb.BackupRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := backupclient.Receive(s2, io.Discard); err != nil {
		t.Fatal(err)
	}
}

func TestBackupOfClosedLogIsUnavailable(t *testing.T) {
	e := start(t, 0)
	e.seq.Close()
	e.log.Close()
	stream, err := e.admin.Backup(context.Background(), &provledgerpb.BackupRequest{})
	if err == nil {
		_, err = stream.Recv()
	}
	if status.Code(err) != codes.Unavailable {
		t.Fatalf("backup of a closed log: %v", err)
	}
}

func TestNewRefusesIncompleteConfig(t *testing.T) {
	lo, key := ledgerOptions(t)
	l, err := ledger.Open(t.TempDir(), lo)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	for _, c := range []adminservice.Config{{LogKey: key}, {Log: l}, {Log: l, LogKey: key, ChunkSize: -1}} {
		if _, err := adminservice.New(c); !errors.Is(err, adminservice.ErrConfig) {
			t.Errorf("New(%+v) = %v, want ErrConfig", c, err)
		}
	}
}
