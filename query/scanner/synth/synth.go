// Package synth generates a labelled synthetic provenance stream for the
// anomaly scanner's evaluation: a few hundred daily jobs over months, with
// weekly seasonality and trend in volumes and costs, normal noise, policy
// entries (keys, approvals, budgets, a revocation, version upgrades) and
// injected anomalies of every kind the scanner reports, each labelled with
// the log entries that carry it.
package synth

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sort"
	"time"

	"github.com/sigstore/sigstore/pkg/signature"

	"github.com/provledger/provledger/crypto/envelope"
	"github.com/provledger/provledger/crypto/keys"
	"github.com/provledger/provledger/ledger"
)

// ErrConfig is wrapped by configuration errors.
var ErrConfig = errors.New("synth: bad config")

// Config sizes the stream. Zero fields select defaults.
type Config struct {
	// Jobs is the number of daily jobs. Default 200.
	Jobs int
	// Days of daily runs. Default 100.
	Days int
	// PerKind is the number of injected anomalies of each kind. Default 12.
	PerKind int
	// Seed makes the stream reproducible. Default 1.
	Seed uint64
	// Start is the first day (UTC midnight). Default 2026-01-05.
	Start time.Time
	// Teams is the number of namespaces (one signing key each). Default 5.
	Teams int
}

func (c Config) withDefaults() Config {
	if c.Jobs == 0 {
		c.Jobs = 200
	}
	if c.Days == 0 {
		c.Days = 100
	}
	if c.PerKind == 0 {
		c.PerKind = 12
	}
	if c.Seed == 0 {
		c.Seed = 1
	}
	if c.Start.IsZero() {
		c.Start = time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC)
	}
	if c.Teams == 0 {
		c.Teams = 5
	}
	return c
}

// Validate reports the first problem with c.
func (c Config) Validate() error {
	d := c.withDefaults()
	switch {
	case d.Jobs < 20 || d.Jobs > 100000:
		return fmt.Errorf("%w: Jobs %d must be 20..100000", ErrConfig, c.Jobs)
	case d.Days < 60 || d.Days > 3650:
		return fmt.Errorf("%w: Days %d must be 60..3650 (anomalies start after a 35-day warm-up)", ErrConfig, c.Days)
	case d.PerKind < 1 || d.PerKind*4 > d.Jobs:
		return fmt.Errorf("%w: PerKind %d must be 1..Jobs/4", ErrConfig, c.PerKind)
	case d.Teams < 2 || d.Teams > d.Jobs:
		return fmt.Errorf("%w: Teams %d must be 2..Jobs", ErrConfig, c.Teams)
	}
	return nil
}

// Kinds are the anomaly kinds the generator injects (finding kinds).
var Kinds = []string{
	"integrity.unknownKey", "integrity.signature", "integrity.namespace", "integrity.revokedKey", "integrity.payload",
	"gitops.unapproved", "gitops.unapprovedChange",
	"lineage.schemaChange", "lineage.newInput", "lineage.noInputs", "lineage.runIncomplete",
	"volume.rowCount", "volume.bytes", "volume.nullCount",
	"freshness.stale",
	"cost.band", "cost.budget", "cost.untagged",
	"time.skew", "time.backwards",
}

// Label is one injected anomaly: the finding kinds it should raise and the
// entries that carry it (a finding citing any of them detects it).
type Label struct {
	Kinds   []string
	Entries []uint64
	Note    string
}

// Stream is what Generate wrote.
type Stream struct {
	Labels  []Label
	Entries uint64
	// Admin is the key that signs policy (trust it in the scanner).
	Admin ed25519.PrivateKey
	// Trust holds Admin's public key: the scanner's base trust.
	Trust *keys.Keyring
	// Days of the stream, and its first day.
	Days  int
	Start time.Time
	// DailyCost is the generated daily cost (before anomalies) of each
	// tag:team=… series, for the forecast backtest.
	DailyCost map[string][]float64
}

type event struct {
	at      time.Time // integration (batch) time
	ptype   string
	ns      string
	body    []byte
	signer  *signer
	label   int // index into labels, or -1
	forgeID *signer
}

type signer struct {
	priv ed25519.PrivateKey
	s    signature.Signer
	id   keys.KeyID
}

