package graph

import (
	"time"

	"github.com/provledger/provledger/query/payload"
)

// VersionFacts is what one event said about a dataset version it wrote:
// stored under the dataset (history), one record per event and output.
// Records of the same version add up in index order, as OpenLineage
// facets do across a run's events.
//
// A DatasetEvent's record has no run: RunID and Job are empty.
type VersionFacts struct {
	Version     string                `json:"version"`
	RunID       string                `json:"runId"`
	Job         payload.JobRef        `json:"job"`
	CodeVersion string                `json:"codeVersion,omitempty"`
	Source      payload.Source        `json:"source"`
	EventType   payload.EventType     `json:"eventType,omitempty"`
	EventTime   time.Time             `json:"eventTime"`
	Schema      []payload.SchemaField `json:"schema,omitempty"`
	RowCount    *int64                `json:"rowCount,omitempty"`
	Bytes       *int64                `json:"bytes,omitempty"`
	FileCount   *int64                `json:"fileCount,omitempty"`
	DataSource  *payload.DataSource   `json:"dataSource,omitempty"`
	Quality     *payload.Quality      `json:"dataQualityMetrics,omitempty"`
	Lifecycle   string                `json:"lifecycleStateChange,omitempty"`
	// Explicit says the version came from the payload (version facet or
	// digest); otherwise it is "run:<runId>", the version that run made.
	Explicit bool `json:"explicit,omitempty"`
}

// RunFacts is what one event said about its run.
type RunFacts struct {
	EventType    payload.EventType   `json:"eventType,omitempty"`
	EventTime    time.Time           `json:"eventTime"`
	Source       payload.Source      `json:"source"`
	Producer     string              `json:"producer,omitempty"`
	Job          payload.JobRef      `json:"job"`
	Code         *payload.SourceCode `json:"sourceCodeLocation,omitempty"`
	Parent       *payload.Parent     `json:"parent,omitempty"`
	Engine       *payload.Engine     `json:"processingEngine,omitempty"`
	NominalStart time.Time           `json:"nominalStartTime,omitzero"`
	NominalEnd   time.Time           `json:"nominalEndTime,omitzero"`
	ErrorMessage string              `json:"errorMessage,omitempty"`
}

// DerivationAttrs annotate a column-derivation (DerivedFrom) or
// whole-dataset (Affects) edge: how the input feeds the output, and which
// run first said so.
type DerivationAttrs struct {
	Transformations []payload.Transformation `json:"transformations,omitempty"`
	// TransformationType/Description are the column lineage facet's
	// deprecated per-field forms.
	TransformationType        string `json:"transformationType,omitempty"`
	TransformationDescription string `json:"transformationDescription,omitempty"`
	// RunID is "" for a JobEvent's (static) column lineage.
	RunID string         `json:"runId,omitempty"`
	Job   payload.JobRef `json:"job"`
}

// ReadAttrs annotate a Read edge whose version the event did not name:
// Resolved says the version is the dataset's latest completed output
// below the entry (empty when there was none).
type ReadAttrs struct {
	Resolved bool `json:"resolved,omitempty"`
}
