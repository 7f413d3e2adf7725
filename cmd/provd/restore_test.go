package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/provledger/provledger/api/adminservice/backupclient"
	"github.com/provledger/provledger/api/client"
	"github.com/provledger/provledger/api/provledgerpb"
	"github.com/provledger/provledger/crypto/checkpoint"
	"github.com/provledger/provledger/crypto/keys"
)

// grpcConn dials addr in plaintext for the test's lifetime.
func grpcConn(t *testing.T, addr string) *grpc.ClientConn {
	t.Helper()
	c, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// backupTo takes a backup of the node at addr into path, as prov backup
// does (the stream checked whole), and returns its info.
func backupTo(t *testing.T, addr, path string) *provledgerpb.BackupInfo {
	t.Helper()
	stream, err := provledgerpb.NewAdminClient(grpcConn(t, addr)).Backup(context.Background(), &provledgerpb.BackupRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	res, err := backupclient.Receive(stream, &buf)
	if err != nil {
		t.Fatalf("backup: %v", err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	return res.Info
}

// appendN appends n distinct statements named prefix-i through lc.
func appendN(t *testing.T, lc provledgerpb.LedgerClient, s *testSigner, prefix string, n int) []uint64 {
	t.Helper()
	var idx []uint64
	for i := range n {
		env, err := s.statement(fmt.Sprintf("%s-%d", prefix, i))
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		resp, err := lc.Append(ctx, s.appendRequest(env, true))
		cancel()
		if err != nil {
			t.Fatalf("append %s-%d: %v", prefix, i, err)
		}
		idx = append(idx, resp.GetIndex())
	}
	return idx
}

// sameEntries checks that entries [0, size) read the same on both nodes.
func sameEntries(t *testing.T, a, b provledgerpb.LedgerClient, size uint64) {
	t.Helper()
	ctx := context.Background()
	for i := uint64(0); i < size; i++ {
		ea, err := a.GetEntry(ctx, &provledgerpb.GetEntryRequest{Index: i})
		if err != nil {
			t.Fatalf("entry %d on the source: %v", i, err)
		}
		eb, err := b.GetEntry(ctx, &provledgerpb.GetEntryRequest{Index: i})
		if err != nil {
			t.Fatalf("entry %d on the restored node: %v", i, err)
		}
		if !bytes.Equal(ea.GetRecord(), eb.GetRecord()) || !bytes.Equal(ea.GetEnvelopeJson(), eb.GetEnvelopeJson()) || !bytes.Equal(ea.GetLeafHash(), eb.GetLeafHash()) {
			t.Fatalf("entry %d differs after restore", i)
		}
	}
}

// TestBackupRestoreNode backs up a live node under appends, restores the
// backup into a new data directory with provd --restore, and checks that
// the restored node serves the backup's checkpoint and every entry, then
// keeps appending. Refused restores leave nothing behind.
func TestBackupRestoreNode(t *testing.T) {
	data1 := t.TempDir()
	p1 := startProvd(t, data1)
	lc1 := provledgerpb.NewLedgerClient(grpcConn(t, p1.grpcAddr))
	s := newTestSigner(t)
	appendN(t, lc1, s, "before", 40)

	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				env, err := s.statement(fmt.Sprintf("during-%d-%d", w, i))
				if err != nil {
					t.Error(err)
					return
				}
				if _, err := lc1.Append(context.Background(), s.appendRequest(env, true)); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	file := filepath.Join(t.TempDir(), "node.backup")
	info := backupTo(t, p1.grpcAddr, file)
	close(stop)
	wg.Wait()
	pub, err := os.ReadFile(filepath.Join(data1, "log.pub"))
	if err != nil {
		t.Fatal(err)
	}
	pk, err := keys.ParsePublicPEMs(pub)
	if err != nil {
		t.Fatal(err)
	}
	v, err := checkpoint.NewVerifier(devOrigin, pk[0].(ed25519.PublicKey))
	if err != nil {
		t.Fatal(err)
	}
	cp, err := checkpoint.Open(info.GetCheckpoint(), v)
	if err != nil || cp.Size < 40 {
		t.Fatalf("backup checkpoint %v: %v", cp, err)
	}

	logKey := filepath.Join(data1, "log.key")
	data2 := t.TempDir()
	p2 := startProvd(t, data2, "--restore", file, "--log-key", logKey)
	if !strings.Contains(p2.stdout.String(), fmt.Sprintf("restored %s: %d entries, checkpoint verified", file, cp.Size)) {
		t.Errorf("provd --restore printed:\n%s", &p2.stdout)
	}
	lc2 := provledgerpb.NewLedgerClient(grpcConn(t, p2.grpcAddr))
	got, err := lc2.GetCheckpoint(context.Background(), &provledgerpb.GetCheckpointRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.GetNote(), info.GetCheckpoint()) {
		t.Fatalf("restored node serves\n%s\nwant the backup's\n%s", got.GetNote(), info.GetCheckpoint())
	}
	sameEntries(t, lc1, lc2, cp.Size)
	if idx := appendN(t, lc2, s, "after", 1); idx[0] != cp.Size {
		t.Fatalf("first append after restore got index %d, want %d", idx[0], cp.Size)
	}
	// The restored node verifies receipts with the same key: a client of
	// the old node goes on.
	p2.stop(t)
	p1.stop(t)

	// Refusals: a non-empty data directory, damaged backups, a wrong key.
	good, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	write := func(name string, b []byte) string {
		p := filepath.Join(t.TempDir(), name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	flipped := bytes.Clone(good)
	flipped[len(flipped)-1] ^= 0x40
	otherKey := filepath.Join(t.TempDir(), "other.key")
	k, _ := keys.Generate("ed25519")
	pem, _ := keys.MarshalPrivatePEM(k)
	if err := os.WriteFile(otherKey, pem, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		data string
		args []string
		code int
		msg  string
	}{
		{"non-empty data", data2, []string{"--restore", file, "--log-key", logKey}, 1, "is not empty"},
		{"flipped byte", "", []string{"--restore", write("flipped", flipped), "--log-key", logKey}, 1, "checksum mismatch"},
		{"truncated", "", []string{"--restore", write("truncated", good[:len(good)*2/3]), "--log-key", logKey}, 1, "truncated"},
		{"not a backup", "", []string{"--restore", write("junk", []byte("hello")), "--log-key", logKey}, 1, "not a provledger backup"},
		{"missing file", "", []string{"--restore", filepath.Join(t.TempDir(), "nope"), "--log-key", logKey}, 1, "no such file"},
		{"other log key", "", []string{"--restore", file, "--log-key", otherKey}, 1, "this node's log key is"},
		{"no log key", "", []string{"--restore", file}, 2, "--restore needs the log's private key"},
		{"cluster without bootstrap", "", []string{"--restore", file, "--log-key", logKey, "--node-id", "n1"}, 2, "needs --bootstrap"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data := tc.data
			if data == "" {
				data = t.TempDir()
			}
			args := append([]string{"--dev", "--data", data, "--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", "--admin-addr", ""}, tc.args...)
			var stdout, stderr bytes.Buffer
			if code := runOnce(t, args, &stdout, &stderr); code != tc.code || !strings.Contains(stderr.String(), tc.msg) {
				t.Fatalf("provd %q exited %d (want %d); stderr:\n%s\nwant it to mention %q", tc.args, code, tc.code, &stderr, tc.msg)
			}
			if tc.data == "" {
				for _, d := range []string{"ledger", "ledger.restoring"} {
					if _, err := os.Stat(filepath.Join(data, d)); !errors.Is(err, os.ErrNotExist) {
						t.Fatalf("a refused restore left %s in the data directory (%v)", d, err)
					}
				}
			}
		})
	}
	// The non-empty directory is untouched: its node still starts with its log.
	p3 := startProvd(t, data2, "--log-key", logKey)
	if got, err := provledgerpb.NewLedgerClient(grpcConn(t, p3.grpcAddr)).GetCheckpoint(context.Background(), &provledgerpb.GetCheckpointRequest{}); err != nil || got.GetSize() != cp.Size+1 {
		t.Fatalf("node of the refused directory: size %d, %v", got.GetSize(), err)
	}
}

// TestRestoreCluster restores a backup into a new one-node cluster
// (--restore --node-id n1 --bootstrap) and joins a second node with an
// empty data directory: it receives the restored log, and both then agree
// on new appends.
func TestRestoreCluster(t *testing.T) {
	data1 := t.TempDir()
	p1 := startProvd(t, data1)
	lc1 := provledgerpb.NewLedgerClient(grpcConn(t, p1.grpcAddr))
	s := newTestSigner(t)
	appendN(t, lc1, s, "single", 30)
	file := filepath.Join(t.TempDir(), "node.backup")
	info := backupTo(t, p1.grpcAddr, file)
	logKey, err := os.ReadFile(filepath.Join(data1, "log.key"))
	if err != nil {
		t.Fatal(err)
	}
	priv, err := keys.ParsePrivatePEM(logKey)
	if err != nil {
		t.Fatal(err)
	}
	e := &clusterEnv{t: t}
	if e.v, err = checkpoint.NewVerifier(devOrigin, priv.(ed25519.PrivateKey).Public().(ed25519.PublicKey)); err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		n := &cnode{id: fmt.Sprintf("r%d", i+1), data: t.TempDir(), grpc: freeAddr(t), http: freeAddr(t), raftAddr: freeAddr(t)}
		if err := os.WriteFile(filepath.Join(n.data, "log.key"), logKey, 0o600); err != nil {
			t.Fatal(err)
		}
		n.conn = grpcConn(t, n.grpc)
		n.ledger, n.clus = provledgerpb.NewLedgerClient(n.conn), provledgerpb.NewClusterClient(n.conn)
		e.nodes = append(e.nodes, n)
	}
	e.nodes[0].start(t, true, "--bootstrap", "--restore", file)
	e.nodes[1].start(t, true, "--join", e.nodes[0].grpc)
	e.waitMembers(2)
	cp, err := checkpoint.Open(info.GetCheckpoint(), e.v)
	if err != nil {
		t.Fatal(err)
	}
	acks := map[uint64][32]byte{}
	for i, n := range e.nodes {
		env, err := s.statement(fmt.Sprintf("cluster-%d", i))
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		resp, err := n.ledger.Append(ctx, s.appendRequest(env, true))
		cancel()
		if err != nil {
			e.fatal("append through %s: %v", n.id, err)
		}
		if err := client.VerifyReceipt(resp, env.Marshal(), e.v); err != nil {
			t.Fatalf("receipt through %s: %v", n.id, err)
		}
		if resp.GetIndex() < cp.Size {
			t.Fatalf("append through %s got index %d inside the restored log of size %d", n.id, resp.GetIndex(), cp.Size)
		}
		acks[resp.GetIndex()] = [32]byte(resp.GetLeafHash())
	}
	e.converge(cp.Size+2, acks)
	sameEntries(t, lc1, e.nodes[1].ledger, cp.Size)
}
