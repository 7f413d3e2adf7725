package main

import (
	"context"
	"encoding/base64"
	"flag"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/peterbourgon/ff/v3/ffcli"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/provledger/provledger/api/client"
	"github.com/provledger/provledger/api/provledgerpb"
)

// clusterCommand is `prov cluster status|join|remove|transfer-leadership`.
func (a *app) clusterCommand() *ffcli.Command {
	fs := flag.NewFlagSet("prov cluster", flag.ContinueOnError)
	subs := []*ffcli.Command{a.clusterStatusCommand(), a.clusterJoinCommand(), a.clusterRemoveCommand(), a.clusterTransferCommand()}
	for _, s := range subs {
		s.FlagSet.SetOutput(a.stderr)
		a.register(s.FlagSet) // the global flags, also after the subcommand
		exec, sfs := s.Exec, s.FlagSet
		s.Exec = func(ctx context.Context, args []string) error {
			if err := applyEnv(sfs); err != nil {
				return err
			}
			return exec(ctx, args)
		}
		s.UsageFunc = usageFunc
	}
	return &ffcli.Command{
		Name:       "cluster",
		ShortUsage: "prov cluster status|join|remove|transfer-leadership [flags]",
		ShortHelp:  "show and change the members of a Raft cluster",
		LongHelp: strings.TrimSpace(`
Talks to the Cluster service of any node (--server): a follower forwards
membership changes to the leader.

  prov cluster status
  prov cluster join --node-id n4 --raft-addr 10.0.0.4:7402 --api-addr 10.0.0.4:7400
  prov cluster remove n4
  prov cluster transfer-leadership [n2]`),
		FlagSet:     fs,
		Subcommands: subs,
		Exec: func(ctx context.Context, args []string) error {
			return usagef("cluster needs a subcommand: status, join, remove or transfer-leadership")
		},
	}
}

// clusterErr wraps the error of a Cluster call; a node that serves no
// Cluster service (a single provd, without --node-id) is named as such
// instead of gRPC's bare "unknown service".
func (a *app) clusterErr(what string, err error) error {
	if s, ok := status.FromError(err); ok && s.Code() == codes.Unimplemented && strings.HasPrefix(s.Message(), "unknown service") {
		return fmt.Errorf("%s: %w; the node at %s is not a member of a Raft cluster (provd started without --node-id): prov cluster talks to the nodes of a cluster (make cluster, docs/raft.md)", what, err, a.server)
	}
	return fmt.Errorf("%s: %w", what, err)
}

// clusterClient dials --server's Cluster service.
func (a *app) clusterClient() (provledgerpb.ClusterClient, func(), error) {
	conn, closeConn, err := a.serviceConn()
	if err != nil {
		return nil, nil, err
	}
	return provledgerpb.NewClusterClient(conn), closeConn, nil
}

func (a *app) clusterStatusCommand() *ffcli.Command {
	fs := flag.NewFlagSet("prov cluster status", flag.ContinueOnError)
	return &ffcli.Command{
		Name:       "status",
		ShortUsage: "prov cluster status",
		ShortHelp:  "leader, members, each node's applied index, log size and last checkpoint",
		LongHelp: strings.TrimSpace(`
Asks --server for the cluster's members; that node asks every member for
its own status. Per node: Raft state and term, the Raft index its ledger
has applied, its log size and the root of its latest checkpoint, whose
signature is checked with --log-key when a log key is available. Nodes
that agree show the same size and root; a follower may lag by the batches
it has not applied yet.`),
		FlagSet: fs,
		Exec: func(ctx context.Context, args []string) error {
			if len(args) > 0 {
				return usagef("cluster status takes no arguments")
			}
			return a.clusterStatus(ctx)
		},
	}
}

