// Package answer is the form of a lineage or cost answer: what was asked,
// the subgraph or figures found, every log entry the answer rests on and,
// when proven, each entry's record and inclusion proof against one signed
// checkpoint. Verify checks a saved answer offline with the log's public
// key.
//
// The package imports only crypto packages and query/payload (which
// imports nothing of provledger's), so a client such as cmd/prov uses it
// without opening a store.
package answer

import (
	"time"

	"github.com/provledger/provledger/query/payload"
)

// Version is the answer format version.
const Version = 1

// Answer is the result of one query.
type Answer struct {
	// Format is Version.
	Format int `json:"format"`
	// Query is what was asked.
	Query Query `json:"query"`
	// Size is the log size the answer is as of: it rests only on entries
	// below Size.
	Size uint64 `json:"size"`
	// AsOfTime, when the query gave a time, is that time; Size is then
	// the number of entries integrated at or before it.
	AsOfTime time.Time `json:"asOfTime,omitzero"`

	// Nodes and Edges are the subgraph found (upstream, downstream,
	// impact, paths, columns, history, cost lineage), edges in data-flow
	// direction.
	Nodes []Node `json:"nodes,omitempty"`
	Edges []Edge `json:"edges,omitempty"`
	// Paths (paths query) lists each path as node keys, source first.
	Paths [][]string `json:"paths,omitempty"`
	// Versions (history query) lists the dataset's versions, oldest first.
	Versions []DatasetVersion `json:"versions,omitempty"`
	// Cost (cost query) holds the figures.
	Cost *Cost `json:"cost,omitempty"`

	// Truncated says the answer was cut short, and why.
	Truncated *Truncation `json:"truncated,omitempty"`

	// Entries is every log index the answer rests on, ascending.
	Entries []uint64 `json:"entries"`
	// Proof, when asked for, proves each of Entries against one signed
	// checkpoint.
	Proof *Proof `json:"proof,omitempty"`
}

// Query is the question an answer answers.
type Query struct {
	// Kind: upstream, downstream, impact, paths, history, columns, cost.
	Kind string `json:"kind"`
	// Node is the node asked about (for paths: the source).
	Node *Ref `json:"node,omitempty"`
	// To is the target of a paths query.
	To *Ref `json:"to,omitempty"`
	// Depth and Budget are the limits applied (defaults filled in).
	Depth  int `json:"depth,omitempty"`
	Budget int `json:"budget,omitempty"`
	// GroupBy is the cost roll-up dimension.
	GroupBy string `json:"groupBy,omitempty"`
	// AsOfSize / AsOfTime are as asked (0 / zero: latest).
	AsOfSize uint64    `json:"asOfSize,omitempty"`
	AsOfTime time.Time `json:"asOfTime,omitzero"`
	// Namespaces is the namespace filter applied (sorted), if any: the
	// traversal stayed inside these OpenLineage namespaces.
	Namespaces []string `json:"namespaces,omitempty"`
	// WindowFrom / WindowTo is the time window applied, if any: history
	// kept the versions whose event time is in [WindowFrom, WindowTo),
	// cost the rows whose ChargePeriodStart is.
	WindowFrom time.Time `json:"windowFrom,omitzero"`
	WindowTo   time.Time `json:"windowTo,omitzero"`
	// Tags is the cost tag filter applied ("key=value", sorted), if any:
	// only rows whose FOCUS Tags hold each were counted.
	Tags []string `json:"tags,omitempty"`
}

// Ref names a node by kind and parts:
//
//	dataset        namespace, name
//	datasetVersion namespace, name, version
//	job            namespace, name
//	jobVersion     namespace, name, code version
//	run            run id
//	column         dataset namespace, dataset name, field
//	tag            key, value
type Ref struct {
	Kind  string   `json:"kind"`
	Parts []string `json:"parts"`
}

// Node is a node of an answer's subgraph.
type Node struct {
	// Key is the node's name in this answer (Marquez style:
	// dataset:<ns>:<name>, job:<ns>:<name>, datasetField:<ns>:<name>:<field>,
	// run:<id>, datasetVersion:<ns>:<name>:<version>, …); edges and paths
	// refer to nodes by Key.
	Key string `json:"key"`
	Ref
	// Index is the entry that first asserted the node.
	Index uint64 `json:"index"`
	// Depth is the node's distance from the queried node, in process
	// steps (jobs or runs) or, for columns, derivation steps.
	Depth int `json:"depth"`
}

// Edge relations in answers (data-flow direction).
const (
	RelInput   = "input"   // dataset (version) → job (run) that read it
	RelOutput  = "output"  // job (run) → dataset (version) it wrote
	RelDerives = "derives" // input column → output column derived from it
	RelAffects = "affects" // input column → dataset it affects as a whole (filter, join…)
	RelRunOf   = "runOf"   // run → its job
	RelParent  = "parent"  // run → its parent run
	RelVersion = "version" // dataset version → its dataset
	RelCode    = "code"    // run → job version (code) it ran
	RelField   = "field"   // column → its dataset
	RelTagged  = "tagged"  // run, job, dataset or column → tag
)

