package loadgen_test

// This file alone wires a node (ledger + api) into the test binary, so a
// CPU profile covers the node and the load generator together:
//
//	PROVBENCH_CPUPROFILE=/tmp/cpu.out go test -run '^$' -bench InProcess/unary -benchtime 1x -o /tmp/loadgen.test ./bench/loadgen
//	go tool pprof -top /tmp/loadgen.test /tmp/cpu.out
//
// PROVBENCH_CPUPROFILE profiles exactly the measured window (after the
// pre-signing and the warmup); go test's own -cpuprofile would include
// the pre-signing.
//
// The rest of bench/ talks to nodes over gRPC only (api/client, crypto).

import (
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/provledger/provledger/api/server"
	"github.com/provledger/provledger/api/service"
	"github.com/provledger/provledger/bench/loadgen"
	"github.com/provledger/provledger/crypto/checkpoint"
	"github.com/provledger/provledger/crypto/envelope"
	"github.com/provledger/provledger/crypto/keys"
	"github.com/provledger/provledger/ledger"
)

// startNode serves a --dev-like node (trust on first use, every batch
// synced) on a loopback port and returns its address and log key file.
func startNode(b *testing.B) (addr, logPub string) {
	b.Helper()
	dir := b.TempDir()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	const origin = "provbench.local/inprocess"
	signer, err := checkpoint.NewSigner(origin, priv)
	if err != nil {
		b.Fatal(err)
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	l, err := ledger.Open(dir+"/ledger", ledger.Options{Origin: origin, Signer: signer, Logger: logger})
	if err != nil {
		b.Fatal(err)
	}
	seq, err := ledger.NewLocalSequencer(l, ledger.SequencerOptions{})
	if err != nil {
		b.Fatal(err)
	}
	kr, err := keys.NewKeyring()
	if err != nil {
		b.Fatal(err)
	}
	gl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv, err := server.New(server.Config{
		Service: service.Config{
			Log: l, Sequencer: seq,
			Verifier: &envelope.Verifier{Keyring: kr, TrustOnFirstUse: true},
			OnNewKey: func(crypto.PublicKey) {},
			Logger:   logger,
		},
		GRPCListener: gl,
		Logger:       logger,
	})
	if err != nil {
		b.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve() }()
	pem, err := keys.MarshalPublicPEM(priv.Public())
	if err != nil {
		b.Fatal(err)
	}
	logPub = dir + "/log.pub"
	if err := os.WriteFile(logPub, pem, 0o644); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		srv.Stop(ctx)
		<-served
		seq.Close()
		l.Close()
	})
	return gl.Addr().String(), logPub
}

// BenchmarkInProcess runs the append scenario (64 clients, 1 KiB
// Ed25519-signed envelopes) against an in-process node, once per mode,
// for PROVBENCH_INPROCESS_DURATION (default 5s) after a 1 s warmup. It
// ignores b.N: run it with -benchtime 1x. Every other append flag can be
// set the way provbench takes it from the environment
// (PROVLEDGER_BENCH_BATCH_SIZE=8, PROVLEDGER_BENCH_INFLIGHT=4, ...), and
// PROVBENCH_INPROCESS_MODES=batch,stream picks the modes.
func BenchmarkInProcess(b *testing.B) {
	d := 5 * time.Second
	if s := os.Getenv("PROVBENCH_INPROCESS_DURATION"); s != "" {
		var err error
		if d, err = time.ParseDuration(s); err != nil {
			b.Fatal(err)
		}
	}
	modes := []string{loadgen.ModeUnary, loadgen.ModeStream, loadgen.ModeBatch}
	if s := os.Getenv("PROVBENCH_INPROCESS_MODES"); s != "" {
		modes = strings.Split(s, ",")
	}
	for _, mode := range modes {
		b.Run(mode, func(b *testing.B) {
			for b.Loop() {
				addr, logPub := startNode(b)
				pc, err := loadgen.ParseAppend([]string{"--mode", mode}, os.LookupEnv, io.Discard)
				if err != nil {
					b.Fatal(err)
				}
				cfg := *pc
				cfg.Server, cfg.LogKey = addr, logPub
				cfg.Duration, cfg.Warmup = d, time.Second
				if path := os.Getenv("PROVBENCH_CPUPROFILE"); path != "" {
					cfg.OnWindow = loadgen.ProfileWindow(path+"."+mode, os.Stderr)
				}
				rep, err := loadgen.RunAppend(context.Background(), cfg, nil)
				if err != nil {
					b.Fatal(err)
				}
				if !rep.OK {
					b.Fatalf("run failed: %v", rep.Failures)
				}
				res := rep.Results
				b.ReportMetric(res.EntriesPerS, "entries/s")
				b.ReportMetric(res.Latency.P50, "p50-ms")
				b.ReportMetric(res.Latency.P99, "p99-ms")
				b.ReportMetric(res.CPU.LoadgenCores, "cores")
				b.ReportMetric(res.CPU.LoadgenUsPerEntry, "cpu-µs/entry") // node and load generator: one process
			}
		})
	}
}
