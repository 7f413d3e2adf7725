package ledger_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/provledger/provledger/crypto/checkpoint"
	"github.com/provledger/provledger/ledger"
)

func testLogKey(t testing.TB) string {
	k, err := checkpoint.VerifierKey(testOrigin, testKey.Public().(ed25519.PublicKey))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func restoreOpts(t testing.TB) ledger.RestoreBackupOptions {
	return ledger.RestoreBackupOptions{Log: ledger.Options{Origin: testOrigin, Signer: testSigner(t)}, LogKey: testLogKey(t)}
}

// writeBackup backs l up into a file and returns its path and checkpoint.
func writeBackup(t testing.TB, l *ledger.Log) (string, *ledger.Checkpoint) {
	t.Helper()
	b, err := l.NewBackup(testLogKey(t))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	path := filepath.Join(t.TempDir(), "log.backup")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	n, err := b.WriteTo(f)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if st, _ := os.Stat(path); st.Size() != n {
		t.Fatalf("WriteTo reported %d bytes, the file has %d", n, st.Size())
	}
	return path, b.Checkpoint()
}

// TestBackupUnderAppendsRestores backs a log up while a sequencer appends
// to it, restores the backup into a new directory, and checks that the
// restored log serves the backup's checkpoint and every entry of it as the
// source does, and keeps appending from there.
func TestBackupUnderAppendsRestores(t *testing.T) {
	src := openLog(t, t.TempDir())
	seq, err := ledger.NewLocalSequencer(src, ledger.SequencerOptions{MaxBatch: 16, PipelineMin: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer seq.Close()
	var wg sync.WaitGroup
	var next atomic.Int64
	stop := make(chan struct{})
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				i := int(next.Add(1))
				if _, err := seq.Submit(context.Background(), []ledger.Entry{entry(i)}); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	for src.Latest().Size < 300 {
		if _, err := seq.Submit(context.Background(), []ledger.Entry{entry(-int(src.Latest().Size) - 1)}); err != nil {
			t.Fatal(err)
		}
	}
	path, cp := writeBackup(t, src)
	close(stop)
	wg.Wait()
	if cp.Size < 300 {
		t.Fatalf("backup of size %d", cp.Size)
	}
	if src.Latest().Size <= cp.Size {
		t.Logf("no append landed after the backup (size %d)", cp.Size)
	}

	dir := filepath.Join(t.TempDir(), "restored")
	got, err := ledger.RestoreBackup(dir, path, restoreOpts(t))
	if err != nil {
		t.Fatalf("RestoreBackup: %v", err)
	}
	if !bytes.Equal(got.Checkpoint.Note, cp.Note) {
		t.Fatalf("restored checkpoint %q, want %q", got.Checkpoint.Note, cp.Note)
	}
	if _, err := os.Stat(dir + ".restoring"); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("scratch directory left behind: %v", err)
	}
	r := openLog(t, dir)
	if !bytes.Equal(r.Latest().Note, cp.Note) {
		t.Fatalf("restored log serves %q, want %q", r.Latest().Note, cp.Note)
	}
	if r.AppliedIndex() != 0 {
		t.Fatalf("restored applied index %d, want 0 (a new Raft history)", r.AppliedIndex())
	}
	for i := uint64(0); i < cp.Size; i++ {
		a, err := src.Record(i)
		if err != nil {
			t.Fatal(err)
		}
		b, err := r.Record(i)
		if err != nil {
			t.Fatalf("restored record %d: %v", i, err)
		}
		if !bytes.Equal(a, b) {
			t.Fatalf("record %d differs", i)
		}
		pa, err := src.InclusionProof(i, cp.Size)
		if err != nil {
			t.Fatal(err)
		}
		pb, err := r.InclusionProof(i, cp.Size)
		if err != nil {
			t.Fatalf("restored inclusion proof %d: %v", i, err)
		}
		if len(pa) != len(pb) || !bytes.Equal(bytes.Join(pa, nil), bytes.Join(pb, nil)) {
			t.Fatalf("inclusion proof %d differs", i)
		}
	}
	if _, err := r.Record(cp.Size); !errors.Is(err, ledger.ErrOutOfRange) {
		t.Fatalf("record beyond the backup: %v", err)
	}
	if err := r.Verify(); err != nil {
		t.Fatalf("Verify on the restored log: %v", err)
	}
	// The restored log continues: the next append gets the next index, and
	// an entry of the backup is a duplicate.
	a := apply(t, r, []ledger.Entry{entry(1 << 30), entry(1)})
	if a.Results[0].Index != cp.Size || a.Results[0].Duplicate || !a.Results[1].Duplicate {
		t.Fatalf("append after restore: %+v", a.Results)
	}
}

// TestBackupOfEmptyLogRestores covers the smallest backup.
func TestBackupOfEmptyLogRestores(t *testing.T) {
	src := openLog(t, t.TempDir())
	path, cp := writeBackup(t, src)
	dir := filepath.Join(t.TempDir(), "restored")
	if _, err := ledger.RestoreBackup(dir, path, restoreOpts(t)); err != nil {
		t.Fatal(err)
	}
	if r := openLog(t, dir); !bytes.Equal(r.Latest().Note, cp.Note) {
		t.Fatalf("restored %q", r.Latest().Note)
	}
}

func TestNewBackupRefusesForeignKey(t *testing.T) {
	l := openLog(t, t.TempDir())
	other, err := checkpoint.VerifierKey(testOrigin, ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, 32)).Public().(ed25519.PublicKey))
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"", "garbage", other} {
		if _, err := l.NewBackup(k); err == nil {
			t.Errorf("NewBackup(%q) accepted a key that did not sign the log", k)
		}
	}
}