func (a *app) clusterStatus(ctx context.Context) error {
	cc, done, err := a.clusterClient()
	if err != nil {
		return err
	}
	defer done()
	rctx, cancel := a.rpcCtx(ctx)
	defer cancel()
	resp, err := cc.Status(rctx, &provledgerpb.ClusterStatusRequest{})
	if err != nil {
		return a.clusterErr("cluster status", err)
	}
	if a.json {
		b, err := protojson.MarshalOptions{Multiline: true, EmitUnpopulated: true}.Marshal(resp)
		if err != nil {
			return err
		}
		fmt.Fprintln(a.stdout, string(b))
		return nil
	}
	l := resp.GetLeader()
	if l.GetId() == "" {
		fmt.Fprintf(a.stdout, "leader:  none known (asked %s, node %s)\n", a.server, resp.GetNode().GetId())
	} else {
		fmt.Fprintf(a.stdout, "leader:  %s (API %s, Raft %s)\n", l.GetId(), l.GetApiAddress(), l.GetRaftAddress())
	}
	tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSTATE\tAPI\tRAFT\tTERM\tAPPLIED\tSIZE\tROOT\tCHECKPOINT")
	bad := 0
	for _, m := range resp.GetMembers() {
		st := m.GetStatus()
		if st == nil {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t-\t-\t-\t-\t%s\n", m.GetId(), "unreachable", orDash(m.GetApiAddress()), m.GetRaftAddress(), m.GetStatusError())
			continue
		}
		cp := st.GetCheckpoint()
		verdict := "not verified (no --log-key)"
		if v, err := a.verifierFor(cp.GetNote(), false); err != nil {
			return err
		} else if v != nil {
			if _, err := client.OpenCheckpoint(cp.GetNote(), v); err != nil {
				verdict, bad = "BAD SIGNATURE: "+err.Error(), bad+1
			} else {
				verdict = "signature verified"
			}
		}
		state := st.GetState()
		if st.GetError() != "" {
			state += " (failed: " + st.GetError() + ")"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%d\t%d\t%s\t%s\n", m.GetId(), state, orDash(m.GetApiAddress()), m.GetRaftAddress(),
			st.GetTerm(), st.GetLedgerAppliedIndex(), cp.GetSize(), shortRoot(cp.GetRootHash()), verdict)
	}
	tw.Flush()
	if bad > 0 {
		return exitError{code: exitFailed, err: fmt.Errorf("%d node(s) returned a checkpoint that does not verify with the log key", bad)}
	}
	return nil
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func shortRoot(h []byte) string {
	s := base64.StdEncoding.EncodeToString(h)
	if len(s) > 12 {
		return s[:12] + "…"
	}
	return s
}

func (a *app) printMembers(ms []*provledgerpb.ClusterMember) {
	tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tAPI\tRAFT\tVOTER\tLEADER")
	for _, m := range ms {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%v\t%v\n", m.GetId(), orDash(m.GetApiAddress()), m.GetRaftAddress(), m.GetVoter(), m.GetLeader())
	}
	tw.Flush()
}

func (a *app) clusterJoinCommand() *ffcli.Command {
	fs := flag.NewFlagSet("prov cluster join", flag.ContinueOnError)
	id := fs.String("node-id", "", "id of the node to add (its provd --node-id; required)")
	raftAddr := fs.String("raft-addr", "", "Raft address the other nodes dial (its provd --raft-advertise or --raft-addr; required)")
	apiAddr := fs.String("api-addr", "", "its gRPC API address (its provd --grpc-addr; required)")
	force := fs.Bool("force", false, "add the voter even if the leader cannot reach --raft-addr now (a voter that never answers costs the cluster a vote of its quorum)")
	return &ffcli.Command{
		Name:       "join",
		ShortUsage: "prov cluster join --node-id ID --raft-addr HOST:PORT --api-addr HOST:PORT [--force]",
		ShortHelp:  "add a node to the cluster as a voter",
		LongHelp: strings.TrimSpace(`
Adds a running provd (started with --node-id and no --bootstrap) as a
voter; it then catches up from the leader's log or a snapshot. Joining
again with the same id and Raft address only updates its API address.
provd --join ADDR does this by itself.

The leader refuses, before anything changes: a malformed id or address;
an id or Raft address that belongs to another member (remove that member
first); and a Raft address it cannot dial within 2s (start the node
first; --force adds it anyway).`),
		FlagSet: fs,
		Exec: func(ctx context.Context, args []string) error {
			if len(args) > 0 {
				return usagef("cluster join takes flags only, got %q", args)
			}
			if *id == "" || *raftAddr == "" || *apiAddr == "" {
				return usagef("cluster join: --node-id, --raft-addr and --api-addr are required")
			}
			cc, done, err := a.clusterClient()
			if err != nil {
				return err
			}
			defer done()
			rctx, cancel := a.rpcCtx(ctx)
			defer cancel()
			resp, err := cc.Join(rctx, &provledgerpb.JoinRequest{NodeId: *id, RaftAddress: *raftAddr, ApiAddress: *apiAddr, Force: *force})
			if err != nil {
				return a.clusterErr("cluster join "+*id, err)
			}
			fmt.Fprintf(a.stdout, "%s joined the cluster.\n", *id)
			a.printMembers(resp.GetMembers())
			return nil
		},
	}
}

func (a *app) clusterRemoveCommand() *ffcli.Command {
	fs := flag.NewFlagSet("prov cluster remove", flag.ContinueOnError)
	return &ffcli.Command{
		Name:       "remove",
		ShortUsage: "prov cluster remove NODE-ID",
		ShortHelp:  "remove a node from the cluster",
		LongHelp: strings.TrimSpace(`
Removes a member. Stop the removed node's provd (a removed follower is
not told). To bring it back, start it with an empty --data directory and
join it again (it catches up by snapshot). The leader and the only voter
cannot be removed: transfer the leadership first
(prov cluster transfer-leadership), then remove the old leader.`),
		FlagSet: fs,
		Exec: func(ctx context.Context, args []string) error {
			if len(args) != 1 {
				return usagef("cluster remove takes one node id (see prov cluster status)")
			}
			cc, done, err := a.clusterClient()
			if err != nil {
				return err
			}
			defer done()
			rctx, cancel := a.rpcCtx(ctx)
			defer cancel()
			resp, err := cc.Remove(rctx, &provledgerpb.RemoveRequest{NodeId: args[0]})
			if err != nil {
				return a.clusterErr("cluster remove "+args[0], err)
			}
			fmt.Fprintf(a.stdout, "%s removed from the cluster.\n", args[0])
			a.printMembers(resp.GetMembers())
			return nil
		},
	}
}

func (a *app) clusterTransferCommand() *ffcli.Command {
	fs := flag.NewFlagSet("prov cluster transfer-leadership", flag.ContinueOnError)
	return &ffcli.Command{
		Name:       "transfer-leadership",
		ShortUsage: "prov cluster transfer-leadership [NODE-ID]",
		ShortHelp:  "hand the leadership to a node (any up-to-date voter without NODE-ID)",
		FlagSet:    fs,
		Exec: func(ctx context.Context, args []string) error {
			if len(args) > 1 {
				return usagef("cluster transfer-leadership takes at most one node id")
			}
			id := ""
			if len(args) == 1 {
				id = args[0]
			}
			cc, done, err := a.clusterClient()
			if err != nil {
				return err
			}
			defer done()
			rctx, cancel := a.rpcCtx(ctx)
			defer cancel()
			resp, err := cc.TransferLeadership(rctx, &provledgerpb.TransferLeadershipRequest{NodeId: id})
			if err != nil {
				return a.clusterErr("cluster transfer-leadership", err)
			}
			l := resp.GetLeader()
			if l.GetId() == "" {
				fmt.Fprintln(a.stdout, "leadership transferred; no new leader known yet (check prov cluster status)")
				return nil
			}
			fmt.Fprintf(a.stdout, "leader is now %s (API %s)\n", l.GetId(), orDash(l.GetApiAddress()))
			return nil
		},
	}
}
