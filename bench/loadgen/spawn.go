package loadgen

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// Node is a provd --dev process started by the load generator.
type Node struct {
	// Addr and HTTPAddr are its gRPC and HTTP addresses.
	Addr, HTTPAddr string
	// AdminAddr is its admin listener (/metrics, /debug/pprof/): a free
	// loopback port of its own, so every spawned node can be profiled.
	AdminAddr string
	// DataDir is its (temporary) data directory.
	DataDir string
	// LogPath is where its stdout and stderr go (inside DataDir).
	LogPath string

	cmd    *exec.Cmd
	logF   *os.File
	exited chan struct{}
	err    error // of cmd.Wait, valid once exited is closed
	keep   bool
}

// healthService is the service name provd reports SERVING for.
const healthService = "provledger.v1.Ledger"

// SpawnNode starts `provd --dev --data DIR --grpc-addr A --http-addr B
// --admin-addr C [extra...]` with DIR a new directory under dataRoot and
// A, B, C free loopback ports, and waits until its health service says SERVING.
// Stop ends it.
func SpawnNode(ctx context.Context, provd string, extra []string, dataRoot string, keep bool) (*Node, error) {
	if _, err := os.Stat(provd); err != nil {
		return nil, fmt.Errorf("--provd: %w (build it with `go build -o bin/ ./cmd/...`)", err)
	}
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ { // a port taken between probe and bind: retry
		n, err := spawnOnce(ctx, provd, extra, dataRoot, keep)
		if err == nil {
			return n, nil
		}
		lastErr = err
		if ctx.Err() != nil || !errors.Is(err, errEarlyExit) || !strings.Contains(err.Error(), "address already in use") {
			break
		}
	}
	return nil, lastErr
}

var errEarlyExit = errors.New("provd exited before it was serving")

func spawnOnce(ctx context.Context, provd string, extra []string, dataRoot string, keep bool) (*Node, error) {
	grpcAddr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	httpAddr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	adminAddr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp(dataRoot, "provbench-node-")
	if err != nil {
		return nil, fmt.Errorf("node data directory: %w", err)
	}
	n := &Node{Addr: grpcAddr, HTTPAddr: httpAddr, AdminAddr: adminAddr, DataDir: dir, LogPath: filepath.Join(dir, "provd.log"), exited: make(chan struct{}), keep: keep}
	if n.logF, err = os.Create(n.LogPath); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	args := append([]string{"--dev", "--data", filepath.Join(dir, "data"), "--grpc-addr", grpcAddr, "--http-addr", httpAddr, "--admin-addr", adminAddr}, extra...)
	n.cmd = exec.Command(provd, args...)
	n.cmd.Stdout, n.cmd.Stderr = n.logF, n.logF
	n.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL} // never outlive us
	if err := n.cmd.Start(); err != nil {
		n.logF.Close()
		os.RemoveAll(dir)
		return nil, fmt.Errorf("start %s: %w", provd, err)
	}
	go func() {
		n.err = n.cmd.Wait()
		close(n.exited)
	}()
	if err := n.waitHealthy(ctx, 30*time.Second); err != nil {
		tail := n.LogTail(2048)
		n.Stop()
		return nil, fmt.Errorf("%w\n--- provd log ---\n%s", err, tail)
	}
	return n, nil
}

// freeAddr returns a loopback address with a port that was free a moment ago.
func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().String(), nil
}

func (n *Node) waitHealthy(ctx context.Context, timeout time.Duration) error {
	conn, err := grpc.NewClient(n.Addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	defer conn.Close()
	hc := healthpb.NewHealthClient(conn)
	deadline := time.Now().Add(timeout)
	var last error
	for {
		select {
		case <-n.exited:
			return fmt.Errorf("%w (%v)", errEarlyExit, n.err)
		default:
		}
		cctx, cancel := context.WithTimeout(ctx, time.Second)
		resp, err := hc.Check(cctx, &healthpb.HealthCheckRequest{Service: healthService})
		cancel()
		if err == nil && resp.GetStatus() == healthpb.HealthCheckResponse_SERVING {
			return nil
		}
		last = err
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("provd did not report SERVING within %v (last: %v)", timeout, last)
		}
		select {
		case <-time.After(50 * time.Millisecond):
		case <-n.exited:
		case <-ctx.Done():
		}
	}
}

