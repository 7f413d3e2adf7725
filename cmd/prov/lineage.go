package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/peterbourgon/ff/v3/ffcli"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/provledger/provledger/api/provledgerpb"
	"github.com/provledger/provledger/api/queryservice/answerpb"
	"github.com/provledger/provledger/crypto/keys"
	"github.com/provledger/provledger/query/answer"
)

// queryFlags are the flags every lineage and cost query takes.
type queryFlags struct {
	depth, budget uint
	asOfSize      uint64
	asOfTime      string
	prove         bool
	noEnvelopes   bool
	format        string
	out           string
	trust         string
	namespaces    stringList
}

// stringList is a flag that may be given several times (namespaces may
// hold commas, so one value is one namespace).
type stringList []string

func (l *stringList) String() string { return strings.Join(*l, " ") }

// Set implements flag.Value.
func (l *stringList) Set(v string) error {
	if v == "" {
		return errors.New("empty namespace")
	}
	*l = append(*l, v)
	return nil
}

// tagList is a repeatable KEY=VALUE flag.
type tagList []string

func (l *tagList) String() string { return strings.Join(*l, " ") }

// Set implements flag.Value.
func (l *tagList) Set(v string) error {
	if k, _, ok := strings.Cut(v, "="); !ok || k == "" {
		return fmt.Errorf("tag filter %q: write it KEY=VALUE", v)
	}
	*l = append(*l, v)
	return nil
}

func (q *queryFlags) register(fs *flag.FlagSet, defaultFormat string) {
	fs.UintVar(&q.depth, "depth", 0, "traversal depth in process steps (jobs or runs; columns: derivation steps); 0: the server's default (5; impact and cost: unlimited)")
	fs.UintVar(&q.budget, "budget", 0, "most relations the query may read; 0: the server's default (10000). An answer cut short says so")
	fs.Uint64Var(&q.asOfSize, "as-of-size", 0, "answer as of this log size (the entries below it); 0: the latest")
	fs.StringVar(&q.asOfTime, "as-of-time", "", "answer as of the entries integrated at or before this time (RFC 3339, or YYYY-MM-DD for midnight UTC)")
	fs.BoolVar(&q.prove, "prove", false, "attach each entry's record and inclusion proof against one checkpoint, and verify them here with --log-key")
	fs.BoolVar(&q.noEnvelopes, "no-envelopes", false, "with --prove: leave the envelopes out (smaller; inclusion is proven, content is not checked)")
	fs.StringVar(&q.format, "format", defaultFormat, "output: "+strings.Join(answerFormats, ", ")+" (prov = PROV-JSON; json is what verify-answer reads)")
	fs.StringVar(&q.out, "out", "", "write the output to this file instead of standard output")
	fs.StringVar(&q.trust, "trust", "", "with --prove: also re-verify every envelope's DSSE signatures with the PEM public keys in this file")
	fs.Var(&q.namespaces, "namespace", "keep the traversal inside this OpenLineage namespace (repeat the flag for several; list the jobs' namespaces too): datasets, columns and jobs of other namespaces are left out and not walked through")
}

func parseTime(flagName, s string) (*timestamppb.Timestamp, error) {
	if s == "" {
		return nil, nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return timestamppb.New(t), nil
		}
	}
	return nil, usagef("--%s %q: give an RFC 3339 time (2026-11-26T10:00:00Z) or a date (2026-11-26)", flagName, s)
}

func (q *queryFlags) options() (*provledgerpb.QueryOptions, error) {
	if q.asOfSize != 0 && q.asOfTime != "" {
		return nil, usagef("give --as-of-size or --as-of-time, not both")
	}
	t, err := parseTime("as-of-time", q.asOfTime)
	if err != nil {
		return nil, err
	}
	if q.noEnvelopes && !q.prove {
		return nil, usagef("--no-envelopes only makes sense with --prove")
	}
	if q.depth > 1<<31 || q.budget > 1<<31 {
		return nil, usagef("--depth and --budget must be below 2^31")
	}
	return &provledgerpb.QueryOptions{AsOfSize: q.asOfSize, AsOfTime: t, Depth: uint32(q.depth), Budget: uint32(q.budget), Prove: q.prove, NoEnvelopes: q.noEnvelopes, Namespaces: q.namespaces}, nil
}

