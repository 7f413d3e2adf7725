package loadgen

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/provledger/provledger/api/client"
)

// ErrHelp is returned by the Parse functions when -h or --help was asked
// (the usage has then been written).
var ErrHelp = flag.ErrHelp

// Environment variable prefixes: every append flag --name can be set with
// PROVLEDGER_BENCH_NAME, every limits flag with PROVLEDGER_BENCH_LIMITS_NAME
// (dashes become underscores). A flag given on the command line wins.
const (
	AppendEnvPrefix = "PROVLEDGER_BENCH_"
	LimitsEnvPrefix = "PROVLEDGER_BENCH_LIMITS_"
)

// Modes of the append scenario.
const (
	ModeUnary  = "unary"
	ModeStream = "stream"
	ModeBatch  = "batch"
)

// Verification modes.
const (
	VerifyNone   = "none"
	VerifySample = "sample"
	VerifyAll    = "all"
)

// Signing algorithms the load generator can use.
var Algs = []string{"ed25519", "ecdsa-p256"}

// AppendConfig is every setting of the append scenario.
type AppendConfig struct {
	// Server is the node's gRPC address (ignored with Spawn).
	Server string `json:"server"`
	// Spawn starts `Provd --dev` on free loopback ports with a temporary
	// data directory under DataRoot, and stops it at the end.
	Spawn     bool     `json:"spawn"`
	Provd     string   `json:"provd,omitempty"`
	ProvdArgs []string `json:"provd_args,omitempty"`
	DataRoot  string   `json:"data_root,omitempty"`
	KeepData  bool     `json:"keep_data,omitempty"`
	// LogKey is the log's public key for receipt verification: a PEM file
	// or a C2SP note verifier key. With Spawn it defaults to DATA/log.pub.
	LogKey string `json:"log_key,omitempty"`

	Clients     int           `json:"clients"`
	Conns       int           `json:"conns"`
	Duration    time.Duration `json:"-"`
	Count       int           `json:"count,omitempty"`
	Warmup      time.Duration `json:"-"`
	Size        int           `json:"size"`
	Alg         string        `json:"alg"`
	Keys        int           `json:"keys"`
	Mode        string        `json:"mode"`
	Inflight    int           `json:"inflight,omitempty"`
	BatchSize   int           `json:"batch_size,omitempty"`
	Namespace   string        `json:"namespace"`
	PayloadType string        `json:"payload_type"`
	Verify      string        `json:"verify"`
	VerifyEvery int           `json:"verify_every,omitempty"`
	Presign     int           `json:"presign"`
	Calibrate   time.Duration `json:"-"`
	Out         string        `json:"out,omitempty"`
	// CPUProfile, if set, is where a CPU profile of the load generator
	// over the measured window is written (--cpuprofile).
	CPUProfile string `json:"-"`

	// OnWindow, if set, is called with true just as the measured window
	// starts and with false just as it ends (e.g. to profile exactly the
	// window). Not a flag.
	OnWindow func(start bool) `json:"-"`
	// NodePIDs, when the node is not spawned, are the processes whose CPU
	// is reported as the node's (e.g. the three nodes of a cluster). Not
	// a flag.
	NodePIDs []int `json:"-"`
	// PresignCap, if positive, caps the pool --presign 0 sizes (e.g. to
	// bound the memory of large envelopes). Not a flag.
	PresignCap int `json:"-"`

	// Seconds, for the JSON report.
	DurationS  float64 `json:"duration_s"`
	WarmupS    float64 `json:"warmup_s"`
	CalibrateS float64 `json:"calibrate_s"`
}

// LimitsConfig is every setting of the limits scenario.
type LimitsConfig struct {
	// Each is how long each measurement runs.
	Each time.Duration `json:"-"`
	// Dir is where the fsync loop writes its file.
	Dir string `json:"dir"`
	// Size is the payload size whose DSSE PAE the signature checks verify.
	Size int    `json:"size"`
	Out  string `json:"out,omitempty"`

	EachS float64 `json:"each_s"`
}

