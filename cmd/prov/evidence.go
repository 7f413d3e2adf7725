package main

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/peterbourgon/ff/v3/ffcli"

	"github.com/provledger/provledger/api/client"
	"github.com/provledger/provledger/api/provledgerpb"
	"github.com/provledger/provledger/api/queryservice/answerpb"
	"github.com/provledger/provledger/crypto/envelope"
	"github.com/provledger/provledger/crypto/tlogproof"
)

// EvidencePackFormat is the format of an evidence pack's index.json.
const EvidencePackFormat = "provledger-evidence-pack/v1"

// packIndex is an evidence pack's index.json.
type packIndex struct {
	Format     string    `json:"format"`
	Subject    string    `json:"subject"`
	Origin     string    `json:"origin"`
	TreeSize   uint64    `json:"tree_size"`
	RootHash   string    `json:"root_hash"`
	Checkpoint string    `json:"checkpoint"`
	CreatedAt  time.Time `json:"created_at"`
	Answer     string    `json:"answer"` // the proven lineage answer (JSON file name)
	// Cost is the proven cost answer of the subject (file name), if the
	// node gave one; CostNote and FindingsNote say why a section is empty.
	Cost         string      `json:"cost,omitempty"`
	CostNote     string      `json:"cost_note,omitempty"`
	FindingsNote string      `json:"findings_note,omitempty"`
	Entries      []packEntry `json:"entries"`
}

// Roles of a pack's entries.
const (
	roleLineage = "lineage" // an entry the lineage answer rests on
	roleFinding = "finding" // a scanner finding about such entries
)

type packEntry struct {
	Index          uint64    `json:"index"`
	Role           string    `json:"role"`
	Namespace      string    `json:"namespace"`
	PayloadType    string    `json:"payload_type"`
	IntegratedTime time.Time `json:"integrated_time"`
	Signers        []string  `json:"signers"`
	Bundle         string    `json:"bundle"`
	Envelope       string    `json:"envelope,omitempty"`
	Redacted       bool      `json:"redacted,omitempty"`
}

func (a *app) evidenceCommand() *ffcli.Command {
	fs := flag.NewFlagSet("prov evidence", flag.ContinueOnError)
	out := fs.String("out", "", "directory to write the pack to (created; must be empty or absent)")
	depth := fs.Uint("depth", 0, "how far upstream to go (0: the server's default)")
	asOf := fs.Uint64("as-of-size", 0, "the log size the pack is as of (0: latest)")
	return &ffcli.Command{
		Name:       "evidence",
		ShortUsage: "prov evidence dataset NAMESPACE NAME | version NAMESPACE NAME VERSION --out DIR [--depth N] [--as-of-size S]",
		ShortHelp:  "write an offline-checkable evidence pack of a dataset's upstream lineage",
		LongHelp: strings.TrimSpace(`
Writes, for an auditor or a regulator, everything a dataset's (or one
dataset version's: version NS NAME VERSION, the DATASET@version form)
upstream lineage rests on: report.md and report.html (the lineage, and every entry
with its namespace, payload type, signers and time), answer.json (the
proven lineage answer, as prov verify-answer reads it), index.json, and
for every entry an offline bundle entries/<index>.tlog-proof (C2SP
tlog-proof against one checkpoint) with its envelope
entries/<index>.envelope.json. Everything is verified with --log-key
before it is written. prov verify --evidence DIR re-checks the pack with
no network.`),
		FlagSet: fs,
		Exec: func(ctx context.Context, args []string) error {
			if *out == "" {
				return usagef("evidence: --out DIR is required")
			}
			n, rest, err := parseNode(args)
			if err != nil {
				return err
			}
			if len(rest) > 0 {
				return usagef("unexpected arguments after the node: %q", rest)
			}
			return a.evidencePack(ctx, n, *out, uint32(*depth), *asOf)
		},
	}
}