// nodeKinds maps the node words the CLI accepts to kinds and part names.
var nodeKinds = []struct {
	words []string
	kind  string
	parts []string
}{
	{[]string{"dataset"}, "dataset", []string{"NAMESPACE", "NAME"}},
	{[]string{"version", "datasetVersion"}, "datasetVersion", []string{"NAMESPACE", "NAME", "VERSION"}},
	{[]string{"job"}, "job", []string{"NAMESPACE", "NAME"}},
	{[]string{"jobVersion"}, "jobVersion", []string{"NAMESPACE", "NAME", "CODE_VERSION"}},
	{[]string{"run"}, "run", []string{"RUN_ID"}},
	{[]string{"column", "field"}, "column", []string{"NAMESPACE", "NAME", "FIELD"}},
}

const nodeUsage = "dataset NS NAME | version NS NAME VERSION | job NS NAME | run RUN_ID | column NS NAME FIELD"

// parseNode reads one node (a kind word and its parts) from args.
func parseNode(args []string) (*provledgerpb.NodeRef, []string, error) {
	if len(args) == 0 {
		return nil, nil, usagef("missing node: give %s", nodeUsage)
	}
	for _, k := range nodeKinds {
		for _, w := range k.words {
			if !strings.EqualFold(args[0], w) {
				continue
			}
			if len(args)-1 < len(k.parts) {
				return nil, nil, usagef("a %s is named by %s", args[0], strings.Join(k.parts, " "))
			}
			return &provledgerpb.NodeRef{Kind: k.kind, Parts: args[1 : 1+len(k.parts)]}, args[1+len(k.parts):], nil
		}
	}
	return nil, nil, usagef("%q is not a node kind: give %s", args[0], nodeUsage)
}

// queryConn connects to the Query service of --server.
func (a *app) queryConn() (provledgerpb.QueryClient, func(), error) {
	conn, closeConn, err := a.serviceConn()
	if err != nil {
		return nil, nil, err
	}
	return provledgerpb.NewQueryClient(conn), closeConn, nil
}

var lineageQueries = []string{"upstream", "downstream", "impact", "paths", "history", "columns"}

