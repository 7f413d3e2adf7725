// Package payload parses the payloads the lineage graph indexes into one
// normalized model:
//
//   - OpenLineage RunEvents (application/vnd.openlineage.run-event+json,
//     spec 2-0-x, member names exactly as the spec spells them);
//   - in-toto Statements (application/vnd.in-toto+json) whose predicate is
//     SLSA provenance v1 (or v0.2): subjects become output dataset
//     versions, resolvedDependencies (materials) inputs, the builder and
//     build type the job;
//   - cost records (application/vnd.provledger.cost+json) with FinOps FOCUS
//     column names and an optional link to a run, a job or a tag.
//
// Parsing is strict enough that a bad payload is rejected with an error
// naming the field (a *FieldError wrapping ErrInvalid): a missing runId, a
// runId that is not a UUID, an unknown eventType, a facet over the size
// cap. Fields the model does not use are ignored, as the OpenLineage spec
// requires of consumers. Results are deterministic: object members are
// visited in sorted order.
//
// The package imports nothing of provledger's, so the HTTP ingest endpoint,
// the graph indexer and offline verifiers all parse alike.
package payload

import (
	"time"
)

// Payload types this package parses.
const (
	TypeOpenLineage = "application/vnd.openlineage.run-event+json"
	TypeInToto      = "application/vnd.in-toto+json"
	TypeCost        = "application/vnd.provledger.cost+json"
)

// Defaults for Limits fields left zero.
const (
	DefaultMaxFacetSize = 256 << 10
	DefaultMaxDatasets  = 1000
	DefaultMaxFields    = 10000
	DefaultMaxNameLen   = 4096
	DefaultMaxCostRows  = 10000
)

// Limits bound what one payload may carry. The zero value of a field
// selects its default.
type Limits struct {
	// MaxFacetSize caps the JSON size in bytes of any one facet (and of an
	// in-toto predicate). Default DefaultMaxFacetSize (256 KiB).
	MaxFacetSize int
	// MaxDatasets caps the inputs plus outputs of one event (subjects plus
	// dependencies of a statement). Default DefaultMaxDatasets.
	MaxDatasets int
	// MaxFields caps schema fields, column-lineage entries, column metrics
	// and tags of one dataset. Default DefaultMaxFields.
	MaxFields int
	// MaxNameLen caps namespaces, names and ids in bytes. Default
	// DefaultMaxNameLen.
	MaxNameLen int
	// MaxCostRows caps the rows of one cost payload. Default
	// DefaultMaxCostRows.
	MaxCostRows int
}

func (l Limits) withDefaults() Limits {
	if l.MaxFacetSize <= 0 {
		l.MaxFacetSize = DefaultMaxFacetSize
	}
	if l.MaxDatasets <= 0 {
		l.MaxDatasets = DefaultMaxDatasets
	}
	if l.MaxFields <= 0 {
		l.MaxFields = DefaultMaxFields
	}
	if l.MaxNameLen <= 0 {
		l.MaxNameLen = DefaultMaxNameLen
	}
	if l.MaxCostRows <= 0 {
		l.MaxCostRows = DefaultMaxCostRows
	}
	return l
}

// EventType is the run state transition of an event.
type EventType string

// OpenLineage event types (spec 2-0-2). An empty EventType means the event
// did not say (the spec makes eventType optional).
const (
	Start    EventType = "START"
	Running  EventType = "RUNNING"
	Complete EventType = "COMPLETE"
	Abort    EventType = "ABORT"
	Fail     EventType = "FAIL"
	Other    EventType = "OTHER"
)

// Source says which payload type an event was parsed from.
type Source string

// Sources of run events.
const (
	SourceOpenLineage Source = "openlineage"
	SourceInToto      Source = "in-toto"
)

// RunEvent is one assertion about a run: what it ran, what it read and
// what it wrote. OpenLineage events of the same run add up (facets
// accumulate across START, RUNNING, COMPLETE…); an in-toto statement is
// one complete event.
type RunEvent struct {
	Source    Source    `json:"source"`
	EventType EventType `json:"eventType,omitempty"`
	EventTime time.Time `json:"eventTime"`
	Producer  string    `json:"producer,omitempty"`
	Run       Run       `json:"run"`
	Job       Job       `json:"job"`
	Inputs    []Dataset `json:"inputs,omitempty"`
	Outputs   []Dataset `json:"outputs,omitempty"`
}