// Trust is the base trust of every stream: the keyring of its admin key,
// which (like every key of the generator) is derived from a fixed name, so
// a stream written earlier can be scanned again without its Stream.
func Trust() (*keys.Keyring, error) {
	admin, err := newSigner("admin")
	if err != nil {
		return nil, err
	}
	return keys.NewKeyring(admin.priv.Public())
}

func newSigner(name string) (*signer, error) {
	h := sha256.Sum256([]byte("synth " + name))
	priv := ed25519.NewKeyFromSeed(h[:])
	s, err := keys.NewSigner(priv)
	if err != nil {
		return nil, err
	}
	id, err := keys.IDOf(priv.Public())
	if err != nil {
		return nil, err
	}
	return &signer{priv: priv, s: s, id: id}, nil
}

func pemOf(s *signer) string {
	b, _ := keys.MarshalPublicPEM(s.priv.Public())
	return string(b)
}

const (
	typeOL     = "application/vnd.openlineage.run-event+json"
	typeCost   = "application/vnd.provledger.cost+json"
	typePolicy = "application/vnd.provledger.policy+json"
	typeNote   = "application/vnd.example.note+json"
	warmup     = 35
)

type job struct {
	team         int
	ns, name     string
	inputs       []string
	out          string
	hour, minute int
	rows         float64
	rowSize      float64
	nulls        float64
	cost         float64
	trend        float64
	service      string
	version      string
	covered      bool
	schema       []map[string]any
	extraField   bool
}

type gen struct {
	// err is the first generation error (a stream too small for its
	// anomalies); Generate returns it.
	err               error
	cfg               Config
	rng               *rand.Rand
	events            []event
	labels            []Label
	teams             []*signer
	admin, rogue, old *signer
	jobs              []*job
	// busy marks (job, day) slots taken by an anomaly, ±2 days.
	busy map[[2]int]bool
	// per job-day modifications
	mods map[[2]int]*mod
	// budgets per team
	budget []float64
	daily  map[string][]float64
}

type mod struct {
	label       int
	kind        string
	factor      float64
	version     string
	newInput    string
	noInputs    bool
	incomplete  bool
	skip        bool
	lastBefore  bool // the run before a skip (freshness label)
	costFactor  float64
	costLabel   int
	untagged    bool
	budgetSpike bool
	skewPast    bool
	skewFuture  bool
	backwards   bool
	schema      bool
	nulls       bool
	payloadBad  bool
}

// Generate writes the stream into l (a new, empty log is expected) with
// Log.Apply, batching entries by 5-minute windows of simulated time.
func Generate(l *ledger.Log, c Config) (*Stream, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	c = c.withDefaults()
	g := &gen{cfg: c, rng: rand.New(rand.NewPCG(c.Seed, c.Seed*7919)), busy: map[[2]int]bool{}, mods: map[[2]int]*mod{}, daily: map[string][]float64{}}
	var err error
	if g.admin, err = newSigner("admin"); err != nil {
		return nil, err
	}
	if g.rogue, err = newSigner("rogue"); err != nil {
		return nil, err
	}
	if g.old, err = newSigner("old"); err != nil {
		return nil, err
	}
	for t := 0; t < c.Teams; t++ {
		s, err := newSigner(fmt.Sprintf("team-%d", t))
		if err != nil {
			return nil, err
		}
		g.teams = append(g.teams, s)
	}
	g.makeJobs()
	g.budgets()
	g.inject()
	if g.err != nil {
		return nil, g.err
	}
	if err := g.emitAll(); err != nil {
		return nil, err
	}
	st, err := g.write(l)
	if err != nil {
		return nil, err
	}
	trust, err := keys.NewKeyring(g.admin.priv.Public())
	if err != nil {
		return nil, err
	}
	st.Admin, st.Trust, st.Days, st.Start, st.DailyCost = g.admin.priv, trust, c.Days, c.Start, g.daily
	return st, nil
}

var services = []string{"Amazon EC2", "Amazon S3", "Snowflake", "BigQuery"}