// DefaultAppendConfig returns the documented defaults.
func DefaultAppendConfig() AppendConfig {
	return AppendConfig{
		Server:      client.DefaultAddr,
		Provd:       "./bin/provd",
		DataRoot:    os.TempDir(),
		Clients:     64,
		Duration:    10 * time.Second,
		Warmup:      2 * time.Second,
		Size:        1024,
		Alg:         "ed25519",
		Keys:        4,
		Mode:        ModeUnary,
		Inflight:    8,
		BatchSize:   64,
		Namespace:   "provbench",
		PayloadType: "application/vnd.in-toto+json",
		Verify:      VerifySample,
		VerifyEvery: 100,
		Calibrate:   time.Second,
	}
}

// DefaultLimitsConfig returns the documented defaults.
func DefaultLimitsConfig() LimitsConfig {
	return LimitsConfig{Each: 2 * time.Second, Dir: os.TempDir(), Size: 1024}
}

const appendUsage = `provbench append — append load against one provledger node.

Pre-signs every envelope before the clock starts (distinct payloads, so
dedup never hits), sends each signing key once before the run (trust on
first use: the node must run with --dev), then appends from --clients
concurrent clients for --duration (or until --count entries) after
--warmup, and reports entries/s, envelope MB/s, latency percentiles,
errors by gRPC code and the CPU time of the load generator (and, with
--spawn, of the node). Every batch is fsynced by the node before it
acknowledges. Receipts are verified after the clock stops (--verify).

  provbench append --spawn --provd ./bin/provd --clients 64 --duration 15s
  provbench append --server 127.0.0.1:7400 --log-key ./data/log.pub --mode stream

Every flag can also be set with PROVLEDGER_BENCH_<FLAG> (dashes become
underscores), e.g. PROVLEDGER_BENCH_CLIENTS=16; the command line wins.

Flags:
`

const limitsUsage = `provbench limits — this machine's limits, measured now.

Runs each measurement for --each: raw SHA-256 MB/s, Ed25519 and ECDSA P-256
signature verifications/s (over the DSSE PAE of a --size payload), each on
all cores (GOMAXPROCS goroutines), and 4 KiB write+fsync operations/s on
--dir (one goroutine). Compare the append results against these.

Every flag can also be set with PROVLEDGER_BENCH_LIMITS_<FLAG>.

Flags:
`