// Run is the run an event is about.
type Run struct {
	// ID is the run id: a lower-case UUID for OpenLineage; for in-toto the
	// build's invocationId, or "sha256:<hex>" of the statement when it has
	// none.
	ID     string  `json:"runId"`
	Parent *Parent `json:"parent,omitempty"`
	Tags   []Tag   `json:"tags,omitempty"`
	// Engine is the processing_engine facet.
	Engine *Engine `json:"processingEngine,omitempty"`
	// NominalStart/End are the nominalTime facet.
	NominalStart time.Time `json:"nominalStartTime,omitzero"`
	NominalEnd   time.Time `json:"nominalEndTime,omitzero"`
	// ErrorMessage is the errorMessage facet's message (failed runs).
	ErrorMessage string `json:"errorMessage,omitempty"`
}

// JobRef names a job.
type JobRef struct {
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
}

// Parent is the parent facet: the run (and job) that spawned this one.
type Parent struct {
	RunID string `json:"runId"`
	Job   JobRef `json:"job"`
	// Root is the root run of the hierarchy, when the producer says.
	RootRunID string  `json:"rootRunId,omitempty"`
	RootJob   *JobRef `json:"rootJob,omitempty"`
}

// Engine is the processing_engine run facet.
type Engine struct {
	Name                      string `json:"name,omitempty"`
	Version                   string `json:"version,omitempty"`
	OpenlineageAdapterVersion string `json:"openlineageAdapterVersion,omitempty"`
}

// Job is the job an event's run belongs to.
type Job struct {
	JobRef
	// Source is the sourceCodeLocation facet: where the code that ran lives
	// and which version of it (the git sha) ran.
	Source *SourceCode `json:"sourceCodeLocation,omitempty"`
	Type   *JobType    `json:"jobType,omitempty"`
	Tags   []Tag       `json:"tags,omitempty"`
}

// CodeVersion is the version of the code the job ran (the
// sourceCodeLocation facet's version, e.g. a git commit sha), or "".
func (j *Job) CodeVersion() string {
	if j.Source == nil {
		return ""
	}
	return j.Source.Version
}

// SourceCode is the sourceCodeLocation job facet.
type SourceCode struct {
	Type    string `json:"type,omitempty"`
	URL     string `json:"url,omitempty"`
	RepoURL string `json:"repoUrl,omitempty"`
	Path    string `json:"path,omitempty"`
	Version string `json:"version,omitempty"`
	Tag     string `json:"tag,omitempty"`
	Branch  string `json:"branch,omitempty"`
}

// JobType is the jobType job facet.
type JobType struct {
	ProcessingType string `json:"processingType,omitempty"`
	Integration    string `json:"integration,omitempty"`
	JobType        string `json:"jobType,omitempty"`
}

// Tag is one entry of a tags facet (run, job or dataset).
type Tag struct {
	Key    string `json:"key"`
	Value  string `json:"value"`
	Source string `json:"source,omitempty"`
	// Field names the dataset column a dataset tag applies to.
	Field string `json:"field,omitempty"`
}

// Dataset is an input or output of a run, with the facets the graph uses.
type Dataset struct {
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	// Version is the version facet's datasetVersion; for in-toto, the
	// subject's or dependency's digest as "<alg>:<hex>".
	Version string `json:"version,omitempty"`
	// Schema is the schema facet's fields (nested fields kept nested).
	Schema     []SchemaField `json:"schema,omitempty"`
	DataSource *DataSource   `json:"dataSource,omitempty"`
	// ColumnLineage is the columnLineage facet's fields, sorted by output
	// field name; DatasetLineage is its "dataset" list (inputs that affect
	// the whole dataset: filters, joins, sorts…).
	ColumnLineage  []ColumnLineage `json:"columnLineage,omitempty"`
	DatasetLineage []InputField    `json:"datasetLineage,omitempty"`
	// Quality is the dataQualityMetrics facet (input facet, or dataset
	// facet).
	Quality *Quality `json:"dataQualityMetrics,omitempty"`
	// Stats is the inputStatistics (input) or outputStatistics (output)
	// facet.
	Stats                *Statistics `json:"statistics,omitempty"`
	Tags                 []Tag       `json:"tags,omitempty"`
	LifecycleStateChange string      `json:"lifecycleStateChange,omitempty"`
	// StorageLayer and FileFormat are the storage facet.
	StorageLayer string `json:"storageLayer,omitempty"`
	FileFormat   string `json:"fileFormat,omitempty"`
}

// SchemaField is one field of a schema facet.
type SchemaField struct {
	Name        string        `json:"name"`
	Type        string        `json:"type,omitempty"`
	Description string        `json:"description,omitempty"`
	Fields      []SchemaField `json:"fields,omitempty"`
}