func (g *gen) makeJobs() {
	c := g.cfg
	for j := 0; j < c.Jobs; j++ {
		t := j % c.Teams
		jb := &job{
			team: t, ns: fmt.Sprintf("team-%d", t), name: fmt.Sprintf("job-%03d", j),
			out:  fmt.Sprintf("warehouse:team-%d.table_%03d", t, j),
			hour: g.rng.IntN(20), minute: g.rng.IntN(60),
			rows:    math.Round(1e4 * math.Exp(g.rng.Float64()*5)),
			rowSize: 80 + g.rng.Float64()*400,
			nulls:   20 + g.rng.Float64()*500,
			cost:    5 + g.rng.Float64()*200,
			trend:   (g.rng.Float64() - 0.3) * 0.003,
			service: services[j%len(services)],
			version: fmt.Sprintf("%040x", sha256.Sum256(fmt.Appendf(nil, "v1 %d", j)))[:40],
			covered: j%3 == 0,
		}
		n := 1 + g.rng.IntN(3)
		for k := 0; k < n; k++ {
			if j > 10 && g.rng.IntN(2) == 0 {
				up := g.rng.IntN(j)
				jb.inputs = append(jb.inputs, fmt.Sprintf("warehouse:team-%d.table_%03d", up%c.Teams, up))
			} else {
				jb.inputs = append(jb.inputs, fmt.Sprintf("postgres://db:5432:shop.public.src_%02d", g.rng.IntN(40)))
			}
		}
		slices.Sort(jb.inputs)
		jb.inputs = slices.Compact(jb.inputs)
		nf := 3 + g.rng.IntN(6)
		for k := 0; k < nf; k++ {
			typ := []string{"STRING", "INTEGER", "DOUBLE", "TIMESTAMP"}[g.rng.IntN(4)]
			jb.schema = append(jb.schema, map[string]any{"name": fmt.Sprintf("col_%d", k), "type": typ})
		}
		g.jobs = append(g.jobs, jb)
	}
}

// weekly is the weekday factor of volumes and costs.
func weekly(d time.Weekday) float64 {
	switch d {
	case time.Saturday:
		return 0.6
	case time.Sunday:
		return 0.55
	case time.Monday:
		return 1.1
	}
	return 1
}

func (g *gen) day(d int) time.Time { return g.cfg.Start.AddDate(0, 0, d) }

// costOf is job j's normal cost on day d (with noise drawn from rng).
func (g *gen) costOf(jb *job, d int, noise float64) float64 {
	return jb.cost * weekly(g.day(d).Weekday()) * math.Exp(jb.trend*float64(d)) * noise
}

func (g *gen) noise(sigma float64) float64 {
	return math.Max(0.5, 1+sigma*g.rng.NormFloat64())
}

// budgets sets each team's monthly budget to 1.3 × its largest expected
// monthly spend.
func (g *gen) budgets() {
	c := g.cfg
	g.budget = make([]float64, c.Teams)
	for t := 0; t < c.Teams; t++ {
		months := map[int]float64{}
		daily := make([]float64, c.Days)
		for _, jb := range g.jobs {
			if jb.team != t {
				continue
			}
			for d := 0; d < c.Days; d++ {
				v := g.costOf(jb, d, 1)
				months[g.day(d).Year()*100+int(g.day(d).Month())] += v
				daily[d] += v
			}
		}
		for _, v := range months {
			g.budget[t] = math.Max(g.budget[t], 1.3*v)
		}
		g.daily[fmt.Sprintf("tag:team=team-%d", t)] = daily
	}
}

func (g *gen) label(kinds ...string) int {
	g.labels = append(g.labels, Label{Kinds: kinds})
	return len(g.labels) - 1
}

// slot picks a (job, day) with no other anomaly within ±3 days; filter
// restricts the jobs.
func (g *gen) slot(filter func(*job) bool, span int) (int, int) {
	// Random probing finds a free slot quickly in a stream with room; a
	// stream too small for its anomalies (few jobs or days, many per
	// kind) has none, so probing is bounded.
	for range 1000 * (len(g.jobs) + g.cfg.Days) {
		if g.err != nil {
			break
		}
		j := g.rng.IntN(len(g.jobs))
		d := warmup + g.rng.IntN(g.cfg.Days-warmup-span-2)
		if !filter(g.jobs[j]) {
			continue
		}
		free := true
		for k := d - 3; k <= d+span+3; k++ {
			if g.busy[[2]int{j, k}] {
				free = false
			}
		}
		if !free {
			continue
		}
		for k := d - 3; k <= d+span+3; k++ {
			g.busy[[2]int{j, k}] = true
		}
		return j, d
	}
	if g.err == nil {
		g.err = fmt.Errorf("synth: no free (job, day) slot left for an anomaly spanning %d days: %d jobs over %d days cannot hold %d anomalies of every kind; give more jobs or days, or a smaller PerKind", span, len(g.jobs), g.cfg.Days, g.cfg.PerKind)
	}
	return 0, warmup + 1
}