// ParseAppend parses the append scenario's flags from args and, for every
// flag not on the command line, from lookupEnv(PROVLEDGER_BENCH_<FLAG>)
// (nil means os.LookupEnv). Usage and parse errors go to stderr.
func ParseAppend(args []string, lookupEnv func(string) (string, bool), stderr io.Writer) (*AppendConfig, error) {
	c := DefaultAppendConfig()
	fs := flag.NewFlagSet("provbench append", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.Server, "server", c.Server, "gRPC address of a running node (ignored with --spawn)")
	fs.BoolVar(&c.Spawn, "spawn", c.Spawn, "start provd --dev from --provd on free 127.0.0.1 ports with a temporary data directory, and stop it at the end")
	fs.StringVar(&c.Provd, "provd", c.Provd, "provd binary to start with --spawn (build it with: go build -o bin/ ./cmd/...)")
	provdArgs := fs.String("provd-args", "", "extra space-separated flags for the spawned provd (e.g. \"--max-batch 512\")")
	fs.StringVar(&c.DataRoot, "data-root", c.DataRoot, "directory under which the spawned node's temporary data directory is made (put it on the disk you want to measure)")
	fs.BoolVar(&c.KeepData, "keep-data", c.KeepData, "keep the spawned node's data directory (and its provd.log) instead of deleting it")
	fs.StringVar(&c.LogKey, "log-key", c.LogKey, "the log's public key, to check checkpoint signatures: a PEM file (DATA/log.pub) or a C2SP note verifier key; with --spawn, DATA/log.pub of the spawned node")
	fs.IntVar(&c.Clients, "clients", c.Clients, "concurrent clients")
	fs.IntVar(&c.Conns, "conns", c.Conns, "gRPC connections the clients share round-robin (0: one per client, like independent processes)")
	fs.DurationVar(&c.Duration, "duration", c.Duration, "measured time, after the warmup (ignored when --count is set)")
	fs.IntVar(&c.Count, "count", c.Count, "measure this many acknowledged entries after the warmup instead of a --duration")
	fs.DurationVar(&c.Warmup, "warmup", c.Warmup, "load applied before the clock starts; not measured")
	fs.IntVar(&c.Size, "size", c.Size, "payload bytes per envelope (a JSON in-toto Statement padded to exactly this size)")
	fs.StringVar(&c.Alg, "alg", c.Alg, "signing algorithm: "+strings.Join(Algs, " or "))
	fs.IntVar(&c.Keys, "keys", c.Keys, "distinct signing keys; envelopes use them round-robin")
	fs.StringVar(&c.Mode, "mode", c.Mode, "unary (Append, one at a time per client), stream (AppendStream, up to --inflight outstanding per client) or batch (AppendBatch of --batch-size)")
	fs.IntVar(&c.Inflight, "inflight", c.Inflight, "stream mode: requests each client keeps outstanding on its AppendStream (the server caps a stream at 256)")
	fs.IntVar(&c.BatchSize, "batch-size", c.BatchSize, "batch mode: envelopes per AppendBatch (the server's default cap is 1000)")
	fs.StringVar(&c.Namespace, "namespace", c.Namespace, "namespace of the appended entries")
	fs.StringVar(&c.PayloadType, "payload-type", c.PayloadType, "DSSE payload type of the envelopes (the node must accept it)")
	fs.StringVar(&c.Verify, "verify", c.Verify, "receipt verification after the clock stops: sample (1 in --verify-every), all, or none")
	fs.IntVar(&c.VerifyEvery, "verify-every", c.VerifyEvery, "with --verify=sample, verify the receipt of every Nth envelope")
	fs.IntVar(&c.Presign, "presign", c.Presign, "envelopes to pre-sign (0: enough for 1.25× the measured verification limit of --alg over warmup+duration)")
	fs.DurationVar(&c.Calibrate, "calibrate", c.Calibrate, "time spent measuring the Ed25519 (and --alg) verification limit on all cores before the run; it sizes --presign 0 and is the 'fraction of limit' denominator (0: skip)")
	fs.StringVar(&c.Out, "out", c.Out, "JSON result file (default bench/results/append-<UTC timestamp>.json)")
	fs.StringVar(&c.CPUProfile, "cpuprofile", c.CPUProfile, "write a CPU profile of the load generator over the measured window to this file (go tool pprof bin/provbench FILE)")
	fs.Usage = func() {
		fmt.Fprint(stderr, appendUsage)
		fs.PrintDefaults()
	}
	if err := parseWithEnv(fs, args, AppendEnvPrefix, lookupEnv); err != nil {
		return nil, err
	}
	if *provdArgs != "" {
		c.ProvdArgs = strings.Fields(*provdArgs)
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	if c.CPUProfile != "" {
		c.OnWindow = ProfileWindow(c.CPUProfile, stderr)
	}
	return &c, nil
}

// ParseLimits parses the limits scenario's flags (env prefix
// PROVLEDGER_BENCH_LIMITS_).
func ParseLimits(args []string, lookupEnv func(string) (string, bool), stderr io.Writer) (*LimitsConfig, error) {
	c := DefaultLimitsConfig()
	fs := flag.NewFlagSet("provbench limits", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.DurationVar(&c.Each, "each", c.Each, "how long each measurement runs")
	fs.StringVar(&c.Dir, "dir", c.Dir, "directory for the fsync measurement (use the node's data disk)")
	fs.IntVar(&c.Size, "size", c.Size, "payload bytes whose DSSE PAE is verified")
	fs.StringVar(&c.Out, "out", c.Out, "JSON result file (default bench/results/limits-<UTC timestamp>.json)")
	fs.Usage = func() {
		fmt.Fprint(stderr, limitsUsage)
		fs.PrintDefaults()
	}
	if err := parseWithEnv(fs, args, LimitsEnvPrefix, lookupEnv); err != nil {
		return nil, err
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return &c, nil
}

// parseWithEnv parses args, then sets each flag not given on the command
// line from the environment variable prefix+NAME.
func parseWithEnv(fs *flag.FlagSet, args []string, prefix string, lookupEnv func(string) (string, bool)) error {
	if lookupEnv == nil {
		lookupEnv = os.LookupEnv
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q (flags only; see --help)", fs.Args())
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		if err != nil || set[f.Name] {
			return
		}
		name := EnvName(prefix, f.Name)
		v, ok := lookupEnv(name)
		if !ok {
			return
		}
		if e := fs.Set(f.Name, v); e != nil {
			err = fmt.Errorf("%s=%q: %v", name, v, e)
		}
	})
	return err
}

// EnvName is the environment variable of flag name under prefix.
func EnvName(prefix, name string) string {
	return prefix + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
}

// Validate reports the first bad setting, naming its flag.
func (c *AppendConfig) Validate() error {
	switch {
	case c.Clients < 1:
		return fmt.Errorf("--clients %d: want at least 1", c.Clients)
	case c.Conns < 0 || c.Conns > c.Clients:
		return fmt.Errorf("--conns %d: want 0 (one per client) to --clients (%d)", c.Conns, c.Clients)
	case c.Count < 0:
		return fmt.Errorf("--count %d is negative", c.Count)
	case c.Count == 0 && c.Duration <= 0:
		return fmt.Errorf("--duration %v: want a positive duration (or set --count)", c.Duration)
	case c.Warmup < 0:
		return fmt.Errorf("--warmup %v is negative", c.Warmup)
	case c.Size < MinPayloadSize || c.Size > MaxPayloadSize:
		return fmt.Errorf("--size %d: want %d to %d bytes", c.Size, MinPayloadSize, MaxPayloadSize)
	case c.Keys < 1 || c.Keys > 64:
		return fmt.Errorf("--keys %d: want 1 to 64", c.Keys)
	case c.Inflight < 1 || c.Inflight > 256:
		return fmt.Errorf("--inflight %d: want 1 to 256 (the server's per-stream cap)", c.Inflight)
	case c.BatchSize < 1 || c.BatchSize > 1000:
		return fmt.Errorf("--batch-size %d: want 1 to 1000 (the server's default cap)", c.BatchSize)
	case c.Namespace == "":
		return errors.New("--namespace is empty")
	case c.PayloadType == "":
		return errors.New("--payload-type is empty")
	case c.VerifyEvery < 1:
		return fmt.Errorf("--verify-every %d: want at least 1", c.VerifyEvery)
	case c.Presign < 0:
		return fmt.Errorf("--presign %d is negative", c.Presign)
	case c.Calibrate < 0:
		return fmt.Errorf("--calibrate %v is negative", c.Calibrate)
	case c.Spawn && c.Provd == "":
		return errors.New("--spawn needs --provd (the provd binary)")
	case !c.Spawn && c.Server == "":
		return errors.New("--server is empty (or use --spawn)")
	}
	if !oneOf(c.Alg, Algs...) {
		return fmt.Errorf("--alg %q: want one of %s", c.Alg, strings.Join(Algs, ", "))
	}
	if !oneOf(c.Mode, ModeUnary, ModeStream, ModeBatch) {
		return fmt.Errorf("--mode %q: want unary, stream or batch", c.Mode)
	}
	if !oneOf(c.Verify, VerifyNone, VerifySample, VerifyAll) {
		return fmt.Errorf("--verify %q: want sample, all or none", c.Verify)
	}
	c.DurationS = c.Duration.Seconds()
	c.WarmupS = c.Warmup.Seconds()
	c.CalibrateS = c.Calibrate.Seconds()
	return nil
}

// Validate reports the first bad setting, naming its flag.
func (c *LimitsConfig) Validate() error {
	switch {
	case c.Each <= 0:
		return fmt.Errorf("--each %v: want a positive duration", c.Each)
	case c.Dir == "":
		return errors.New("--dir is empty")
	case c.Size < 0 || c.Size > MaxPayloadSize:
		return fmt.Errorf("--size %d: want 0 to %d", c.Size, MaxPayloadSize)
	}
	c.EachS = c.Each.Seconds()
	return nil
}

func oneOf(s string, set ...string) bool {
	for _, x := range set {
		if s == x {
			return true
		}
	}
	return false
}

// ParseWithEnv parses args into fs, then sets every flag not given on the
// command line from the environment variable prefix+NAME (see EnvName);
// lookupEnv nil means os.LookupEnv. Positional arguments are refused.
func ParseWithEnv(fs *flag.FlagSet, args []string, prefix string, lookupEnv func(string) (string, bool)) error {
	return parseWithEnv(fs, args, prefix, lookupEnv)
}