// sourceBackup is the backup of a log of 600 entries (two full tiles and
// a partial one), for the tamper tests.
func sourceBackup(t *testing.T) ([]byte, *ledger.Checkpoint) {
	l := openLog(t, t.TempDir())
	for i := 0; i < 600; i += 100 {
		apply(t, l, entries(i, i+100))
	}
	path, cp := writeBackup(t, l)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b, cp
}

// TestRestoreBackupRefusesDamage: every kind of damage to a backup is
// refused with a message naming it, and leaves no directory behind.
func TestRestoreBackupRefusesDamage(t *testing.T) {
	good, cp := sourceBackup(t)
	hdrLen := len("provledger backup v1\n") + 1 + len(testLogKey(t)) + 2 + len(cp.Note)
	flip := func(at int) func([]byte) []byte {
		return func(b []byte) []byte { b = bytes.Clone(b); b[at] ^= 0x01; return b }
	}
	otherKey := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{9}, 32))
	for _, tc := range []struct {
		name   string
		mutate func([]byte) []byte
		opts   func(*ledger.RestoreBackupOptions)
		is     error
		msg    string
	}{
		{name: "magic", mutate: flip(0), is: ledger.ErrBadBackup, msg: "not a provledger backup"},
		{name: "header key", mutate: flip(len("provledger backup v1\n") + 3), is: ledger.ErrBadBackup, msg: "log key"},
		{name: "header checkpoint", mutate: flip(hdrLen - 10), is: ledger.ErrBadBackup, msg: "header checkpoint"},
		{name: "snapshot magic", mutate: flip(hdrLen + 2), is: ledger.ErrBadSnapshot, msg: "not a provledger snapshot"},
		{name: "a pair in the middle", mutate: flip(len(good) / 2), is: ledger.ErrBadSnapshot, msg: ""},
		{name: "the checksum", mutate: flip(len(good) - 1), is: ledger.ErrBadSnapshot, msg: "checksum mismatch"},
		{name: "truncated in the header", mutate: func(b []byte) []byte { return b[:hdrLen-5] }, is: ledger.ErrBadBackup, msg: "truncated"},
		{name: "truncated in the pairs", mutate: func(b []byte) []byte { return b[:len(b)/2] }, is: ledger.ErrBadSnapshot, msg: "truncated"},
		{name: "truncated in the checksum", mutate: func(b []byte) []byte { return b[:len(b)-3] }, is: ledger.ErrBadSnapshot, msg: "truncated before its checksum"},
		{name: "empty file", mutate: func([]byte) []byte { return nil }, is: ledger.ErrBadBackup, msg: "not a provledger backup"},
		{name: "trailing bytes", mutate: func(b []byte) []byte { return append(bytes.Clone(b), 0) }, is: ledger.ErrBadBackup, msg: "1 bytes after the snapshot's checksum"},
		{name: "a record, checksum recomputed", mutate: rewritePairs(t, func(k, v []byte) []byte {
			if k[0] == 'r' && binary.BigEndian.Uint64(k[1:]) == 300 {
				v = bytes.Clone(v)
				v[len(v)-1] ^= 1
			}
			return v
		}), is: ledger.ErrCorrupt, msg: "entry 300"},
		{name: "a level-0 tile hash, checksum recomputed", mutate: rewritePairs(t, func(k, v []byte) []byte {
			if k[0] == 't' && k[1] == 0 && binary.BigEndian.Uint64(k[2:]) == 0 {
				v = bytes.Clone(v)
				v[5*32] ^= 1
			}
			return v
		}), is: ledger.ErrCorrupt, msg: "tile 0/0: hash 5"},
		{name: "an envelope, checksum recomputed", mutate: rewritePairs(t, func(k, v []byte) []byte {
			if k[0] == 'v' && len(k) == 9 && binary.BigEndian.Uint64(k[1:]) == 42 {
				v = bytes.Clone(v)
				v[len(v)-2] ^= 1
			}
			return v
		}), is: ledger.ErrCorrupt, msg: "does not hash to the record's digest"},
		{name: "another node's key", opts: func(o *ledger.RestoreBackupOptions) {
			s, _ := checkpoint.NewSigner(testOrigin, otherKey)
			o.Log.Signer = s
			o.LogKey, _ = checkpoint.VerifierKey(testOrigin, otherKey.Public().(ed25519.PublicKey))
		}, is: ledger.ErrBadBackup, msg: "this node's log key is"},
		{name: "header key matches but the signer is another", opts: func(o *ledger.RestoreBackupOptions) {
			s, _ := checkpoint.NewSigner(testOrigin, otherKey)
			o.Log.Signer = s
		}, is: ledger.ErrBadSnapshot, msg: "not signed by this log's key"},
		{name: "another origin", opts: func(o *ledger.RestoreBackupOptions) {
			s, _ := checkpoint.NewSigner("other.example/log", testKey)
			o.Log = ledger.Options{Origin: "other.example/log", Signer: s}
		}, is: ledger.ErrBadBackup, msg: "this node's origin is"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := good
			if tc.mutate != nil {
				b = tc.mutate(good)
			}
			path := filepath.Join(t.TempDir(), "damaged.backup")
			if err := os.WriteFile(path, b, 0o600); err != nil {
				t.Fatal(err)
			}
			o := restoreOpts(t)
			if tc.opts != nil {
				tc.opts(&o)
			}
			dir := filepath.Join(t.TempDir(), "restored")
			_, err := ledger.RestoreBackup(dir, path, o)
			if err == nil {
				t.Fatal("RestoreBackup accepted a damaged backup")
			}
			if !errors.Is(err, tc.is) || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("error %q, want %v mentioning %q", err, tc.is, tc.msg)
			}
			for _, d := range []string{dir, dir + ".restoring"} {
				if _, err := os.Stat(d); !errors.Is(err, os.ErrNotExist) {
					t.Fatalf("%s left behind after a refused restore (%v)", d, err)
				}
			}
		})
	}
}