func (a *app) lineageCommand() *ffcli.Command {
	fs := flag.NewFlagSet("prov lineage", flag.ContinueOnError)
	var q queryFlags
	q.register(fs, "table")
	maxPaths := fs.Uint("max-paths", 0, "paths: most paths to list (0: the server's default, 100)")
	winFrom := fs.String("from", "", "history: only versions whose event time is at or after this time (RFC 3339 or YYYY-MM-DD)")
	winTo := fs.String("to", "", "history: only versions whose event time is before this time")
	return &ffcli.Command{
		Name:       "lineage",
		ShortUsage: "prov lineage upstream|downstream|impact|paths|history|columns NODE [NODE] [flags]",
		ShortHelp:  "ask what fed a dataset, what it feeds, its versions, its column lineage",
		LongHelp: strings.TrimSpace(`
Asks the node's Query service about the lineage graph built from the
OpenLineage events and in-toto provenance in the log, as of any log size or
time. NODE is one of:

  dataset NAMESPACE NAME          e.g. dataset s3://lake raw/orders
  version NAMESPACE NAME VERSION  a dataset version
  job NAMESPACE NAME
  run RUN_ID
  column NAMESPACE NAME FIELD

  prov lineage upstream dataset snowflake://acme ANALYTICS.PUBLIC.DAILY_REVENUE
  prov lineage downstream job airflow-prod daily_orders.extract --depth 2
  prov lineage impact column postgres://db:5432 shop.public.orders amount
  prov lineage paths dataset s3://lake raw/orders dataset s3://models churn/model.onnx
  prov lineage history dataset s3://lake raw/orders --as-of-time 2026-11-27
  prov lineage columns dataset s3://lake raw/orders --format dot | dot -Tsvg > cols.svg
  prov lineage upstream run 0193a6f2-7c1e-7d3a-9b2e-5f4c3d2e1a02 --prove --format json --out answer.json
  prov verify-answer --log-key ./data/log.pub answer.json

Upstream and downstream walk datasets and jobs (from a dataset or job),
dataset versions and runs (from a version or run), or columns. Impact is
everything downstream, however far. Paths lists every simple path between
two nodes, shortest first. Every answer lists the log entries it rests on
and says when the depth or budget cut it short. With --prove each entry
comes with its inclusion proof against one checkpoint; prov checks them
(and each fact against its entry's signed payload) with --log-key.

Formats: table (default), tree, json, dot (Graphviz), mermaid, prov
(W3C PROV-JSON of the subgraph). --json means --format json.`),
		FlagSet: fs,
		Exec: func(ctx context.Context, args []string) error {
			if len(args) == 0 {
				return usagef("lineage needs a query: %s", strings.Join(lineageQueries, ", "))
			}
			kind := strings.ToLower(args[0])
			known := false
			for _, k := range lineageQueries {
				known = known || k == kind
			}
			if !known {
				return usagef("lineage %q: the queries are %s", args[0], strings.Join(lineageQueries, ", "))
			}
			n, rest, err := parseNode(args[1:])
			if err != nil {
				return err
			}
			var to *provledgerpb.NodeRef
			if kind == "paths" {
				if to, rest, err = parseNode(rest); err != nil {
					return usagef("paths needs two nodes: %v", err)
				}
			}
			if len(rest) > 0 {
				return usagef("unexpected arguments after the node: %q", rest)
			}
			if kind != "paths" && *maxPaths != 0 {
				return usagef("--max-paths is for paths")
			}
			if kind != "history" && (*winFrom != "" || *winTo != "") {
				return usagef("--from and --to are for history (and prov cost)")
			}
			opts, err := q.options()
			if err != nil {
				return err
			}
			if opts.From, err = parseTime("from", *winFrom); err != nil {
				return err
			}
			if opts.To, err = parseTime("to", *winTo); err != nil {
				return err
			}
			format, err := a.formatOf(fs, &q)
			if err != nil {
				return err
			}
			return a.runQuery(ctx, &q, format, func(ctx context.Context, c provledgerpb.QueryClient) (*provledgerpb.Answer, error) {
				nq := &provledgerpb.NodeQuery{Node: n, Options: opts}
				switch kind {
				case "upstream":
					return c.Upstream(ctx, nq)
				case "downstream":
					return c.Downstream(ctx, nq)
				case "impact":
					return c.Impact(ctx, nq)
				case "history":
					return c.History(ctx, nq)
				case "columns":
					return c.Columns(ctx, nq)
				}
				return c.Paths(ctx, &provledgerpb.PathsQuery{From: n, To: to, MaxPaths: uint32(*maxPaths), Options: opts})
			})
		},
	}
}

var costDims = "service, provider, resource, region, sku, subaccount, category, tag:KEY, job, dataset, run"