func any_(*job) bool { return true }

func (g *gen) modAt(j, d int) *mod {
	m := g.mods[[2]int{j, d}]
	if m == nil {
		m = &mod{label: -1, costLabel: -1}
		g.mods[[2]int{j, d}] = m
	}
	return m
}

func (g *gen) inject() {
	n := g.cfg.PerKind
	covered := func(jb *job) bool { return jb.covered }
	uncovered := func(jb *job) bool { return !jb.covered }
	for i := 0; i < n; i++ {
		j, d := g.slot(covered, 1)
		m := g.modAt(j, d)
		m.label, m.kind = g.label("gitops.unapproved"), "unapproved"
		m.version = fmt.Sprintf("hotfix-%d-%d", j, d)

		j, d = g.slot(uncovered, 1)
		m = g.modAt(j, d)
		m.label, m.kind = g.label("gitops.unapprovedChange"), "change"
		m.version = fmt.Sprintf("local-%d-%d", j, d)

		j, d = g.slot(any_, 1)
		m = g.modAt(j, d)
		m.label, m.schema = g.label("lineage.schemaChange"), true

		j, d = g.slot(any_, 1)
		m = g.modAt(j, d)
		m.label, m.newInput = g.label("lineage.newInput"), fmt.Sprintf("s3://adhoc:export_%d_%d", j, d)

		j, d = g.slot(any_, 1)
		m = g.modAt(j, d)
		m.label, m.noInputs = g.label("lineage.noInputs"), true

		j, d = g.slot(any_, 1)
		m = g.modAt(j, d)
		m.label, m.incomplete = g.label("lineage.runIncomplete"), true

		j, d = g.slot(any_, 1)
		m = g.modAt(j, d)
		m.label = g.label("volume.rowCount", "volume.bytes")
		if i%2 == 0 {
			m.factor = 4
		} else {
			m.factor = 0.15
		}

		j, d = g.slot(any_, 1)
		m = g.modAt(j, d)
		m.label, m.nulls = g.label("volume.nullCount"), true

		j, d = g.slot(any_, 5)
		g.modAt(j, d-1).lastBefore = true
		g.modAt(j, d-1).label = g.label("freshness.stale")
		for k := d; k < d+4; k++ {
			g.modAt(j, k).skip = true
		}

		j, d = g.slot(any_, 1)
		m = g.modAt(j, d)
		m.costLabel = g.label("cost.band")
		if i%2 == 0 {
			m.costFactor = 5
		} else {
			m.costFactor = 0.1
		}

		j, d = g.slot(any_, 1)
		m = g.modAt(j, d)
		m.costLabel, m.untagged = g.label("cost.untagged"), true

		j, d = g.slot(any_, 1)
		m = g.modAt(j, d)
		m.label = g.label("time.skew")
		if i%2 == 0 {
			m.skewPast = true
		} else {
			m.skewFuture = true
		}

		j, d = g.slot(any_, 1)
		m = g.modAt(j, d)
		m.label, m.backwards = g.label("time.backwards"), true
	}
	// Budget spikes: one per team-month, distinct teams first.
	used := map[[2]int]bool{}
	for i := 0; i < n; i++ {
		for tries := 0; ; tries++ {
			if g.err != nil {
				return
			}
			if tries == 1000*(len(g.jobs)+g.cfg.Days) {
				g.err = fmt.Errorf("synth: %d budget spikes need %d distinct (team, month) pairs; %d teams over %d days have fewer: give more jobs or days, or a smaller PerKind", n, n, g.cfg.Teams, g.cfg.Days)
				return
			}
			j, d := g.slot(any_, 1)
			jb := g.jobs[j]
			ym := g.day(d).Year()*100 + int(g.day(d).Month())
			if used[[2]int{jb.team, ym}] {
				continue
			}
			used[[2]int{jb.team, ym}] = true
			m := g.modAt(j, d)
			m.costLabel, m.budgetSpike = g.label("cost.budget", "cost.band"), true
			break
		}
	}
	// Payload errors: extra entries, labelled at emit time.
}

