package main

import (
	"context"
	"crypto/ed25519"
	"flag"
	"fmt"
	"log/slog"
	"math"
	"os"
	"time"

	"github.com/provledger/provledger/api/auth"
	"github.com/provledger/provledger/api/olingest"
	"github.com/provledger/provledger/api/service"
	"github.com/provledger/provledger/crypto/keys"
	"github.com/provledger/provledger/crypto/policy"
	"github.com/provledger/provledger/ledger"
	"github.com/provledger/provledger/query/policyindex"
)

// policyNamespace is the namespace of the bootstrap policy entry (and the
// one prov policy apply uses by default).
const policyNamespace = "provledger.policy"

// identities returns the policy in force for the ingest endpoint
// (api/olingest.Config.Policy): a token the policy names gets the
// identity's grant, as the gRPC callers do through bindAuth. Nil before
// bootstrap has set the node's policy index.
func (c *policyConfig) identities() olingest.PolicySource {
	if c.index == nil {
		return nil
	}
	return c.index.Current
}

// policyConfig is --policy.
type policyConfig struct {
	file string
	// parsed is the file, read and validated by validate.
	parsed *policy.Policy
	// index is the node's policy index, set by nodePolicy.bootstrap for
	// the scanner (scannerPolicy).
	index *policyindex.Index
}

// scannerPolicy is the scanner's Options.Policy: the policy in force at
// each index, when this node runs with a policy (--policy, or one in force
// at start); nil keeps the scanner's trust-file checks.
func (c *policyConfig) scannerPolicy() func(uint64) *policy.State {
	if c.index == nil || (c.file == "" && !c.index.Current().InForce()) {
		return nil
	}
	return c.index.At
}

func addPolicyFlags(fs *flag.FlagSet, c *policyConfig) {
	fs.StringVar(&c.file, "policy", "", "bootstrap policy file (YAML or JSON, docs/security.md): at the first start of a single node or of a --bootstrap cluster node it becomes the log's first policy entry, signed with the log key; once a policy is in force it is ignored (change the policy with prov policy apply)")
}

// validate reads and checks the policy file, so a bad file stops the
// start before anything is opened.
func (c *policyConfig) validate() error {
	if c.file == "" {
		return nil
	}
	b, err := os.ReadFile(c.file)
	if err != nil {
		return fmt.Errorf("--policy: %w", err)
	}
	p, err := policy.Parse(b)
	if err != nil {
		return fmt.Errorf("--policy %s: %w", c.file, err)
	}
	admin := false
	for _, k := range p.Keys {
		admin = admin || k.Admin
	}
	if !admin {
		return fmt.Errorf("--policy %s grants no admin key (admin: true): nobody could ever change the policy", c.file)
	}
	c.parsed = p
	return nil
}

// nodePolicy is the node's policy machinery: the index of the policy in
// force (a ledger.Indexer chaining the lineage index) and the log key that
// signs the bootstrap policy.
type nodePolicy struct {
	index *policyindex.Index
	logID keys.KeyID
}

// newNodePolicy returns the policy index to open the ledger with (next
// is the lineage indexer). Keys the policy grants are added to keyring;
// the log key is added too, so the bootstrap entry verifies when a
// follower forwards it to the leader (with a policy in force, the log key
// may sign only what the policy grants it).
func newNodePolicy(next ledger.Indexer, keyring *keys.Keyring, priv ed25519.PrivateKey, lg *slog.Logger) (*nodePolicy, error) {
	id, err := keyring.Add(priv.Public())
	if err != nil {
		return nil, fmt.Errorf("policy: log key: %w", err)
	}
	ix := policyindex.New(policyindex.Options{Bootstrap: []keys.KeyID{id}, Next: next, Keyring: keyring, Logger: lg})
	return &nodePolicy{index: ix, logID: id}, nil
}

// adminKeys returns the ledger's AdminKeys (who may sign redactions):
// the keys of --admin-keys (file; nil without the flag) and the admin
// keys (admin: true) of the policy in force at each index. Under a policy
// a redaction must also be granted its payload type like any entry
// (service.PolicySequencer), so an admin key without that grant is
// refused with PermissionDenied naming the missing type.
func (np *nodePolicy) adminKeys(file ledger.AdminKeys) ledger.AdminKeys {
	return policyAdmins{file: file, index: np.index}
}

type policyAdmins struct {
	file  ledger.AdminKeys
	index *policyindex.Index
}

func (a policyAdmins) IsAdmin(id [32]byte, at uint64) bool {
	return (a.file != nil && a.file.IsAdmin(id, at)) || a.index.IsAdmin(id, at)
}

// bindAuth makes the identities of the policy in force authoritative for
// the callers they name (api/auth.Authenticator.SetPolicy); a is nil
// without --auth-tokens.
func (np *nodePolicy) bindAuth(a *auth.Authenticator) {
	if a != nil {
		a.SetPolicy(np.index.Current)
	}
}