func (a *app) costCommand() *ffcli.Command {
	fs := flag.NewFlagSet("prov cost", flag.ContinueOnError)
	var q queryFlags
	q.register(fs, "table")
	groupBy := fs.String("group-by", "", "roll up by "+costDims)
	from := fs.String("from", "", "only rows whose ChargePeriodStart is at or after this time (RFC 3339 or YYYY-MM-DD)")
	to := fs.String("to", "", "only rows whose ChargePeriodStart is before this time")
	var tags tagList
	fs.Var(&tags, "tag", "only rows whose FOCUS Tags hold KEY=VALUE (repeat the flag: every one must hold)")
	return &ffcli.Command{
		Name:       "cost",
		ShortUsage: "prov cost [--group-by DIM] [--from T] [--to T] [--tag KEY=VALUE] [NODE] [flags]",
		ShortHelp:  "roll up FOCUS cost records, or the cost to produce a dataset",
		LongHelp: strings.TrimSpace(`
Sums the FOCUS cost records in the log (application/vnd.provledger.cost+json)
exactly, per currency, as of any log size or time.

  prov cost --group-by service
  prov cost --group-by tag:team --from 2026-11-01 --to 2026-12-01
  prov cost --group-by service --tag team=revenue --tag env=prod
  prov cost --group-by job
  prov cost dataset s3://models churn/model.onnx
  prov cost version s3://lake raw/orders orders-2026-11-26 --prove

With --group-by, rows are grouped by a FOCUS column, a tag, or the job,
dataset or run they are linked to (x_RunId, x_JobNamespace/x_JobName, or
x_LinkTag matching an OpenLineage tag); a group marked (shared) has rows
that also count elsewhere. With a NODE (a dataset: its latest completed
version; a version; a run), the answer is the cost to produce it: the rows
linked to its run and to every run upstream of it, each counted once, and
lists the rows it summed.`),
		FlagSet: fs,
		Exec: func(ctx context.Context, args []string) error {
			var n *provledgerpb.NodeRef
			if len(args) > 0 {
				var rest []string
				var err error
				if n, rest, err = parseNode(args); err != nil {
					return err
				}
				if len(rest) > 0 {
					return usagef("unexpected arguments after the node: %q", rest)
				}
			}
			if n != nil && *groupBy != "" {
				return usagef("give --group-by or a node, not both")
			}
			opts, err := q.options()
			if err != nil {
				return err
			}
			opts.Tags = tags
			f, err := parseTime("from", *from)
			if err != nil {
				return err
			}
			t, err := parseTime("to", *to)
			if err != nil {
				return err
			}
			format, err := a.formatOf(fs, &q)
			if err != nil {
				return err
			}
			return a.runQuery(ctx, &q, format, func(ctx context.Context, c provledgerpb.QueryClient) (*provledgerpb.Answer, error) {
				return c.Cost(ctx, &provledgerpb.CostQuery{GroupBy: *groupBy, Node: n, From: f, To: t, Options: opts})
			})
		},
	}
}

// formatOf is --format, or json when --json was given and --format not.
func (a *app) formatOf(fs *flag.FlagSet, q *queryFlags) (string, error) {
	given := false
	fs.Visit(func(f *flag.Flag) { given = given || f.Name == "format" })
	format := strings.ToLower(q.format)
	if a.json && !given {
		format = "json"
	}
	for _, f := range answerFormats {
		if f == format {
			return format, nil
		}
	}
	return "", usagef("--format %q: use one of %s", q.format, strings.Join(answerFormats, ", "))
}

// runQuery calls the Query service, verifies a proven answer with the log
// key, and writes the answer in format.
func (a *app) runQuery(ctx context.Context, q *queryFlags, format string, call func(context.Context, provledgerpb.QueryClient) (*provledgerpb.Answer, error)) error {
	var kr *keys.Keyring
	if q.trust != "" {
		if !q.prove {
			return usagef("--trust checks the signatures of a proven answer: add --prove")
		}
		var err error
		if kr, err = loadTrust(q.trust); err != nil {
			return err
		}
	}
	if q.prove {
		if _, err := a.loadLogKey(false); err != nil {
			return err
		}
	}
	c, closeConn, err := a.queryConn()
	if err != nil {
		return err
	}
	defer closeConn()
	rctx, cancel := a.rpcCtx(ctx)
	defer cancel()
	pa, err := call(rctx, c)
	if err != nil {
		return err
	}
	ans, err := answerpb.FromProto(pa)
	if err != nil {
		return a.failed("answer", err)
	}
	var verified string
	if q.prove {
		rep, err := a.verifyAnswer(ans, kr)
		if err != nil {
			return err
		}
		if rep != nil {
			verified = reportLine(rep)
		}
	}
	var buf bytes.Buffer
	if err := render(&buf, ans, format); err != nil {
		return err
	}
	human := format == "table" || format == "tree"
	if verified != "" && human {
		fmt.Fprintln(&buf, verified)
	}
	if q.out != "" {
		if err := writeFileAtomic(q.out, buf.Bytes(), 0o644); err != nil {
			return fmt.Errorf("--out: %w", err)
		}
		fmt.Fprintf(a.stderr, "wrote the %s answer to %s\n", format, q.out)
		if verified != "" {
			fmt.Fprintln(a.stderr, verified)
		}
		return nil
	}
	if _, err := a.stdout.Write(buf.Bytes()); err != nil {
		return err
	}
	if verified != "" && !human {
		fmt.Fprintln(a.stderr, verified)
	}
	return nil
}

