package runner

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/perf/benchfmt"

	"github.com/provledger/provledger/bench/suite"
)

// GoBench is one `go test -bench` run the suite drives: a benchmark of
// another package (audit, scanner, lineage, snapshot) run as its own
// process, its output parsed with golang.org/x/perf/benchfmt.
type GoBench struct {
	// Scenario is the suite scenario its results belong to.
	Scenario string
	// Pkg is the package ("./cmd/prov"); Bench the -bench regexp.
	Pkg, Bench string
	// Args are extra test flags (after the package), Env extra
	// environment variables (KEY=VALUE).
	Args, Env []string
	// Params are recorded on every result.
	Params map[string]string
	// Bound, with BoundMetric, names the limit that bounds the results
	// whose metric BoundMetric exists and, if BoundSuffix is set, whose
	// name ends with it (e.g. only the scanner's "/verify" pass verifies
	// signatures).
	Bound, BoundMetric, BoundSuffix string
	// Timeout bounds the whole go test run.
	Timeout time.Duration
}

// killGrace is how long past its -timeout a go test run may take before
// the suite kills it.
var killGrace = time.Minute

// Command is the go test command line of b (for logs and docs).
func (b *GoBench) Command(goCmd string) []string {
	args := []string{goCmd, "test", "-run", "^$", "-bench", b.Bench, "-benchtime", "1x", "-count", "1", "-timeout", b.Timeout.String(), b.Pkg}
	return append(args, b.Args...)
}

// Run executes the benchmark in dir and converts its results. The test
// binary's output is copied to log.
func (b *GoBench) Run(ctx context.Context, goCmd, dir string, log io.Writer) ([]suite.Result, error) {
	argv := b.Command(goCmd)
	// go test's own -timeout does not always end a benchmark that hangs
	// (seen with a generator looping forever): the suite bounds the whole
	// process group (go and the test binary it starts) itself.
	ctx, cancel := context.WithTimeout(ctx, b.Timeout+killGrace)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 10 * time.Second
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), b.Env...)
	var out bytes.Buffer
	lw := &lockedWriter{w: log} // stdout and stderr are copied by two goroutines
	cmd.Stdout = io.MultiWriter(&out, lw)
	cmd.Stderr = lw
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("%w (killed after %v)", err, b.Timeout+killGrace)
		}
		return nil, fmt.Errorf("%s: %w: %s", strings.Join(append(b.Env, argv...), " "), err, tail(out.String(), 6))
	}
	return ParseGoBench(&out, b)
}

// lockedWriter serializes writes to w.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// tail returns the last n non-empty lines of s, joined with " / " (what a
// failed go test printed last: its failure, usually).
func tail(s string, n int) string {
	var lines []string
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			lines = append(lines, l)
		}
	}
	return strings.Join(lines[max(0, len(lines)-n):], " / ")
}

// ErrNoBenchmarks is returned by ParseGoBench when the output holds no
// benchmark result line.
var ErrNoBenchmarks = errors.New("no benchmark results in the go test output")

// ErrBadValue is returned by ParseGoBench for a NaN or infinite figure.
var ErrBadValue = errors.New("a benchmark reported a value that is not a finite number")

var gomaxprocsSuffix = regexp.MustCompile(`-\d+$`)

// ParseGoBench reads `go test -bench` output (the Go benchmark format)
// and returns one suite result per benchmark line, named
// Scenario/<benchmark name without "Benchmark" and the -GOMAXPROCS
// suffix>, with one metric per unit as the benchmark printed it.
// Repeated lines of one benchmark (-count > 1) become samples of one
// result, its value their median.
func ParseGoBench(r io.Reader, b *GoBench) ([]suite.Result, error) {
	rd := benchfmt.NewReader(r, b.Pkg)
	var out []suite.Result
	index := map[string]int{}
	for rd.Scan() {
		res, ok := rd.Result().(*benchfmt.Result)
		if !ok {
			continue // a syntax error or unit metadata: not a result
		}
		name := strings.TrimPrefix(gomaxprocsSuffix.ReplaceAllString(res.Name.String(), ""), "Benchmark")
		if name == "" {
			continue
		}
		full := b.Scenario + "/" + name
		i, seen := index[full]
		if !seen {
			i = len(out)
			index[full] = i
			out = append(out, suite.Result{Scenario: b.Scenario, Name: full, Params: b.Params, Metrics: map[string]suite.Metric{}, OK: true})
		}
		for _, v := range res.Values {
			unit, val := v.Unit, v.Value
			if v.OrigUnit != "" {
				unit, val = v.OrigUnit, v.OrigValue
			}
			if unit == "ns/op" || unit == "B/op" || unit == "allocs/op" {
				continue // one iteration of a whole scenario: not a figure
			}
			if math.IsNaN(val) || math.IsInf(val, 0) {
				return nil, fmt.Errorf("%w: %s reported %v %s", ErrBadValue, full, val, unit)
			}
			m := out[i].Metrics[unit]
			m.Unit, m.Better = unit, direction(unit)
			m.Samples = append(m.Samples, val)
			out[i].Metrics[unit] = m
		}
	}
	if err := rd.Err(); err != nil {
		return nil, fmt.Errorf("parse go test output: %w", err)
	}
	if len(out) == 0 {
		return nil, ErrNoBenchmarks
	}
	for i := range out {
		for k, m := range out[i].Metrics {
			m.Value = median(m.Samples)
			if len(m.Samples) == 1 {
				m.Samples = nil
			}
			out[i].Metrics[k] = m
		}
		if _, ok := out[i].Metrics[b.BoundMetric]; ok && b.Bound != "" && strings.HasSuffix(out[i].Name, b.BoundSuffix) {
			out[i].Bound, out[i].BoundMetric = b.Bound, b.BoundMetric
		}
	}
	return out, nil
}

// direction guesses from a benchmark's unit whether more is better:
// rates (x/s) are, times and CPU per item are not, counts and sizes are
// informational.
func direction(unit string) string {
	u := strings.ToLower(unit)
	switch {
	case strings.Contains(u, "/s"):
		return suite.HigherIsBetter
	case strings.HasSuffix(u, "-ms"), strings.HasSuffix(u, "-s"), strings.HasSuffix(u, "-µs"), strings.HasSuffix(u, "-us"),
		strings.Contains(u, "µs/"), strings.Contains(u, "us/"), strings.Contains(u, "ms/"), strings.HasSuffix(u, "sec/op"):
		return suite.LowerIsBetter
	}
	return ""
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := append([]float64(nil), xs...)
	for i := 1; i < len(s); i++ { // insertion sort: a handful of samples
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