func (g *gen) sign(ev *event) (ledger.Entry, error) {
	s := ev.signer
	env, err := envelope.Sign(ev.ptype, ev.body, s.s)
	if err != nil {
		return ledger.Entry{}, err
	}
	id := s.id
	if ev.forgeID != nil {
		// A signature by s under another key's id: does not verify.
		id = ev.forgeID.id
		env.Signatures[0].KeyID = id.String()
	}
	return ledger.Entry{Namespace: ev.ns, PayloadType: ev.ptype, Envelope: env.Marshal(), Signers: [][32]byte{id}}, nil
}

func (g *gen) add(at time.Time, ptype, ns string, body any, s *signer, label int) {
	b, ok := body.([]byte)
	if !ok {
		var err error
		if b, err = json.Marshal(body); err != nil {
			panic(err)
		}
	}
	g.events = append(g.events, event{at: at, ptype: ptype, ns: ns, body: b, signer: s, label: label})
}

func runID(j, d int, salt string) string {
	h := sha256.Sum256(fmt.Appendf(nil, "run %d %d %s", j, d, salt))
	x := fmt.Sprintf("%x", h[:16])
	return x[:8] + "-" + x[8:12] + "-4" + x[13:16] + "-8" + x[17:20] + "-" + x[20:32]
}

func (g *gen) emitAll() error {
	c := g.cfg
	t0 := c.Start.Add(-time.Hour)
	// Policy: team keys, the old key, approvals, budgets.
	pol := map[string]any{"policyVersion": 1}
	var ks []map[string]any
	for t, s := range g.teams {
		ks = append(ks, map[string]any{"publicKey": pemOf(s), "namespaces": []string{fmt.Sprintf("team-%d", t)}})
	}
	ks = append(ks, map[string]any{"publicKey": pemOf(g.old), "namespaces": []string{"team-0"}})
	pol["keys"] = ks
	var jobs []map[string]any
	for _, jb := range g.jobs {
		if jb.covered {
			jobs = append(jobs, map[string]any{"namespace": jb.ns, "name": jb.name, "approvedVersions": []string{jb.version}})
		}
	}
	pol["jobs"] = jobs
	var bs []map[string]any
	for t, b := range g.budget {
		bs = append(bs, map[string]any{"series": fmt.Sprintf("tag:team=team-%d", t), "currency": "USD", "monthly": fmt.Sprintf("%.2f", b)})
	}
	pol["budgets"] = bs
	g.add(t0, typePolicy, "policy", pol, g.admin, -1)

	// The old key writes daily notes until it is revoked on day 40; its
	// later uses are anomalies.
	revokeDay := 40
	for d := 0; d < c.Days; d++ {
		day := g.day(d)
		if d == revokeDay {
			g.add(day.Add(30*time.Minute), typePolicy, "policy", map[string]any{"policyVersion": 1, "revokedKeys": []string{g.old.id.String()}}, g.admin, -1)
		}
		if d < revokeDay {
			g.add(day.Add(2*time.Hour), typeNote, "team-0", map[string]any{"note": "legacy export", "day": d}, g.old, -1)
		}
		// Version upgrades of covered jobs: approved the day before.
		if d > 0 && d%30 == 0 {
			var jobs []map[string]any
			for j, jb := range g.jobs {
				if jb.covered && j%2 == (d/30)%2 {
					v := fmt.Sprintf("%x", sha256.Sum256(fmt.Appendf(nil, "v%d %d", d, j)))[:40]
					jobs = append(jobs, map[string]any{"namespace": jb.ns, "name": jb.name, "approvedVersions": []string{v}})
				}
			}
			g.add(day.Add(-3*time.Hour), typePolicy, "policy", map[string]any{"policyVersion": 1, "jobs": jobs}, g.admin, -1)
		}
		for j, jb := range g.jobs {
			if d > 0 && d%30 == 0 && jb.covered && j%2 == (d/30)%2 {
				jb.version = fmt.Sprintf("%x", sha256.Sum256(fmt.Appendf(nil, "v%d %d", d, j)))[:40]
			}
			g.runDay(j, d)
		}
	}
	// Integrity anomalies: extra entries on random days after warm-up.
	for i := 0; i < c.PerKind; i++ {
		d := warmup + g.rng.IntN(c.Days-warmup-1)
		at := g.day(d).Add(time.Duration(g.rng.IntN(86400)) * time.Second)
		t := g.rng.IntN(c.Teams)
		ns := fmt.Sprintf("team-%d", t)
		g.add(at, typeNote, ns, map[string]any{"note": "rogue", "i": i}, g.rogue, g.label("integrity.unknownKey"))
		at = at.Add(7 * time.Minute)
		g.add(at, typeNote, ns, map[string]any{"note": "forged", "i": i}, g.rogue, g.label("integrity.signature"))
		g.events[len(g.events)-1].forgeID = g.teams[t]
		at = at.Add(7 * time.Minute)
		g.add(at, typeNote, fmt.Sprintf("team-%d", (t+1)%c.Teams), map[string]any{"note": "cross", "i": i}, g.teams[t], g.label("integrity.namespace"))
		at = at.Add(7 * time.Minute)
		rd := revokeDay + 1 + g.rng.IntN(c.Days-revokeDay-2)
		g.add(g.day(rd).Add(2*time.Hour+time.Duration(i)*time.Minute), typeNote, "team-0", map[string]any{"note": "legacy export", "late": i}, g.old, g.label("integrity.revokedKey"))
		bad := []byte(fmt.Sprintf(`{"eventType":"COMPLETE","eventTime":%q,"producer":"synth","run":{"runId":"not-a-uuid-%d"},"job":{"namespace":%q,"name":"broken"}}`, at.Format(time.RFC3339), i, ns))
		g.add(at, typeOL, ns, bad, g.teams[t], g.label("integrity.payload"))
	}
	return nil
}

