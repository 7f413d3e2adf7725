package badgerstore

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// crashWriter runs in a child process: it appends batches of logs of random
// count and size and prints "acked <last index>" after each StoreLogs
// returns, until it is killed.
func crashWriter(dir string) {
	s, err := Open(dir, Options{MemTableSize: 16 << 20, GCInterval: -1})
	if err != nil {
		fmt.Println("error", err)
		os.Exit(2)
	}
	last, _ := s.LastIndex()
	r := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	out := bufio.NewWriter(os.Stdout)
	for {
		n := 1 + r.IntN(40)
		logs := make([]*raft.Log, n)
		for j := range logs {
			size := 16 + r.IntN(2048)
			if r.IntN(8) == 0 {
				size = DefaultValueThreshold + r.IntN(200<<10) // value log
			}
			d := make([]byte, size)
			// Each log names its batch: first index, count, position.
			binary.BigEndian.PutUint64(d[0:], last+1)
			binary.BigEndian.PutUint32(d[8:], uint32(n))
			binary.BigEndian.PutUint32(d[12:], uint32(j))
			logs[j] = &raft.Log{Index: last + 1 + uint64(j), Term: 1, Type: raft.LogCommand, Data: d}
		}
		if err := s.StoreLogs(logs); err != nil {
			fmt.Fprintln(out, "error", err)
			out.Flush()
			os.Exit(2)
		}
		last += uint64(n)
		fmt.Fprintln(out, "acked", last)
		out.Flush()
	}
}

func TestMain(m *testing.M) {
	if dir := os.Getenv("BADGERSTORE_CRASH_DIR"); dir != "" {
		crashWriter(dir)
		return
	}
	os.Exit(m.Run())
}

// TestCrashAtomicity kills (SIGKILL) a process in the middle of StoreLogs
// calls, several times over the same store, and checks after each restart
// that every acknowledged log survived and that every batch is there whole
// or not at all. (A process crash, not a power cut: the page cache survives,
// so this checks Badger's recovery of half-written transactions, not fsync.)
func TestCrashAtomicity(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns processes")
	}
	dir := t.TempDir()
	var acked uint64
	for round := range 3 {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), "BADGERSTORE_CRASH_DIR="+dir)
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		lines := make(chan string, 1024)
		go func() {
			sc := bufio.NewScanner(stdout)
			for sc.Scan() {
				lines <- sc.Text()
			}
			close(lines)
		}()
		deadline := time.After(time.Duration(300+rand.IntN(400)) * time.Millisecond)
	read:
		for {
			select {
			case l, ok := <-lines:
				if !ok {
					break read
				}
				if strings.HasPrefix(l, "error") {
					t.Fatalf("child: %s", l)
				}
				n, err := strconv.ParseUint(strings.TrimPrefix(l, "acked "), 10, 64)
				if err != nil {
					t.Fatalf("child said %q", l)
				}
				acked = n
			case <-deadline:
				cmd.Process.Kill()
				break read
			}
		}
		for l := range lines { // acknowledgements printed before the kill
			if n, err := strconv.ParseUint(strings.TrimPrefix(l, "acked "), 10, 64); err == nil {
				acked = n
			}
		}
		cmd.Wait()

		s, err := Open(dir, Options{MemTableSize: 16 << 20, GCInterval: -1})
		if err != nil {
			t.Fatalf("round %d: reopen after kill: %v", round, err)
		}
		first, _ := s.FirstIndex()
		last, _ := s.LastIndex()
		if acked == 0 || last < acked || (first != 1) {
			s.Close()
			t.Fatalf("round %d: store holds %d..%d, %d acknowledged", round, first, last, acked)
		}
		// Walk the batches: each must be complete.
		for i := first; i <= last; {
			var l raft.Log
			if err := s.GetLog(i, &l); err != nil {
				s.Close()
				t.Fatalf("round %d: log %d of %d..%d: %v", round, i, first, last, err)
			}
			start := binary.BigEndian.Uint64(l.Data[0:])
			n := uint64(binary.BigEndian.Uint32(l.Data[8:]))
			pos := uint64(binary.BigEndian.Uint32(l.Data[12:]))
			if start != i || pos != 0 {
				s.Close()
				t.Fatalf("round %d: log %d starts no batch (batch %d, position %d)", round, i, start, pos)
			}
			if i+n-1 > last {
				s.Close()
				t.Fatalf("round %d: batch %d..%d is cut at %d", round, i, i+n-1, last)
			}
			for j := uint64(1); j < n; j++ {
				if err := s.GetLog(i+j, &l); err != nil {
					s.Close()
					t.Fatalf("round %d: batch %d..%d misses %d: %v", round, i, i+n-1, i+j, err)
				}
			}
			i += n
		}
		t.Logf("round %d: killed after %d acknowledged logs; store holds %d", round, acked, last)
		s.Close()
	}
}
