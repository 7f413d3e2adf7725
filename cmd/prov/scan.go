package main

import (
	"context"
	"flag"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/peterbourgon/ff/v3/ffcli"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/provledger/provledger/api/provledgerpb"
)

// scannerConn connects to the Scanner service of --server.
func (a *app) scannerConn() (provledgerpb.ScannerClient, func(), error) {
	conn, closeConn, err := a.serviceConn()
	if err != nil {
		return nil, nil, err
	}
	return provledgerpb.NewScannerClient(conn), closeConn, nil
}

func (a *app) scanCommand() *ffcli.Command {
	fs := flag.NewFlagSet("prov scan", flag.ContinueOnError)
	upTo := fs.Uint64("up-to", 0, "stop the pass at this log size (0: the latest checkpoint)")
	return &ffcli.Command{
		Name:       "scan",
		ShortUsage: "prov scan [--up-to N] [--json]",
		ShortHelp:  "run one anomaly-scanner pass on the node and print its findings",
		LongHelp: strings.TrimSpace(`
Asks the node (the leader, in a cluster) to scan the log from the
scanner's cursor up to the latest checkpoint: every entry goes through the
integrity, GitOps, lineage drift, volume and quality, freshness, cost and
time detectors, and each finding is appended to the log as a signed
application/vnd.provledger.finding+json entry. Prints the entries scanned
and the findings of this pass (a pass over entries already scanned finds
nothing: findings are never reported twice). docs/scanner.md describes the
detectors.`),
		FlagSet: fs,
		Exec: func(ctx context.Context, args []string) error {
			if len(args) != 0 {
				return usagef("scan takes no arguments")
			}
			sc, closeConn, err := a.scannerConn()
			if err != nil {
				return err
			}
			defer closeConn()
			// A pass over a long log may take a while: no --timeout here
			// beyond the one the user asks for with a signal.
			resp, err := sc.Scan(ctx, &provledgerpb.ScanRequest{UpTo: *upTo})
			if err != nil {
				return err
			}
			if a.json {
				return a.printJSON(resp)
			}
			fmt.Fprintf(a.stdout, "scanned entries %d to %d (%d of them the scanner's own findings, skipped): %d finding(s)\n", resp.GetFrom(), resp.GetTo(), resp.GetSkipped(), len(resp.GetFindings()))
			a.printFindings(resp.GetFindings())
			return nil
		},
	}
}

func (a *app) findingsCommand() *ffcli.Command {
	fs := flag.NewFlagSet("prov findings", flag.ContinueOnError)
	since := fs.String("since", "", "only findings whose time is not before this: RFC 3339, a date, or a duration back from now (24h, 7d)")
	severity := fs.String("severity", "", "only findings at least this severe: info, low, medium, high, critical")
	detector := fs.String("detector", "", "only this detector: integrity, gitops, lineage, volume, freshness, cost, time")
	kind := fs.String("kind", "", "only this kind, e.g. cost.budget")
	after := fs.Int64("after", -1, "only findings stored at indexes above this (paging)")
	limit := fs.Uint("limit", 1000, "at most this many findings (≤ 10000)")
	return &ffcli.Command{
		Name:       "findings",
		ShortUsage: "prov findings [--since T] [--severity S] [--detector D] [--kind K] [--json]",
		ShortHelp:  "list the anomaly scanner's findings",
		LongHelp: strings.TrimSpace(`
Lists the findings the node's scanner appended to the log, oldest first:
the index of the finding's entry, its time (the integration time of the
entry that triggered it), severity, kind, subject and a one-line
explanation. Each finding is an entry of the log: prov get INDEX shows it
with its proof. --json prints the findings as JSON, each with the finding
payload exactly as signed.`),
		FlagSet: fs,
		Exec: func(ctx context.Context, args []string) error {
			if len(args) != 0 {
				return usagef("findings takes no arguments (filters are flags)")
			}
			req := &provledgerpb.ListFindingsRequest{MinSeverity: *severity, Detector: *detector, Kind: *kind, Limit: uint32(*limit)}
			if *since != "" {
				ts, err := parseSince(*since, time.Now())
				if err != nil {
					return err
				}
				req.Since = ts
			}
			if *after >= 0 {
				req.HasAfter, req.AfterIndex = true, uint64(*after)
			}
			sc, closeConn, err := a.scannerConn()
			if err != nil {
				return err
			}
			defer closeConn()
			rctx, cancel := a.rpcCtx(ctx)
			defer cancel()
			resp, err := sc.ListFindings(rctx, req)
			if err != nil {
				return err
			}
			if a.json {
				return a.printJSON(resp)
			}
			a.printFindings(resp.GetFindings())
			fmt.Fprintf(a.stdout, "%d finding(s); the scanner has read the log up to entry %d of %d\n", len(resp.GetFindings()), resp.GetCursor(), resp.GetLogSize())
			return nil
		},
	}
}