// msgIdentitiesNotEnforced is the warning of a node whose policy names
// identities while authentication is off (warnUnenforcedIdentities).
const msgIdentitiesNotEnforced = "POLICY IDENTITIES NOT ENFORCED: the policy in force names identities (the roles of the node's callers), but authentication is off, so every caller may call every RPC whatever the identities say; turn authentication on with --auth-tokens FILE (PROVLEDGER_AUTH_TOKENS; one line per identity's token: provd token new NAME), and --tls-client-ca for identities that authenticate by client certificate"

// warnUnenforcedIdentities logs msgIdentitiesNotEnforced when
// authentication is off (authOn false: no --auth-tokens, so there is no
// authenticator to bind the identities to) and the policy in force names
// identities: once at start (before the node serves), and again for each
// policy entry applied later after which the policy still names
// identities, until ctx (the node's signal context) ends.
func (np *nodePolicy) warnUnenforcedIdentities(ctx context.Context, authOn bool, lg *slog.Logger) {
	if authOn {
		return
	}
	w := &identitiesWarner{log: lg}
	latest := func() *policy.State { return np.index.At(math.MaxUint64) } // including entries not yet in a checkpoint
	w.check(latest())
	go func() {
		// A Raft snapshot installed under the index replaces its policy
		// entries without a Changed signal: look every identitiesRecheck too.
		tick := time.NewTicker(identitiesRecheck)
		defer tick.Stop()
		for {
			changed := np.index.Changed() // before reading the state: no change is missed
			w.check(latest())
			select {
			case <-ctx.Done():
				return
			case <-changed:
			case <-tick.C:
			}
		}
	}()
}

// identitiesRecheck is how often warnUnenforcedIdentities looks at the
// policy in force without a change signal from the index.
const identitiesRecheck = 30 * time.Second

// identitiesWarner warns once per policy entry after which the policy
// names identities (the State of that entry).
type identitiesWarner struct {
	log    *slog.Logger
	warned bool
	last   uint64 // the policy entry last warned about
}

func (w *identitiesWarner) check(st *policy.State) {
	if !st.HasIdentities() || (w.warned && w.last == st.Index()) {
		return
	}
	w.warned, w.last = true, st.Index()
	ids := st.Identities()
	names := make([]string, len(ids))
	for i, g := range ids {
		names[i] = g.Name
	}
	w.log.Warn(msgIdentitiesNotEnforced, "policy_entry", st.Index(), "identities", names)
}

// sequencer wraps the node's sequencer for the Ledger service: appends are
// checked against the policy in force (api/service.PolicySequencer).
func (np *nodePolicy) sequencer(seq ledger.Sequencer) ledger.Sequencer {
	return service.NewPolicySequencer(seq, np.index, np.logID)
}

// bootstrap writes --policy as the log's first policy entry, signed with
// the log key, through seq (the node's own sequencer, not the service),
// unless a policy is in force already or this node does not create the
// cluster. In a cluster it runs in the background (the Raft leader must be
// elected and serving); on a single node it completes before the node
// serves, so no append precedes the policy.
func (np *nodePolicy) bootstrap(ctx context.Context, c *config, seq ledger.Sequencer, priv ed25519.PrivateKey, lg *slog.Logger) error {
	c.policy.index = np.index
	p := c.policy.parsed
	if p == nil {
		return nil
	}
	if st := np.index.Current(); st.InForce() {
		lg.Info("--policy ignored: a policy is in force already (prov policy apply changes it)", "policy_entry", st.Index())
		return nil
	}
	cluster := c.cluster.nodeID != ""
	if cluster && !c.cluster.bootstrap {
		lg.Info("--policy ignored: this node joins a cluster whose policy comes from its log")
		return nil
	}
	signer, err := keys.NewSigner(priv)
	if err != nil {
		return fmt.Errorf("policy: log key signer: %w", err)
	}
	env, err := policy.Sign(p, signer)
	if err != nil {
		return fmt.Errorf("--policy: %w", err)
	}
	e := ledger.Entry{Namespace: policyNamespace, PayloadType: policy.PayloadType, Envelope: env.Marshal(), Signers: [][32]byte{np.logID}}
	submit := func(ctx context.Context) error {
		rs, err := seq.Submit(ctx, []ledger.Entry{e})
		if err == nil && len(rs) == 1 && rs[0].Err != nil {
			err = rs[0].Err
		}
		if err != nil {
			return err
		}
		lg.Info("bootstrap policy written", "file", c.policy.file, "index", rs[0].Index, "keys", len(p.Keys))
		return nil
	}
	if !cluster {
		ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		if err := submit(ctx); err != nil {
			return fmt.Errorf("--policy: write the bootstrap policy entry: %w", err)
		}
		return nil
	}
	go func() {
		for attempt := 1; ; attempt++ {
			if np.index.Current().InForce() {
				return // another initial voter wrote it (the same entry: dedup)
			}
			actx, cancel := context.WithTimeout(ctx, 20*time.Second)
			err := submit(actx)
			cancel()
			if err == nil || ctx.Err() != nil {
				return
			}
			lg.Warn("bootstrap policy not written yet; retrying", "attempt", attempt, "err", err)
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Second):
			}
		}
	}()
	return nil
}