// PID is the node's process id.
func (n *Node) PID() int { return n.cmd.Process.Pid }

// CPU is the node's CPU time so far.
func (n *Node) CPU() (time.Duration, error) { return ProcCPU(n.PID()) }

// LogPub is the path of the log's public key the node wrote.
func (n *Node) LogPub() string { return filepath.Join(n.DataDir, "data", "log.pub") }

// LogTail returns up to max bytes of the end of the node's log.
func (n *Node) LogTail(max int) string {
	b, err := os.ReadFile(n.LogPath)
	if err != nil {
		return ""
	}
	if len(b) > max {
		b = b[len(b)-max:]
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			b = b[i+1:]
		}
	}
	return string(b)
}

// Stop sends SIGTERM, waits up to 15 s for a clean exit (then SIGKILL),
// and removes the data directory unless it is kept. It returns an error if
// the node had to be killed or exited with a failure.
func (n *Node) Stop() error {
	var err error
	select {
	case <-n.exited:
		err = fmt.Errorf("provd had already exited: %v", n.err)
	default:
		_ = n.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-n.exited:
			if n.err != nil {
				err = fmt.Errorf("provd exited with %v", n.err)
			}
		case <-time.After(15 * time.Second):
			_ = n.cmd.Process.Kill()
			<-n.exited
			err = errors.New("provd did not stop within 15 s of SIGTERM; killed")
		}
	}
	n.logF.Close()
	if !n.keep {
		os.RemoveAll(n.DataDir)
	}
	return err
}

// ErrNodeRunning is returned by Restart when the node has not exited.
var ErrNodeRunning = errors.New("the node is still running: stop or kill it first")

// Restart starts the node again with the same binary, flags, ports and
// data directory, after Stop (of a node spawned with keep) or a kill, and
// waits until it reports SERVING. It returns the time from starting the
// process to SERVING: what a restart of a log of this size costs.
func (n *Node) Restart(ctx context.Context, timeout time.Duration) (time.Duration, error) {
	select {
	case <-n.exited:
	default:
		return 0, ErrNodeRunning
	}
	if !n.keep {
		return 0, errors.New("restart: the node's data directory was not kept")
	}
	logF, err := os.OpenFile(n.LogPath, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return 0, fmt.Errorf("restart: %w", err)
	}
	n.logF.Close()
	n.logF = logF
	cmd := exec.Command(n.cmd.Path, n.cmd.Args[1:]...)
	cmd.Stdout, cmd.Stderr = logF, logF
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return 0, fmt.Errorf("restart %s: %w", n.cmd.Path, err)
	}
	n.cmd, n.exited, n.err = cmd, make(chan struct{}), nil
	exited := n.exited
	go func() {
		n.err = cmd.Wait()
		close(exited)
	}()
	if err := n.waitHealthy(ctx, timeout); err != nil {
		return 0, fmt.Errorf("restart: %w\n--- provd log ---\n%s", err, n.LogTail(2048))
	}
	return time.Since(start), nil
}

// Kill SIGKILLs the node (a crash: nothing is flushed) and waits for it
// to exit.
func (n *Node) Kill() { n.kill() }

// DiskUsage is what the files under the node's data directory take
// (provd's own log excluded).
func (n *Node) DiskUsage() (Usage, error) {
	return diskUsage(filepath.Join(n.DataDir, "data"))
}

// RemoveData deletes the node's data directory (for a node spawned with
// keep, once it is stopped).
func (n *Node) RemoveData() error { return os.RemoveAll(n.DataDir) }