// verifyAnswer checks a proven answer with the log key. Without a log key
// it warns and returns a nil report.
func (a *app) verifyAnswer(ans *answer.Answer, kr *keys.Keyring) (*answer.Report, error) {
	if ans.Proof == nil {
		return nil, a.failed("answer", errors.New("asked for a proof, the server sent none"))
	}
	v, err := a.verifierFor([]byte(ans.Proof.Checkpoint), false)
	if err != nil {
		return nil, a.failed("answer", err)
	}
	if v == nil {
		a.warnUnverified("answer")
		return nil, nil
	}
	rep, err := answer.Verify(ans, v, answer.VerifyOptions{Keyring: kr})
	if err != nil {
		return nil, a.failed("answer", err)
	}
	return rep, nil
}

func reportLine(rep *answer.Report) string {
	s := fmt.Sprintf("verified: %d entries proven in log %s at tree size %d (checkpoint signed by the log key); %d facts checked against %d signed payloads",
		rep.Entries, rep.Checkpoint.Origin, rep.Checkpoint.Size, rep.Facts, rep.ContentChecked)
	if rep.SignaturesChecked > 0 {
		s += fmt.Sprintf("; %d envelopes' signatures re-verified", rep.SignaturesChecked)
	}
	if len(rep.Unchecked) > 0 {
		s += fmt.Sprintf("; %d facts NOT checked (their envelopes are not in the proof)", len(rep.Unchecked))
	}
	return s
}

func (a *app) verifyAnswerCommand() *ffcli.Command {
	fs := flag.NewFlagSet("prov verify-answer", flag.ContinueOnError)
	trust := fs.String("trust", "", "also re-verify every envelope's DSSE signatures with the PEM public keys in this file")
	return &ffcli.Command{
		Name:       "verify-answer",
		ShortUsage: "prov verify-answer --log-key FILE [--trust FILE] ANSWER.json|-",
		ShortHelp:  "verify a saved, proven lineage or cost answer offline",
		LongHelp: strings.TrimSpace(`
Checks an answer saved with --prove --format json, with no server: the
checkpoint is signed by --log-key (required); every entry the answer rests
on is proven included in that checkpoint's tree; every node, edge, version
and cost row cites a proven entry, and — where the proof carries the
envelope — that entry's envelope matches its record and its signed payload
asserts the fact; cost totals add up. With --trust, every envelope's
signatures are re-verified too. An answer cannot prove it is complete,
only that everything it says is in the log.

Exit codes: 0 verified; 1 verification failed (the message says what);
64 bad flags or arguments.`),
		FlagSet: fs,
		Exec: func(ctx context.Context, args []string) error {
			if len(args) != 1 {
				return usagef("verify-answer takes one argument: the answer file (- for standard input)")
			}
			kr, err := loadTrust(*trust)
			if err != nil {
				return err
			}
			if _, err := a.loadLogKey(true); err != nil {
				return err
			}
			var b []byte
			if args[0] == "-" {
				b, err = io.ReadAll(io.LimitReader(a.stdin, 1<<30))
			} else {
				b, err = os.ReadFile(args[0])
			}
			if err != nil {
				return usagef("read the answer: %v", err)
			}
			dec := json.NewDecoder(bytes.NewReader(b))
			dec.DisallowUnknownFields()
			var ans answer.Answer
			if err := dec.Decode(&ans); err != nil {
				return a.failed("answer "+args[0], fmt.Errorf("not an answer in JSON (save one with --prove --format json): %w", err))
			}
			rep, err := a.verifyAnswer(&ans, kr)
			if err != nil {
				return err
			}
			if a.json {
				return a.printJSON(map[string]any{"verified": true, "report": rep})
			}
			fmt.Fprintf(a.stdout, "%s (%s, as of size %d)\n", reportLine(rep), ans.Query.Kind, ans.Size)
			for _, u := range rep.Unchecked {
				fmt.Fprintf(a.stdout, "  not checked: %s\n", u)
			}
			return nil
		},
	}
}
