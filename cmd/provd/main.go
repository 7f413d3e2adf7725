// Command provd is the provledger node: it serves the Ledger gRPC API and
// the C2SP tlog-tiles HTTP read API over one append-only Merkle log.
//
// Run `provd --help` for every flag; each flag can also be set through an
// environment variable PROVLEDGER_<FLAG> (dashes become underscores).
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// After the first signal starts a graceful shutdown, restore the
	// default handling: a second Ctrl-C ends the process at once.
	go func() {
		<-ctx.Done()
		stop()
	}()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

// run is main without the process: it returns the exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "token" {
		return tokenCmd(args[1:], os.Stdin, stdout, stderr) // security.go
	}
	if len(args) > 0 && args[0] == "certs" {
		return certsCmd(args[1:], stdout, stderr) // certs.go
	}
	cfg, err := parseFlags(args, stderr)
	if err != nil {
		if err == errHelp {
			return 0
		}
		fmt.Fprintf(stderr, "provd: %v\n", err)
		return 2
	}
	n, err := startNode(ctx, cfg, stdout, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "provd: %v\n", err)
		return 1
	}
	if err := n.wait(ctx); err != nil {
		fmt.Fprintf(stderr, "provd: %v\n", err)
		return 1
	}
	return 0
}