func (g *gen) runDay(j, d int) {
	jb := g.jobs[j]
	m := g.mods[[2]int{j, d}]
	if m == nil {
		m = &mod{label: -1, costLabel: -1}
	}
	if m.skip {
		return
	}
	day := g.day(d)
	start := day.Add(time.Duration(jb.hour)*time.Hour + time.Duration(jb.minute)*time.Minute + time.Duration(g.rng.IntN(1200)-600)*time.Second)
	end := start.Add(time.Duration(10+g.rng.IntN(50)) * time.Minute)
	run := runID(j, d, "")
	version := jb.version
	if m.version != "" {
		version = m.version
	}
	inputs := slices.Clone(jb.inputs)
	if m.newInput != "" {
		inputs = append(inputs, m.newInput)
	}
	if m.noInputs {
		inputs = nil
	}
	if m.schema {
		jb.extraField = true
	}
	ins := make([]map[string]any, 0, len(inputs))
	for _, in := range inputs {
		ns, name := splitDS(in)
		ins = append(ins, map[string]any{"namespace": ns, "name": name})
	}
	jobFacets := map[string]any{"sourceCodeLocation": map[string]any{"type": "git", "url": "https://git.example.com/pipelines", "version": version}}
	startEv := map[string]any{
		"eventType": "START", "eventTime": start.Format(time.RFC3339Nano), "producer": "https://example.com/synth",
		"run": map[string]any{"runId": run}, "job": map[string]any{"namespace": jb.ns, "name": jb.name, "facets": jobFacets},
		"inputs": ins,
	}
	startLbl, endLbl := -1, -1
	switch {
	case m.version != "", m.newInput != "":
		startLbl = m.label
		endLbl = m.label
	case m.incomplete:
		startLbl = m.label
	case m.skewPast:
		startLbl, endLbl = m.label, m.label
		startEv["eventTime"] = start.Add(-30 * time.Hour).Format(time.RFC3339Nano)
	}
	g.add(start.Add(time.Duration(1+g.rng.IntN(20))*time.Second), typeOL, jb.ns, startEv, g.teams[jb.team], startLbl)
	if m.incomplete {
		g.cost(j, d, m)
		return
	}
	wf := weekly(day.Weekday()) * math.Exp(jb.trend*float64(d))
	rows := jb.rows * wf * g.noise(0.04)
	if m.factor != 0 {
		rows *= m.factor
	}
	nulls := jb.nulls * g.noise(0.05)
	if m.nulls {
		nulls *= 10
	}
	schema := slices.Clone(jb.schema)
	if jb.extraField {
		schema = append(schema, map[string]any{"name": "added_col", "type": "STRING"})
	}
	out := func() map[string]any {
		ns, name := splitDS(jb.out)
		return map[string]any{"namespace": ns, "name": name,
			"facets": map[string]any{
				"schema":             map[string]any{"fields": schema},
				"dataQualityMetrics": map[string]any{"columnMetrics": map[string]any{"col_0": map[string]any{"nullCount": int64(nulls)}}},
			},
			"outputFacets": map[string]any{"outputStatistics": map[string]any{"rowCount": int64(rows), "size": int64(rows * jb.rowSize * g.noise(0.01))}},
		}
	}
	endTime := end
	switch {
	case m.skewPast:
		endTime = end.Add(-30 * time.Hour)
	case m.skewFuture:
		endTime = end.Add(3 * time.Hour)
		endLbl = m.label
	case m.backwards:
		endTime = start.Add(-time.Hour)
		endLbl = m.label
	case m.noInputs, m.schema, m.factor != 0, m.nulls, m.lastBefore:
		endLbl = m.label
	}
	endEv := map[string]any{
		"eventType": "COMPLETE", "eventTime": endTime.Format(time.RFC3339Nano), "producer": "https://example.com/synth",
		"run": map[string]any{"runId": run}, "job": map[string]any{"namespace": jb.ns, "name": jb.name, "facets": jobFacets},
		"inputs": ins, "outputs": []any{out()},
	}
	g.add(end.Add(time.Duration(1+g.rng.IntN(20))*time.Second), typeOL, jb.ns, endEv, g.teams[jb.team], endLbl)
	g.cost(j, d, m)
}