func TestRestoreBackupRefusesNonEmptyTarget(t *testing.T) {
	good, _ := sourceBackup(t)
	path := filepath.Join(t.TempDir(), "b")
	if err := os.WriteFile(path, good, 0o600); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "keep"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := ledger.RestoreBackup(dir, path, restoreOpts(t))
	if !errors.Is(err, ledger.ErrRestoreTarget) {
		t.Fatalf("restore into a non-empty directory: %v", err)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "keep")); err != nil || string(b) != "x" {
		t.Fatalf("the target's file was touched: %q %v", b, err)
	}
	// An existing empty directory is fine.
	empty := t.TempDir()
	if _, err := ledger.RestoreBackup(empty, path, restoreOpts(t)); err != nil {
		t.Fatalf("restore into an empty directory: %v", err)
	}
}

// rewritePairs returns a mutation that rewrites the snapshot's pairs with
// fn and recomputes the snapshot's SHA-256, as a forger would: only the
// checks against the signed checkpoint can catch it.
func rewritePairs(t *testing.T, fn func(k, v []byte) []byte) func([]byte) []byte {
	return func(b []byte) []byte {
		r := bytes.NewReader(b)
		// backup header
		r.Seek(int64(len("provledger backup v1\n")), 0)
		for range 2 {
			n, _ := binary.ReadUvarint(r)
			r.Seek(int64(n), 1)
		}
		snapStart := len(b) - r.Len()
		// snapshot header: magic, origin, applied, checkpoint
		r.Seek(int64(len("provledger snapshot v1\n")), 1)
		n, _ := binary.ReadUvarint(r)
		r.Seek(int64(n)+8, 1)
		n, _ = binary.ReadUvarint(r)
		r.Seek(int64(n), 1)
		out := bytes.Clone(b[:len(b)-r.Len()])
		for {
			kl, err := binary.ReadUvarint(r)
			if err != nil {
				t.Fatal(err)
			}
			if kl == 0 {
				break
			}
			vl, _ := binary.ReadUvarint(r)
			k := make([]byte, kl)
			v := make([]byte, vl)
			r.Read(k)
			r.Read(v)
			v = fn(k, v)
			out = binary.AppendUvarint(out, kl)
			out = binary.AppendUvarint(out, uint64(len(v)))
			out = append(out, k...)
			out = append(out, v...)
		}
		out = append(out, 0)
		var cnt [8]byte
		r.Read(cnt[:])
		out = append(out, cnt[:]...)
		sum := sha256.Sum256(out[snapStart:])
		return append(out, sum[:]...)
	}
}

// FuzzReadBackupHeader: arbitrary bytes never panic the header decoder,
// and a header it accepts has a verified checkpoint.
func FuzzReadBackupHeader(f *testing.F) {
	f.Add([]byte("provledger backup v1\n"))
	f.Add([]byte("provledger backup v1\n\x05abcde\x00"))
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := ledger.ReadBackupHeader(bytes.NewReader(b))
		if err != nil {
			if !errors.Is(err, ledger.ErrBadBackup) {
				t.Fatalf("error %v does not wrap ErrBadBackup", err)
			}
			return
		}
		if h.Checkpoint == nil || h.Len <= 0 || h.Len > int64(len(b)) {
			t.Fatalf("accepted header %+v of %d bytes", h, len(b))
		}
	})
}