func (a *app) evidencePack(ctx context.Context, n *provledgerpb.NodeRef, dir string, depth uint32, asOf uint64) error {
	pub, err := a.loadLogKey(true)
	if err != nil {
		return err
	}
	if ents, err := os.ReadDir(dir); err == nil && len(ents) > 0 {
		return usagef("--out %s: not empty", dir)
	}
	c, closeConn, err := a.queryConn()
	if err != nil {
		return err
	}
	defer closeConn()
	rctx, cancel := a.rpcCtx(ctx)
	defer cancel()
	pa, err := c.Upstream(rctx, &provledgerpb.NodeQuery{Node: n, Options: &provledgerpb.QueryOptions{Prove: true, Depth: depth, AsOfSize: asOf}})
	if err != nil {
		return err
	}
	ans, err := answerpb.FromProto(pa)
	if err != nil {
		return a.failed("answer", err)
	}
	rep, err := a.verifyAnswer(ans, nil)
	if err != nil {
		return err
	}
	cpNote := pa.GetProof().GetCheckpoint()
	v, err := client.VerifierForCheckpoint(pub, a.origin, cpNote)
	if err != nil {
		return a.failed("answer checkpoint", err)
	}
	cp, err := client.OpenCheckpoint(cpNote, v)
	if err != nil {
		return a.failed("answer checkpoint", err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "entries"), 0o755); err != nil {
		return fmt.Errorf("evidence: %w", err)
	}
	idx := packIndex{Format: EvidencePackFormat, Origin: cp.Origin, TreeSize: cp.Size, RootHash: b64(cp.Hash[:]),
		Checkpoint: string(cpNote), CreatedAt: time.Now().UTC().Truncate(time.Second), Answer: "answer.json",
		Subject: strings.Join(append([]string{n.GetKind()}, n.GetParts()...), " ")}
	lineagePayloads := map[uint64][]byte{}
	for _, e := range pa.GetProof().GetEntries() {
		p := &tlogproof.Proof{Extra: e.GetRecord(), Index: e.GetIndex(), Hashes: e.GetHashes(), Checkpoint: cpNote}
		rec, _, err := client.VerifyProof(p, v)
		if err != nil {
			return a.failed(fmt.Sprintf("entry %d", e.GetIndex()), err)
		}
		pe := packEntry{Index: e.GetIndex(), Role: roleLineage, Namespace: rec.Namespace, PayloadType: rec.PayloadType, IntegratedTime: rec.IntegratedTime.UTC(),
			Bundle: fmt.Sprintf("entries/%d.tlog-proof", e.GetIndex()), Redacted: e.GetRedacted()}
		for _, s := range rec.Signers {
			pe.Signers = append(pe.Signers, hex.EncodeToString(s[:]))
		}
		if err := writeFileAtomic(filepath.Join(dir, pe.Bundle), p.Marshal(), 0o644); err != nil {
			return fmt.Errorf("evidence: %w", err)
		}
		if env := e.GetEnvelope(); len(env) > 0 {
			if err := client.CheckEnvelope(rec, env); err != nil {
				return a.failed(fmt.Sprintf("entry %d", e.GetIndex()), err)
			}
			penv, err := envelope.Parse(env)
			if err != nil {
				return a.failed(fmt.Sprintf("entry %d", e.GetIndex()), err)
			}
			lineagePayloads[e.GetIndex()] = penv.Payload
			pe.Envelope = pe.Bundle[:len(pe.Bundle)-len(".tlog-proof")] + envelopeSuffix
			if err := writeFileAtomic(filepath.Join(dir, pe.Envelope), env, 0o644); err != nil {
				return fmt.Errorf("evidence: %w", err)
			}
		}
		idx.Entries = append(idx.Entries, pe)
	}
	costAns, err := a.packCost(ctx, c, n, dir, &idx, v)
	if err != nil {
		return err
	}
	payloads, err := a.packFindings(ctx, dir, &idx, v, cpNote)
	if err != nil {
		return err
	}
	for i, p := range lineagePayloads {
		payloads[i] = p
	}
	sort.Slice(idx.Entries, func(i, j int) bool { return idx.Entries[i].Index < idx.Entries[j].Index })
	var ansJSON, tree bytes.Buffer
	if err := render(&ansJSON, ans, "json"); err != nil {
		return err
	}
	if err := render(&tree, ans, "tree"); err != nil {
		return err
	}
	md, htm, err := renderReports(buildReport(&idx, ans, costAns, tree.String(), payloads))
	if err != nil {
		return err
	}
	ij, _ := json.MarshalIndent(idx, "", "  ")
	for name, b := range map[string][]byte{
		"answer.json": ansJSON.Bytes(), "index.json": append(ij, '\n'),
		"report.md": md, "report.html": htm,
	} {
		if err := writeFileAtomic(filepath.Join(dir, name), b, 0o644); err != nil {
			return fmt.Errorf("evidence: %w", err)
		}
	}
	if a.json {
		return a.printJSON(map[string]any{"dir": dir, "entries": len(idx.Entries), "origin": cp.Origin, "tree_size": cp.Size})
	}
	fmt.Fprintf(a.stdout, "wrote the evidence pack of %s to %s: %d entries proven against %s at size %d", idx.Subject, dir, len(idx.Entries), cp.Origin, cp.Size)
	if rep != nil {
		fmt.Fprintf(a.stdout, "; %s", reportLine(rep))
	}
	fmt.Fprintln(a.stdout)
	return nil
}