// Edge is an edge of an answer's subgraph, in data-flow direction.
type Edge struct {
	From string `json:"from"`
	To   string `json:"to"`
	Rel  string `json:"rel"`
	// Index is the entry that first asserted the edge.
	Index uint64 `json:"index"`
	// Transformations annotate derives and affects edges.
	Transformations []payload.Transformation `json:"transformations,omitempty"`
	// RunID and Job say which run first asserted a derives or affects edge.
	RunID string          `json:"runId,omitempty"`
	Job   *payload.JobRef `json:"job,omitempty"`
	// Resolved marks an input edge whose version the event did not name:
	// it is the dataset's latest completed version below Index.
	Resolved bool `json:"resolved,omitempty"`
}

// DatasetVersion is one version of a dataset (history query): what the
// events that wrote it said, added up in log order.
type DatasetVersion struct {
	Version     string                `json:"version"`
	Explicit    bool                  `json:"explicit"`
	RunID       string                `json:"runId"`
	Job         payload.JobRef        `json:"job"`
	CodeVersion string                `json:"codeVersion,omitempty"`
	Source      payload.Source        `json:"source"`
	RunState    payload.EventType     `json:"runState,omitempty"`
	EventTime   time.Time             `json:"eventTime"`
	Schema      []payload.SchemaField `json:"schema,omitempty"`
	RowCount    *int64                `json:"rowCount,omitempty"`
	Bytes       *int64                `json:"bytes,omitempty"`
	FileCount   *int64                `json:"fileCount,omitempty"`
	DataSource  *payload.DataSource   `json:"dataSource,omitempty"`
	Quality     *payload.Quality      `json:"dataQualityMetrics,omitempty"`
	Lifecycle   string                `json:"lifecycleStateChange,omitempty"`
	// Indexes are the entries whose events said something about this
	// version.
	Indexes []uint64 `json:"indexes"`
}

// Cost is the figures of a cost query.
type Cost struct {
	// Groups is the roll-up: one group per value of the dimension and
	// currency, largest first.
	Groups []CostGroup `json:"groups,omitempty"`
	// Total is the sum per currency of the rows counted (each row once).
	Total []Amount `json:"total"`
	// Rows are the cost rows summed.
	Rows []CostRow `json:"rows,omitempty"`
	// Runs are the runs whose costs a dataset-version cost includes.
	Runs []string `json:"runs,omitempty"`
	// Notes say what was not counted and why.
	Notes []string `json:"notes,omitempty"`
}

// Amount is a sum in one currency.
type Amount struct {
	Currency string          `json:"currency"`
	Amount   payload.Decimal `json:"amount"`
}

// CostGroup is one group of a roll-up.
type CostGroup struct {
	Key      string          `json:"key"`
	Currency string          `json:"currency"`
	Amount   payload.Decimal `json:"amount"`
	Rows     int             `json:"rows"`
	// Shared says some rows of the group also count in other groups (a
	// run that wrote several datasets, a tag on several jobs): groups do
	// not add up to the total.
	Shared bool `json:"shared,omitempty"`
}

// CostRow is one cost row an answer summed.
type CostRow struct {
	Index    uint64           `json:"index"`
	Row      int              `json:"row"`
	Amount   payload.Decimal  `json:"amount"`
	Currency string           `json:"currency"`
	Service  string           `json:"service,omitempty"`
	Link     payload.CostLink `json:"link,omitzero"`
	// Via says how the row was attributed (e.g. "run:<id>", "tag:k=v").
	Via string `json:"via,omitempty"`
}

// Truncation says why an answer is incomplete.
type Truncation struct {
	// Budget: the relation budget ran out before the traversal did.
	Budget bool `json:"budget,omitempty"`
	// Depth: nodes at the depth limit have further relations.
	Depth bool `json:"depth,omitempty"`
	// Paths: more paths exist than were listed.
	Paths bool `json:"paths,omitempty"`
	// Reason says it in words.
	Reason string `json:"reason"`
}

// Proof proves an answer's entries.
type Proof struct {
	// Checkpoint is the signed checkpoint note (C2SP signed-note) every
	// inclusion proof leads to; its size is at least the answer's Size.
	Checkpoint string `json:"checkpoint"`
	// Entries has one element per element of Answer.Entries, in order.
	Entries []ProvenEntry `json:"entries"`
}

// ProvenEntry is one entry with its inclusion proof.
type ProvenEntry struct {
	Index uint64 `json:"index"`
	// Record is the entry record (docs/record.md) hashed into the leaf.
	Record []byte `json:"record"`
	// Hashes is the RFC 6962 inclusion proof of Index in the checkpoint's
	// tree.
	Hashes [][]byte `json:"hashes"`
	// Envelope is the canonical DSSE envelope JSON (omitted when asked
	// not to include envelopes, or when redacted).
	Envelope []byte `json:"envelope,omitempty"`
	// Redacted says the envelope was redacted: the record still proves
	// the entry, its content can no longer be checked.
	Redacted bool `json:"redacted,omitempty"`
}