// DataSource is the dataSource dataset facet.
type DataSource struct {
	Name string `json:"name,omitempty"`
	URI  string `json:"uri,omitempty"`
}

// ColumnLineage says which input fields an output field is derived from.
type ColumnLineage struct {
	Field  string       `json:"field"`
	Inputs []InputField `json:"inputFields"`
	// TransformationDescription/Type are the deprecated per-field forms
	// (column lineage facet 1-0-x).
	TransformationDescription string `json:"transformationDescription,omitempty"`
	TransformationType        string `json:"transformationType,omitempty"`
}

// InputField is one input column of a column-lineage entry.
type InputField struct {
	Namespace       string           `json:"namespace"`
	Name            string           `json:"name"`
	Field           string           `json:"field"`
	Transformations []Transformation `json:"transformations,omitempty"`
}

// Transformation says how an input field feeds an output field.
type Transformation struct {
	Type        string `json:"type"`
	Subtype     string `json:"subtype,omitempty"`
	Description string `json:"description,omitempty"`
	Masking     bool   `json:"masking,omitempty"`
}

// Quality is the dataQualityMetrics facet.
type Quality struct {
	RowCount  *int64         `json:"rowCount,omitempty"`
	Bytes     *int64         `json:"bytes,omitempty"`
	FileCount *int64         `json:"fileCount,omitempty"`
	Columns   []ColumnMetric `json:"columnMetrics,omitempty"`
}

// ColumnMetric is the data quality metrics of one column.
type ColumnMetric struct {
	Column        string   `json:"column"`
	NullCount     *int64   `json:"nullCount,omitempty"`
	DistinctCount *int64   `json:"distinctCount,omitempty"`
	Sum           *float64 `json:"sum,omitempty"`
	Count         *float64 `json:"count,omitempty"`
	Min           *float64 `json:"min,omitempty"`
	Max           *float64 `json:"max,omitempty"`
}

// Statistics is the inputStatistics / outputStatistics facet.
type Statistics struct {
	RowCount  *int64 `json:"rowCount,omitempty"`
	Size      *int64 `json:"size,omitempty"`
	FileCount *int64 `json:"fileCount,omitempty"`
}

// RowCount is the dataset's row count from its statistics or quality
// facet, or nil.
func (d *Dataset) RowCount() *int64 {
	if d.Stats != nil && d.Stats.RowCount != nil {
		return d.Stats.RowCount
	}
	if d.Quality != nil {
		return d.Quality.RowCount
	}
	return nil
}

// Bytes is the dataset's size in bytes from its statistics or quality
// facet, or nil.
func (d *Dataset) Bytes() *int64 {
	if d.Stats != nil && d.Stats.Size != nil {
		return d.Stats.Size
	}
	if d.Quality != nil {
		return d.Quality.Bytes
	}
	return nil
}

// Parsed is a parsed payload: a run event, a static event (an OpenLineage
// DatasetEvent or JobEvent) or cost rows.
type Parsed struct {
	Event  *RunEvent
	Static *StaticEvent
	Costs  []CostRow
}

// Parse parses a payload of the given type. Payload types this package
// does not know return an error wrapping ErrNotLineage.
func Parse(payloadType string, b []byte, lim Limits) (*Parsed, error) {
	switch payloadType {
	case TypeOpenLineage:
		e, err := ParseRunEvent(b, lim)
		if err != nil {
			return nil, err
		}
		return &Parsed{Event: e}, nil
	case TypeInToto:
		e, err := ParseStatement(b, lim)
		if err != nil {
			return nil, err
		}
		return &Parsed{Event: e}, nil
	case TypeCost:
		rows, err := ParseCost(b, lim)
		if err != nil {
			return nil, err
		}
		return &Parsed{Costs: rows}, nil
	case TypeOpenLineageDataset:
		e, err := ParseDatasetEvent(b, lim)
		if err != nil {
			return nil, err
		}
		return &Parsed{Static: e}, nil
	case TypeOpenLineageJob:
		e, err := ParseJobEvent(b, lim)
		if err != nil {
			return nil, err
		}
		return &Parsed{Static: e}, nil
	}
	return nil, &notLineage{msg: "payload type " + payloadType + " is not indexed"}
}

type notLineage struct{ msg string }

func (e *notLineage) Error() string        { return e.msg }
func (e *notLineage) Is(target error) bool { return target == ErrNotLineage }
