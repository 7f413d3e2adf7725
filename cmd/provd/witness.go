package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/provledger/provledger/api/server"
	"github.com/provledger/provledger/api/witness"
	"github.com/provledger/provledger/crypto/cosignature"
	"github.com/provledger/provledger/ledger"
)

// witnessConfig is the node's witness policy (--witness, --witness-quorum,
// --witness-interval): publish a checkpoint only once enough witnesses
// cosigned it (docs/audit.md).
type witnessConfig struct {
	witnesses witnessList
	quorum    int
	interval  time.Duration
}

// witnessList is --witness URL=VKEY, repeated or comma-separated.
type witnessList []witness.Witness

// String implements flag.Value.
func (w *witnessList) String() string {
	var s []string
	for _, x := range *w {
		s = append(s, x.Client.URL+"="+x.Verifier.Key())
	}
	return strings.Join(s, ",")
}

// Set implements flag.Value: URL=VKEY, several separated by commas.
func (w *witnessList) Set(v string) error {
	for _, one := range strings.Split(v, ",") {
		i := strings.LastIndex(one, "=")
		if i < 0 {
			return fmt.Errorf("%q: want URL=VKEY (the witness's add-checkpoint prefix and its verifier key from prov witness key)", one)
		}
		u, vkey := strings.TrimSpace(one[:i]), strings.TrimSpace(one[i+1:])
		if p, err := url.Parse(u); err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
			return fmt.Errorf("%q: %q is not an http(s) URL", one, u)
		}
		v, err := cosignature.ParseVerifierKey(vkey)
		if err != nil {
			return fmt.Errorf("%q: %v", one, err)
		}
		*w = append(*w, witness.Witness{Client: &witness.Client{URL: u, HTTP: &http.Client{Timeout: 10 * time.Second}}, Verifier: v})
	}
	return nil
}

func addWitnessFlags(fs *flag.FlagSet, c *witnessConfig) {
	fs.Var(&c.witnesses, "witness", "witness policy: a C2SP tlog-witness as URL=VKEY (repeat, or comma-separate); /checkpoint and GetCheckpoint then serve only checkpoints cosigned by --witness-quorum of them")
	fs.IntVar(&c.quorum, "witness-quorum", 0, "how many --witness must cosign a checkpoint before it is published (default: all)")
	fs.DurationVar(&c.interval, "witness-interval", time.Second, "how often the latest checkpoint is sent to the witnesses")
}

// publisher returns the witness policy's publisher, or nil without --witness.
func (c *witnessConfig) publisher(l *ledger.Log, lg *slog.Logger) (*witness.Publisher, error) {
	if len(c.witnesses) == 0 {
		if c.quorum != 0 {
			return nil, fmt.Errorf("--witness-quorum needs --witness")
		}
		return nil, nil
	}
	p, err := witness.NewPublisher(witness.PublisherConfig{
		Latest: func() []byte { return l.Latest().Note },
		Proof: func(_ context.Context, old, new uint64) ([][]byte, error) {
			return l.ConsistencyProof(old, new)
		},
		Witnesses: c.witnesses, Quorum: c.quorum, Interval: c.interval, Logger: lg.With("component", "witness-policy"),
	})
	if err != nil {
		return nil, fmt.Errorf("--witness: %w", err)
	}
	return p, nil
}

// withWitnessPolicy makes the servers answer /checkpoint and
// GetCheckpoint with the publisher's cosigned checkpoint (p nil: sc as is).
func withWitnessPolicy(p *witness.Publisher, sc server.Config) server.Config {
	if p == nil {
		return sc
	}
	prev := sc.HTTPMiddleware
	sc.HTTPMiddleware = func(h http.Handler) http.Handler {
		h = p.HTTPMiddleware(sc.HTTPPrefix)(h)
		if prev != nil {
			h = prev(h)
		}
		return h
	}
	sc.UnaryInterceptors = append(sc.UnaryInterceptors, p.UnaryInterceptor)
	return sc
}