func shortIDs(ids []string) string {
	var s []string
	for _, id := range ids {
		if len(id) > 12 {
			id = id[:12] + "…"
		}
		s = append(s, id)
	}
	return strings.Join(s, " ")
}

// verifyPack re-checks an evidence pack offline: every bundle against the
// log key and the pack's checkpoint, every envelope against its record
// (and, with --trust, its DSSE signatures), and the index against them.
func (a *app) verifyPack(dir, trustFile string) error {
	pub, err := a.loadLogKey(true)
	if err != nil {
		return err
	}
	kr, err := loadTrust(trustFile)
	if err != nil {
		return err
	}
	b, err := os.ReadFile(filepath.Join(dir, "index.json"))
	if err != nil {
		return usagef("--evidence %s: %v", dir, err)
	}
	var idx packIndex
	if err := json.Unmarshal(b, &idx); err != nil || idx.Format != EvidencePackFormat {
		return a.failed("evidence pack", fmt.Errorf("index.json is not a %s index: %v", EvidencePackFormat, err))
	}
	v, err := client.VerifierForCheckpoint(pub, a.origin, []byte(idx.Checkpoint))
	if err != nil {
		return a.failed("evidence pack", err)
	}
	cp, err := client.OpenCheckpoint([]byte(idx.Checkpoint), v)
	if err != nil {
		return a.failed("evidence pack checkpoint", err)
	}
	if cp.Size != idx.TreeSize || b64(cp.Hash[:]) != idx.RootHash || cp.Origin != idx.Origin {
		return a.failed("evidence pack", fmt.Errorf("index.json's origin, size or root differ from its signed checkpoint"))
	}
	sigs := 0
	payloads := map[uint64][]byte{}
	for _, e := range idx.Entries {
		if strings.Contains(e.Bundle, "..") || strings.Contains(e.Envelope, "..") || filepath.IsAbs(e.Bundle) || filepath.IsAbs(e.Envelope) {
			return a.failed("evidence pack", fmt.Errorf("entry %d: file names must stay inside the pack", e.Index))
		}
		what := fmt.Sprintf("entry %d", e.Index)
		pb, err := os.ReadFile(filepath.Join(dir, e.Bundle))
		if err != nil {
			return a.failed(what, err)
		}
		p, err := tlogproof.Parse(pb)
		if err != nil {
			return a.failed(what, err)
		}
		if !bytes.Equal(p.Checkpoint, []byte(idx.Checkpoint)) || p.Index != e.Index {
			return a.failed(what, fmt.Errorf("the bundle is for entry %d or another checkpoint than the pack's", p.Index))
		}
		rec, _, err := client.VerifyProof(p, v)
		if err != nil {
			return a.failed(what, err)
		}
		if rec.Namespace != e.Namespace || rec.PayloadType != e.PayloadType || !rec.IntegratedTime.Equal(e.IntegratedTime) || len(rec.Signers) != len(e.Signers) {
			return a.failed(what, fmt.Errorf("index.json does not describe the proven record"))
		}
		if e.Envelope == "" {
			if kr != nil && !e.Redacted {
				return a.failed(what, fmt.Errorf("no envelope to check signatures on"))
			}
			continue
		}
		env, err := os.ReadFile(filepath.Join(dir, e.Envelope))
		if err != nil {
			return a.failed(what, err)
		}
		if err := client.CheckEnvelope(rec, env); err != nil {
			return a.failed(what, err)
		}
		pe, err := envelope.Parse(env)
		if err != nil {
			return a.failed(what, err)
		}
		payloads[e.Index] = pe.Payload
		if kr != nil {
			r, err := checkSignatures(pe, rec, kr)
			if err != nil {
				return a.failed(what, err)
			}
			if len(r.Unverifiable) > 0 {
				return a.failed(what, fmt.Errorf("signature(s) by %s: not in the trust file", strings.Join(r.Unverifiable, ", ")))
			}
			sigs += len(r.Verified)
		}
	}
	if err := a.verifyPackReports(dir, &idx, pub, v, payloads); err != nil {
		return err
	}
	if a.json {
		return a.printJSON(map[string]any{"verified": true, "subject": idx.Subject, "entries": len(idx.Entries), "origin": cp.Origin, "tree_size": cp.Size, "signatures_verified": sigs})
	}
	fmt.Fprintf(a.stdout, "verified: evidence pack %s (%s): %d entries proven in log %s at tree size %d, checkpoint signed by the log key", dir, idx.Subject, len(idx.Entries), cp.Origin, cp.Size)
	if kr != nil {
		fmt.Fprintf(a.stdout, ", %d DSSE signature(s) verified", sigs)
	}
	fmt.Fprintln(a.stdout)
	return nil
}