// parseSince reads an RFC 3339 time, a date, or a duration back from now
// ("24h", "7d").
func parseSince(s string, now time.Time) (*timestamppb.Timestamp, error) {
	if strings.HasSuffix(s, "d") {
		var n int
		if _, err := fmt.Sscanf(s, "%dd", &n); err == nil && n >= 0 && fmt.Sprintf("%dd", n) == s {
			return timestamppb.New(now.AddDate(0, 0, -n)), nil
		}
	}
	if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		return timestamppb.New(now.Add(-d)), nil
	}
	ts, err := parseTime("since", s)
	if err != nil {
		return nil, usagef("--since %q: give an RFC 3339 time, a date (2026-11-26) or a duration back from now (24h, 7d)", s)
	}
	return ts, nil
}

func (a *app) printFindings(fs []*provledgerpb.Finding) {
	if len(fs) == 0 {
		return
	}
	tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "INDEX\tTIME\tSEVERITY\tKIND\tSUBJECT\tMESSAGE")
	for _, f := range fs {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\n", f.GetIndex(), f.GetTime().AsTime().UTC().Format(time.RFC3339), f.GetSeverity(), f.GetKind(), f.GetSubject(), f.GetMessage())
	}
	tw.Flush()
}

func (a *app) forecastCommand() *ffcli.Command {
	fs := flag.NewFlagSet("prov forecast", flag.ContinueOnError)
	series := fs.String("series", "", "only series whose name contains this, e.g. tag:team=analytics, service:, job:airflow-prod:")
	daily := fs.Bool("daily", false, "print every forecast day with its prediction interval")
	return &ffcli.Command{
		Name:       "forecast",
		ShortUsage: "prov forecast [--series S] [--daily] [--json]",
		ShortHelp:  "forecast the next 30 days of cost per series, with budget burn",
		LongHelp: strings.TrimSpace(`
Forecasts the daily cost of each series the scanner tracks (service:NAME,
tag:KEY=VALUE, job:NS:NAME; one per currency) for the next 30 days with a
95 % prediction interval: additive Holt-Winters with a weekly season and a
damped trend, fitted on the complete days seen (docs/scanner.md). For a
series with a monthly budget in policy, prints the month-to-date spend and
the day on which, at the forecast rate, the budget is exhausted.`),
		FlagSet: fs,
		Exec: func(ctx context.Context, args []string) error {
			if len(args) != 0 {
				return usagef("forecast takes no arguments")
			}
			sc, closeConn, err := a.scannerConn()
			if err != nil {
				return err
			}
			defer closeConn()
			rctx, cancel := a.rpcCtx(ctx)
			defer cancel()
			resp, err := sc.ForecastCost(rctx, &provledgerpb.ForecastCostRequest{Series: *series})
			if err != nil {
				return err
			}
			if a.json {
				return a.printJSON(resp)
			}
			a.printForecast(resp, *daily)
			return nil
		},
	}
}

func (a *app) printForecast(resp *provledgerpb.ForecastCostResponse, daily bool) {
	if len(resp.GetSeries()) == 0 {
		fmt.Fprintln(a.stdout, "no cost series with two weeks of complete days yet")
		return
	}
	tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "SERIES\tCURRENCY\tHISTORY\tNEXT %d DAYS\t95%% RANGE\tBUDGET\tMONTH TO DATE\tEXHAUSTED\n", resp.GetHorizon())
	for _, s := range resp.GetSeries() {
		var lo, hi float64
		for _, d := range s.GetDays() {
			lo += d.GetLow()
			hi += d.GetHigh()
		}
		budget, exhausted := "-", "-"
		if s.GetHasBudget() {
			budget = fmt.Sprintf("%.2f", s.GetBudget())
			exhausted = "not within the horizon"
			if s.GetExhausted() != nil {
				exhausted = s.GetExhausted().AsTime().UTC().Format(time.DateOnly)
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%dd\t%.2f\t%.2f–%.2f\t%s\t%.2f\t%s\n", s.GetSeries(), s.GetCurrency(), s.GetHistoryDays(), s.GetTotal(), lo, hi, budget, s.GetMonthToDate(), exhausted)
	}
	tw.Flush()
	for _, s := range resp.GetSeries() {
		if s.GetHasBudget() && s.GetExhausted() != nil {
			fmt.Fprintf(a.stdout, "at this rate the budget of %s (%.2f %s a month) is exhausted on %s\n", s.GetSeries(), s.GetBudget(), s.GetCurrency(), s.GetExhausted().AsTime().UTC().Format(time.DateOnly))
		}
	}
	if !daily {
		return
	}
	for _, s := range resp.GetSeries() {
		fmt.Fprintf(a.stdout, "\n%s (%s), %s; σ %.2f, α %.2f β %.2f γ %.2f\n", s.GetSeries(), s.GetCurrency(), s.GetMethod(), s.GetSigma(), s.GetAlpha(), s.GetBeta(), s.GetGamma())
		tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "DAY\tFORECAST\tLOW\tHIGH")
		for _, d := range s.GetDays() {
			fmt.Fprintf(tw, "%s\t%.2f\t%.2f\t%.2f\n", d.GetDay().AsTime().UTC().Format(time.DateOnly), d.GetMean(), d.GetLow(), d.GetHigh())
		}
		tw.Flush()
	}
}