func (g *gen) cost(j, d int, m *mod) {
	jb := g.jobs[j]
	day := g.day(d)
	amt := g.costOf(jb, d, g.noise(0.05))
	if m.costFactor != 0 {
		amt *= m.costFactor
	}
	if m.budgetSpike {
		amt += g.budget[jb.team]
	}
	row := map[string]any{
		"BilledCost": fmt.Sprintf("%.4f", amt), "EffectiveCost": fmt.Sprintf("%.4f", amt), "BillingCurrency": "USD",
		"ChargePeriodStart": day.Format(time.RFC3339), "ChargePeriodEnd": day.AddDate(0, 0, 1).Format(time.RFC3339),
		"ServiceName": jb.service, "ServiceProviderName": "cloud",
		"x_JobNamespace": jb.ns, "x_JobName": jb.name,
	}
	if !m.untagged {
		row["Tags"] = map[string]any{"team": jb.ns, "env": "prod"}
	}
	// The billing export lands the next morning.
	at := day.AddDate(0, 0, 1).Add(6*time.Hour + time.Duration(j)*time.Second)
	g.add(at, typeCost, jb.ns, row, g.teams[jb.team], m.costLabel)
}

func splitDS(s string) (string, string) {
	for i := len(s) - 1; i >= 0; i-- {
		if s[i] == ':' {
			return s[:i], s[i+1:]
		}
	}
	return "", s
}

// write signs the events in time order and applies them in 5-minute
// batches.
func (g *gen) write(l *ledger.Log) (*Stream, error) {
	sort.SliceStable(g.events, func(a, b int) bool { return g.events[a].at.Before(g.events[b].at) })
	st := &Stream{Labels: g.labels}
	const window = 5 * time.Minute
	for i := 0; i < len(g.events); {
		w := g.events[i].at.Truncate(window)
		k := i
		for k < len(g.events) && g.events[k].at.Truncate(window) == w && k-i < 1024 {
			k++
		}
		entries := make([]ledger.Entry, 0, k-i)
		for e := i; e < k; e++ {
			en, err := g.sign(&g.events[e])
			if err != nil {
				return nil, err
			}
			entries = append(entries, en)
		}
		ap, err := l.Apply(ledger.Batch{Time: w.Add(window), Entries: entries}, ledger.ApplyOptions{})
		if err != nil {
			return nil, fmt.Errorf("synth: apply: %w", err)
		}
		for e := i; e < k; e++ {
			r := ap.Results[e-i]
			if r.Err != nil {
				return nil, fmt.Errorf("synth: entry rejected: %w", r.Err)
			}
			if lb := g.events[e].label; lb >= 0 {
				st.Labels[lb].Entries = append(st.Labels[lb].Entries, r.Index)
			}
		}
		i = k
	}
	st.Entries = l.Latest().Size
	return st, nil
}
