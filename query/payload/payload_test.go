package payload

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func readTestdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func i64(n int64) *int64 { return &n }

func TestRunEventEveryFacet(t *testing.T) {
	e, err := ParseRunEvent(readTestdata(t, "openlineage/aggregate-complete.json"), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if e.Source != SourceOpenLineage || e.EventType != Complete || !e.EventTime.Equal(time.Date(2026, 11, 26, 10, 15, 0, 0, time.UTC)) {
		t.Errorf("event: %+v", e)
	}
	if e.Run.ID != "0193a6f2-7c1e-7d3a-9b2e-5f4c3d2e1a02" {
		t.Errorf("runId not canonicalized: %q", e.Run.ID)
	}
	p := e.Run.Parent
	if p == nil || p.RunID != "0193a6f2-7c1e-7d3a-9b2e-5f4c3d2e1a00" || p.Job != (JobRef{"airflow-prod", "daily_orders"}) || p.RootRunID != p.RunID || p.RootJob == nil {
		t.Errorf("parent: %+v", p)
	}
	if e.Run.Engine == nil || e.Run.Engine.Name != "Airflow" || e.Run.Engine.Version != "2.10.3" || e.Run.Engine.OpenlineageAdapterVersion != "1.24.0" {
		t.Errorf("engine: %+v", e.Run.Engine)
	}
	if !e.Run.NominalStart.Equal(time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC)) || !e.Run.NominalEnd.Equal(time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("nominal time: %v %v", e.Run.NominalStart, e.Run.NominalEnd)
	}
	if len(e.Run.Tags) != 1 || e.Run.Tags[0] != (Tag{Key: "billing-run", Value: "agg-2026-11-26", Source: "AIRFLOW"}) {
		t.Errorf("run tags: %+v", e.Run.Tags)
	}
	j := e.Job
	if j.JobRef != (JobRef{"airflow-prod", "daily_orders.aggregate"}) || j.CodeVersion() != "4f1c2e9a7b3d5e6f8091a2b3c4d5e6f708192a3b" {
		t.Errorf("job: %+v", j)
	}
	if s := j.Source; s.Type != "git" || s.RepoURL != "https://git.example.com/data/pipelines.git" || s.Path != "dags/daily_orders.py" || s.Tag != "v1.8.0" || s.Branch != "main" || !strings.HasPrefix(s.URL, "https://git.example.com/") {
		t.Errorf("source: %+v", s)
	}
	if j.Type == nil || *j.Type != (JobType{"BATCH", "AIRFLOW", "TASK"}) {
		t.Errorf("job type: %+v", j.Type)
	}
	if len(j.Tags) != 2 || j.Tags[1] != (Tag{Key: "tier", Value: "gold", Source: "CATALOG"}) {
		t.Errorf("job tags: %+v", j.Tags)
	}
	if len(e.Inputs) != 2 || len(e.Outputs) != 1 {
		t.Fatalf("%d inputs, %d outputs", len(e.Inputs), len(e.Outputs))
	}
	in := e.Inputs[0]
	if in.Namespace != "s3://lake" || in.Name != "raw/orders" || in.Version != "orders-2026-11-26" || len(in.Schema) != 4 || in.Schema[2].Description != "order total in EUR" {
		t.Errorf("input 0: %+v", in)
	}
	if in.DataSource == nil || in.DataSource.URI != "s3://lake/raw/orders" || in.StorageLayer != "iceberg" || in.FileFormat != "parquet" {
		t.Errorf("input 0 data source/storage: %+v", in)
	}
	q := in.Quality
	if q == nil || *q.RowCount != 1500 || *q.Bytes != 94208 || *q.FileCount != 3 || len(q.Columns) != 2 || q.Columns[0].Column != "amount" || *q.Columns[0].Sum != 183422.5 || *q.Columns[0].Max != 9120 || *q.Columns[1].DistinctCount != 1500 {
		t.Errorf("quality: %+v", q)
	}
	if in.Stats == nil || *in.Stats.RowCount != 1500 || *in.Stats.Size != 94208 || *in.RowCount() != 1500 || *in.Bytes() != 94208 {
		t.Errorf("input statistics: %+v", in.Stats)
	}
	cust := e.Inputs[1]
	if len(cust.Schema) != 3 || len(cust.Schema[2].Fields) != 2 || cust.Schema[2].Fields[0].Name != "region" {
		t.Errorf("nested schema: %+v", cust.Schema)
	}
	if len(cust.Tags) != 1 || cust.Tags[0].Field != "email" {
		t.Errorf("dataset tags: %+v", cust.Tags)
	}
	out := e.Outputs[0]
	if out.Version != "rev-2026-11-26" || out.LifecycleStateChange != "OVERWRITE" || *out.RowCount() != 42 || *out.Bytes() != 2048 || *out.Stats.FileCount != 1 {
		t.Errorf("output: %+v", out)
	}
	var fields []string
	for _, c := range out.ColumnLineage {
		fields = append(fields, c.Field)
	}
	if strings.Join(fields, ",") != "day,region,revenue" {
		t.Errorf("column lineage not sorted by field: %v", fields)
	}
	rev := out.ColumnLineage[2]
	if len(rev.Inputs) != 1 || !reflect.DeepEqual(rev.Inputs[0], InputField{Namespace: "s3://lake", Name: "raw/orders", Field: "amount", Transformations: []Transformation{{Type: "DIRECT", Subtype: "AGGREGATION", Description: "sum(amount)"}}}) {
		t.Errorf("revenue lineage: %+v", rev)
	}
	if len(out.DatasetLineage) != 2 || out.DatasetLineage[0].Transformations[0].Subtype != "JOIN" {
		t.Errorf("dataset lineage: %+v", out.DatasetLineage)
	}
	if len(out.Tags) != 1 || out.Tags[0].Key != "domain" {
		t.Errorf("output tags: %+v", out.Tags)
	}
	// The model marshals (the indexer stores parts of it as JSON).
	if _, err := json.Marshal(e); err != nil {
		t.Fatal(err)
	}
}

func TestRunEventSmall(t *testing.T) {
	e, err := ParseRunEvent(readTestdata(t, "openlineage/aggregate-start.json"), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if e.EventType != Start || len(e.Inputs) != 2 || e.Outputs[0].Version != "" || e.Run.Parent != nil {
		t.Errorf("%+v", e)
	}
	e, err = ParseRunEvent(readTestdata(t, "openlineage/extract-fail.json"), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if e.EventType != Fail || e.Run.ErrorMessage != "executor lost" || e.Run.Parent != nil || !e.EventTime.Equal(time.Date(2026, 11, 26, 8, 59, 30, 5e8, time.UTC)) {
		t.Errorf("%+v", e)
	}
	// eventType is optional in spec 2-0-x.
	e, err = ParseRunEvent([]byte(`{"eventTime":"2026-01-01T00:00:00Z","producer":"p","run":{"runId":"0193a6f2-7c1e-7d3a-9b2e-5f4c3d2e1a00"},"job":{"namespace":"n","name":"j"}}`), Limits{})
	if err != nil || e.EventType != "" {
		t.Fatalf("%+v %v", e, err)
	}
}

const okRun = `"run":{"runId":"0193a6f2-7c1e-7d3a-9b2e-5f4c3d2e1a00"}`
const okJob = `"job":{"namespace":"n","name":"j"}`
const okHead = `"eventType":"START","eventTime":"2026-01-01T00:00:00Z","producer":"p"`

func TestRunEventErrors(t *testing.T) {
	big := `{"_producer":"p","_schemaURL":"s","blob":"` + strings.Repeat("x", 2000) + `"}`
	for _, c := range []struct {
		name, event, field, msg string
		lim                     Limits
	}{
		{"not json", `{`, "", "not an OpenLineage RunEvent", Limits{}},
		{"array", `[]`, "", "must be a JSON object", Limits{}},
		{"missing runId", `{` + okHead + `,"run":{},` + okJob + `}`, "run.runId", "is required", Limits{}},
		{"null runId", `{` + okHead + `,"run":{"runId":null},` + okJob + `}`, "run.runId", "is required", Limits{}},
		{"bad uuid", `{` + okHead + `,"run":{"runId":"not-a-uuid"},` + okJob + `}`, "run.runId", "is not a UUID", Limits{}},
		{"uuid bad char", `{` + okHead + `,"run":{"runId":"0193a6f2-7c1e-7d3a-9b2e-5f4c3d2e1a0g"},` + okJob + `}`, "run.runId", "is not a UUID", Limits{}},
		{"uuid number", `{` + okHead + `,"run":{"runId":42},` + okJob + `}`, "run.runId", "must be a string", Limits{}},
		{"unknown eventType", `{"eventType":"FINISHED","eventTime":"2026-01-01T00:00:00Z","producer":"p",` + okRun + `,` + okJob + `}`, "eventType", `"FINISHED" is not an event type`, Limits{}},
		{"lowercase eventType", `{"eventType":"start","eventTime":"2026-01-01T00:00:00Z","producer":"p",` + okRun + `,` + okJob + `}`, "eventType", "is not an event type", Limits{}},
		{"missing eventTime", `{"eventType":"START","producer":"p",` + okRun + `,` + okJob + `}`, "eventTime", "is required", Limits{}},
		{"bad eventTime", `{"eventType":"START","eventTime":"yesterday","producer":"p",` + okRun + `,` + okJob + `}`, "eventTime", "RFC 3339", Limits{}},
		{"missing producer", `{"eventType":"START","eventTime":"2026-01-01T00:00:00Z",` + okRun + `,` + okJob + `}`, "producer", "is required", Limits{}},
		{"missing job", `{` + okHead + `,` + okRun + `}`, "job", "is required", Limits{}},
		{"missing job name", `{` + okHead + `,` + okRun + `,"job":{"namespace":"n"}}`, "job.name", "is required", Limits{}},
		{"empty job namespace", `{` + okHead + `,` + okRun + `,"job":{"namespace":"","name":"j"}}`, "job.namespace", "must not be empty", Limits{}},
		{"wrong case member", `{` + okHead + `,"run":{"RunId":"0193a6f2-7c1e-7d3a-9b2e-5f4c3d2e1a00"},` + okJob + `}`, "run.runId", "is required", Limits{}},
		{"duplicate member", `{` + okHead + `,` + okRun + `,` + okRun + `,` + okJob + `}`, "run", "is given twice", Limits{}},
		{"dataset event", `{"eventTime":"2026-01-01T00:00:00Z","producer":"p","dataset":{"namespace":"n","name":"d"}}`, "run", "DatasetEvent", Limits{}},
		{"job event", `{"eventTime":"2026-01-01T00:00:00Z","producer":"p",` + okJob + `}`, "run", "JobEvent", Limits{}},
		{"input without name", `{` + okHead + `,` + okRun + `,` + okJob + `,"inputs":[{"namespace":"n"}]}`, "inputs[0].name", "is required", Limits{}},
		{"inputs not array", `{` + okHead + `,` + okRun + `,` + okJob + `,"inputs":{}}`, "inputs", "must be an array", Limits{}},
		{"giant facet", `{` + okHead + `,` + okRun + `,` + okJob + `,"outputs":[{"namespace":"n","name":"d","facets":{"schema":` + big + `}}]}`, "outputs[0].facets.schema", "facet is", Limits{MaxFacetSize: 1024}},
		{"giant run facet", `{` + okHead + `,"run":{"runId":"0193a6f2-7c1e-7d3a-9b2e-5f4c3d2e1a00","facets":{"spark":` + big + `}},` + okJob + `}`, "run.facets.spark", "the limit is 1024", Limits{MaxFacetSize: 1024}},
		{"facet not object", `{` + okHead + `,` + okRun + `,"job":{"namespace":"n","name":"j","facets":{"sql":"select"}}}`, "job.facets.sql", "must be a JSON object", Limits{}},
		{"too many datasets", `{` + okHead + `,` + okRun + `,` + okJob + `,"inputs":[{"namespace":"n","name":"a"},{"namespace":"n","name":"b"}],"outputs":[{"namespace":"n","name":"c"}]}`, "inputs", "the limit is 2", Limits{MaxDatasets: 2}},
		{"bad parent uuid", `{` + okHead + `,"run":{"runId":"0193a6f2-7c1e-7d3a-9b2e-5f4c3d2e1a00","facets":{"parent":{"run":{"runId":"x"},"job":{"namespace":"n","name":"p"}}}},` + okJob + `}`, "run.facets.parent.run.runId", "is not a UUID", Limits{}},
		{"parent without job", `{` + okHead + `,"run":{"runId":"0193a6f2-7c1e-7d3a-9b2e-5f4c3d2e1a00","facets":{"parent":{"run":{"runId":"0193a6f2-7c1e-7d3a-9b2e-5f4c3d2e1a00"}}}},` + okJob + `}`, "run.facets.parent.job", "is required", Limits{}},
		{"column lineage bad transformation", `{` + okHead + `,` + okRun + `,` + okJob + `,"outputs":[{"namespace":"n","name":"d","facets":{"columnLineage":{"fields":{"a":{"inputFields":[{"namespace":"n","name":"s","field":"b","transformations":[{"type":"COPY"}]}]}}}}}]}`, "outputs[0].facets.columnLineage.fields.a.inputFields[0].transformations[0].type", "DIRECT or INDIRECT", Limits{}},
		{"column lineage without field", `{` + okHead + `,` + okRun + `,` + okJob + `,"outputs":[{"namespace":"n","name":"d","facets":{"columnLineage":{"fields":{"a":{"inputFields":[{"namespace":"n","name":"s"}]}}}}}]}`, "outputs[0].facets.columnLineage.fields.a.inputFields[0].field", "is required", Limits{}},
		{"negative row count", `{` + okHead + `,` + okRun + `,` + okJob + `,"outputs":[{"namespace":"n","name":"d","outputFacets":{"outputStatistics":{"rowCount":-1}}}]}`, "outputs[0].outputFacets.outputStatistics.rowCount", "negative", Limits{}},
		{"fractional row count", `{` + okHead + `,` + okRun + `,` + okJob + `,"inputs":[{"namespace":"n","name":"d","inputFacets":{"inputStatistics":{"rowCount":1.5}}}]}`, "inputs[0].inputFacets.inputStatistics.rowCount", "must be an integer", Limits{}},
		{"version without datasetVersion", `{` + okHead + `,` + okRun + `,` + okJob + `,"outputs":[{"namespace":"n","name":"d","facets":{"version":{}}}]}`, "outputs[0].facets.version.datasetVersion", "is required", Limits{}},
		{"schema field without name", `{` + okHead + `,` + okRun + `,` + okJob + `,"outputs":[{"namespace":"n","name":"d","facets":{"schema":{"fields":[{"type":"INT"}]}}}]}`, "outputs[0].facets.schema.fields[0].name", "is required", Limits{}},
		{"too many schema fields", `{` + okHead + `,` + okRun + `,` + okJob + `,"outputs":[{"namespace":"n","name":"d","facets":{"schema":{"fields":[{"name":"a","fields":[{"name":"b"},{"name":"c"}]}]}}}]}`, "outputs[0].facets.schema.fields[0].fields[1]", "more than 2 fields", Limits{MaxFields: 2}},
		{"bad lifecycle", `{` + okHead + `,` + okRun + `,` + okJob + `,"outputs":[{"namespace":"n","name":"d","facets":{"lifecycleStateChange":{"lifecycleStateChange":"EXPLODE"}}}]}`, "outputs[0].facets.lifecycleStateChange.lifecycleStateChange", "not a lifecycle", Limits{}},
		{"tag without value", `{` + okHead + `,` + okRun + `,"job":{"namespace":"n","name":"j","facets":{"tags":{"tags":[{"key":"k"}]}}}}`, "job.facets.tags.tags[0].value", "is required", Limits{}},
		{"long name", `{` + okHead + `,` + okRun + `,"job":{"namespace":"n","name":"` + strings.Repeat("j", 20) + `"}}`, "job.name", "the limit is 10", Limits{MaxNameLen: 10}},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := ParseRunEvent([]byte(c.event), c.lim)
			if err == nil {
				t.Fatal("no error")
			}
			var fe *FieldError
			if !errors.As(err, &fe) || !errors.Is(err, ErrInvalid) {
				t.Fatalf("error %v is not a FieldError", err)
			}
			if fe.Field != c.field || !strings.Contains(fe.Msg, c.msg) {
				t.Errorf("got field %q msg %q; want field %q msg containing %q", fe.Field, fe.Msg, c.field, c.msg)
			}
		})
	}
}

func TestStatementSLSAv1(t *testing.T) {
	e, err := ParseStatement(readTestdata(t, "intoto/slsa-v1.json"), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if e.Source != SourceInToto || e.EventType != Complete || e.Run.ID != "train-2026-11-26-001" || !e.EventTime.Equal(time.Date(2026, 11, 26, 11, 42, 0, 0, time.UTC)) {
		t.Errorf("%+v", e)
	}
	if e.Job.JobRef != (JobRef{"https://ml.example.com/trainer", "https://ml.example.com/train@v1"}) {
		t.Errorf("job %+v", e.Job)
	}
	if e.Job.CodeVersion() != "7d3a9b2e5f4c3d2e1a00193a6f27c1e7d3a9b2e5" || e.Job.Source.RepoURL != "git+https://git.example.com/ml/churn.git@refs/heads/main" {
		t.Errorf("source %+v", e.Job.Source)
	}
	want := []Dataset{
		{Namespace: "s3://models", Name: "churn/model.onnx", Version: "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"},
		{Namespace: ArtifactNamespace, Name: "churn-model-card.md", Version: "sha256:2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae"},
	}
	if len(e.Outputs) != 2 || e.Outputs[0].Namespace != want[0].Namespace || e.Outputs[0].Name != want[0].Name || e.Outputs[0].Version != want[0].Version || e.Outputs[1].Name != want[1].Name || e.Outputs[1].Namespace != want[1].Namespace {
		t.Errorf("outputs %+v", e.Outputs)
	}
	if len(e.Inputs) != 4 {
		t.Fatalf("inputs %+v", e.Inputs)
	}
	if e.Inputs[0].Namespace != "git+https://git.example.com" || e.Inputs[0].Name != "ml/churn.git@refs/heads/main" || e.Inputs[0].Version != "gitCommit:7d3a9b2e5f4c3d2e1a00193a6f27c1e7d3a9b2e5" {
		t.Errorf("input 0 %+v", e.Inputs[0])
	}
	if e.Inputs[1].Namespace != "snowflake://acme.eu-west-1" || e.Inputs[1].Name != "ANALYTICS.PUBLIC.DAILY_REVENUE" {
		t.Errorf("input 1 %+v", e.Inputs[1])
	}
	if e.Inputs[2].Namespace != ArtifactNamespace || e.Inputs[2].Name != "base-image" {
		t.Errorf("input 2 %+v", e.Inputs[2])
	}
	if e.Inputs[3].Namespace != ArtifactNamespace || e.Inputs[3].Name != "sha1:da39a3ee5e6b4b0d3255bfef95601890afd80709" {
		t.Errorf("input 3 %+v", e.Inputs[3])
	}
}

func TestStatementSLSAv02(t *testing.T) {
	b := readTestdata(t, "intoto/slsa-v02.json")
	e, err := ParseStatement(b, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if e.Run.ID != "4242-1" || e.Job.Name != "https://github.com/slsa-framework/slsa-github-generator/go@v1" || !e.EventTime.Equal(time.Date(2026, 11, 20, 8, 0, 0, 0, time.UTC)) {
		t.Errorf("%+v", e)
	}
	if len(e.Inputs) != 1 || e.Job.CodeVersion() != "1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d" {
		t.Errorf("%+v", e.Inputs)
	}
	// No invocation id: the run id is the statement's digest.
	noID := strings.Replace(string(b), `"buildInvocationId": "4242-1", `, "", 1)
	e, err = ParseStatement([]byte(noID), Limits{})
	if err != nil || !strings.HasPrefix(e.Run.ID, "sha256:") || len(e.Run.ID) != 71 {
		t.Fatalf("%v %+v", err, e)
	}
	if _, err := ParseStatement(readTestdata(t, "intoto/vuln-scan.json"), Limits{}); !errors.Is(err, ErrNotLineage) || errors.Is(err, ErrInvalid) {
		t.Errorf("vuln scan: %v", err)
	}
	// Another predicate type is not lineage whatever its subjects and
	// predicate hold: they are not parsed.
	other := `{"_type":"https://in-toto.io/Statement/v1","subject":"not a list","predicateType":"https://example.com/scan/v1","predicate":[1]}`
	if _, err := ParseStatement([]byte(other), Limits{}); !errors.Is(err, ErrNotLineage) || errors.Is(err, ErrInvalid) {
		t.Errorf("other predicate type with malformed subject: %v", err)
	}
}

func TestStatementErrors(t *testing.T) {
	for _, c := range []struct{ name, stmt, field, msg string }{
		{"bad type", `{"_type":"https://in-toto.io/Statement/v9","subject":[],"predicateType":"x"}`, "_type", "not an in-toto Statement"},
		{"no subjects", `{"_type":"https://in-toto.io/Statement/v1","subject":[],"predicateType":"https://slsa.dev/provenance/v1","predicate":{}}`, "subject", "at least one"},
		{"subject without digest", `{"_type":"https://in-toto.io/Statement/v1","subject":[{"name":"a"}],"predicateType":"https://slsa.dev/provenance/v1","predicate":{}}`, "subject[0].digest", "is required"},
		{"subject bad hex", `{"_type":"https://in-toto.io/Statement/v1","subject":[{"name":"a","digest":{"sha256":"zz"}}],"predicateType":"https://slsa.dev/provenance/v1","predicate":{}}`, "subject[0].digest.sha256", "not hex"},
		{"no predicate", `{"_type":"https://in-toto.io/Statement/v1","subject":[{"name":"a","digest":{"sha256":"aa"}}],"predicateType":"https://slsa.dev/provenance/v1"}`, "predicate", "is required"},
		{"no buildType", `{"_type":"https://in-toto.io/Statement/v1","subject":[{"name":"a","digest":{"sha256":"aa"}}],"predicateType":"https://slsa.dev/provenance/v1","predicate":{"buildDefinition":{},"runDetails":{"builder":{"id":"b"}}}}`, "predicate.buildDefinition.buildType", "is required"},
		{"no builder", `{"_type":"https://in-toto.io/Statement/v1","subject":[{"name":"a","digest":{"sha256":"aa"}}],"predicateType":"https://slsa.dev/provenance/v1","predicate":{"buildDefinition":{"buildType":"t"},"runDetails":{}}}`, "predicate.runDetails.builder", "is required"},
		{"dependency without anything", `{"_type":"https://in-toto.io/Statement/v1","subject":[{"name":"a","digest":{"sha256":"aa"}}],"predicateType":"https://slsa.dev/provenance/v1","predicate":{"buildDefinition":{"buildType":"t","resolvedDependencies":[{}]},"runDetails":{"builder":{"id":"b"}}}}`, "predicate.buildDefinition.resolvedDependencies[0]", "names no artifact"},
		{"bad finishedOn", `{"_type":"https://in-toto.io/Statement/v1","subject":[{"name":"a","digest":{"sha256":"aa"}}],"predicateType":"https://slsa.dev/provenance/v1","predicate":{"buildDefinition":{"buildType":"t"},"runDetails":{"builder":{"id":"b"},"metadata":{"finishedOn":"soon"}}}}`, "predicate.runDetails.metadata.finishedOn", "RFC 3339"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := ParseStatement([]byte(c.stmt), Limits{})
			var fe *FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("error %v is not a FieldError", err)
			}
			if fe.Field != c.field || !strings.Contains(fe.Msg, c.msg) {
				t.Errorf("got %q %q; want field %q msg containing %q", fe.Field, fe.Msg, c.field, c.msg)
			}
		})
	}
}

func TestCost(t *testing.T) {
	rows, err := ParseCost(readTestdata(t, "cost/rows.json"), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 4 {
		t.Fatalf("%d rows", len(rows))
	}
	r := rows[0]
	if r.BilledCost != "12.5" || r.EffectiveCost != "11.25" || r.ListCost != "15" || r.Amount() != "11.25" || r.ConsumedQuantity != "3.75" || r.BillingCurrency != "USD" {
		t.Errorf("amounts %+v", r)
	}
	if r.ServiceName != "Snowflake Warehouse" || r.ResourceId != "acme.eu-west-1/TRANSFORM_WH" || r.SkuId != "sf-credit-enterprise" || r.Tags["team"] != "revenue" || r.ChargeClass != "" {
		t.Errorf("columns %+v", r)
	}
	if r.Link.RunID != "0193a6f2-7c1e-7d3a-9b2e-5f4c3d2e1a02" || r.Link.Job != nil || r.Link.Tag != nil {
		t.Errorf("link %+v", r.Link)
	}
	if rows[1].BilledCost != "0.03" || rows[1].Amount() != "0.03" || rows[1].Tags["retention"] != "30" || rows[1].Link.Job == nil || rows[1].Link.Job.Name != "daily_orders.extract" {
		t.Errorf("row 1 %+v", rows[1])
	}
	if rows[2].Link.Tag == nil || *rows[2].Link.Tag != (Tag{Key: "billing-run", Value: "agg-2026-11-26"}) || rows[2].BillingCurrency != "EUR" {
		t.Errorf("row 2 %+v", rows[2])
	}
	if rows[3].BilledCost != "0.01" || rows[3].Row != 3 || rows[3].Link != (CostLink{}) {
		t.Errorf("row 3 %+v", rows[3])
	}
	one, err := ParseCost(readTestdata(t, "cost/single.json"), Limits{})
	if err != nil || len(one) != 1 || one[0].Link.RunID != "train-2026-11-26-001" || one[0].Amount() != "2.75" {
		t.Fatalf("%v %+v", err, one)
	}
}

func TestCostErrors(t *testing.T) {
	const base = `"BillingCurrency":"USD","ChargePeriodStart":"2026-01-01T00:00:00Z","ChargePeriodEnd":"2026-01-02T00:00:00Z"`
	for _, c := range []struct{ name, doc, field, msg string }{
		{"empty", ``, "", "empty"},
		{"string", `"x"`, "", "must be one FOCUS row"},
		{"no rows", `[]`, "", "no rows"},
		{"no cost", `{` + base + `}`, "BilledCost", "is required"},
		{"bad amount", `{"BilledCost":"12,5",` + base + `}`, "BilledCost", "not a decimal"},
		{"amount too precise", `{"BilledCost":"0.0000000000000000001",` + base + `}`, "BilledCost", "not a decimal"},
		{"bad currency", `{"BilledCost":1,"BillingCurrency":"usd","ChargePeriodStart":"2026-01-01T00:00:00Z","ChargePeriodEnd":"2026-01-02T00:00:00Z"}`, "BillingCurrency", "ISO 4217"},
		{"long currency", `{"BilledCost":1,"BillingCurrency":"DOLLARS","ChargePeriodStart":"2026-01-01T00:00:00Z","ChargePeriodEnd":"2026-01-02T00:00:00Z"}`, "BillingCurrency", "ISO 4217"},
		{"no start", `{"BilledCost":1,"BillingCurrency":"USD","ChargePeriodEnd":"2026-01-02T00:00:00Z"}`, "ChargePeriodStart", "is required"},
		{"end before start", `{"BilledCost":1,"BillingCurrency":"USD","ChargePeriodStart":"2026-01-02T00:00:00Z","ChargePeriodEnd":"2026-01-01T00:00:00Z"}`, "ChargePeriodEnd", "before"},
		{"second row bad", `[{"BilledCost":1,` + base + `},{"BilledCost":true,` + base + `}]`, "[1].BilledCost", "not a decimal"},
		{"job half", `{"BilledCost":1,` + base + `,"x_JobName":"j"}`, "x_JobNamespace", "go together"},
		{"link tag missing", `{"BilledCost":1,` + base + `,"x_LinkTag":"team"}`, "x_LinkTag", "do not have"},
		{"tag value object", `{"BilledCost":1,` + base + `,"Tags":{"a":{}}}`, "Tags.a", "must be a string"},
		{"too many rows", `[{"BilledCost":1,` + base + `},{"BilledCost":1,` + base + `},{"BilledCost":1,` + base + `}]`, "", "the limit is 2"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := ParseCost([]byte(c.doc), Limits{MaxCostRows: 2})
			var fe *FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("error %v is not a FieldError", err)
			}
			if fe.Field != c.field || !strings.Contains(fe.Msg, c.msg) {
				t.Errorf("got %q %q; want field %q msg containing %q", fe.Field, fe.Msg, c.field, c.msg)
			}
		})
	}
}

func TestDecimal(t *testing.T) {
	for in, want := range map[string]Decimal{
		"0": "0", "-0": "0", "1.50": "1.5", "1e3": "1000", "1.5e-3": "0.0015", "-12.340": "-12.34", "0.000000000000000001": "0.000000000000000001", "123456789012345678901234567890": "123456789012345678901234567890",
	} {
		got, ok := ParseDecimal(in)
		if !ok || got != want {
			t.Errorf("ParseDecimal(%q) = %q, %v; want %q", in, got, ok, want)
		}
	}
	for _, bad := range []string{"", "01", "1.", ".5", "+1", "1e", "NaN", "1e99", "0x10", " 1"} {
		if _, ok := ParseDecimal(bad); ok {
			t.Errorf("ParseDecimal(%q) accepted", bad)
		}
	}
	sum := Decimal("0.1").Rat()
	sum.Add(sum, Decimal("0.2").Rat())
	if FormatRat(sum, 18) != "0.3" {
		t.Errorf("0.1+0.2 = %s", FormatRat(sum, 18))
	}
}

func TestParseDispatch(t *testing.T) {
	if p, err := Parse(TypeOpenLineage, readTestdata(t, "openlineage/aggregate-start.json"), Limits{}); err != nil || p.Event == nil {
		t.Error(err)
	}
	if p, err := Parse(TypeInToto, readTestdata(t, "intoto/slsa-v1.json"), Limits{}); err != nil || p.Event == nil {
		t.Error(err)
	}
	if p, err := Parse(TypeCost, readTestdata(t, "cost/single.json"), Limits{}); err != nil || len(p.Costs) != 1 {
		t.Error(err)
	}
	if _, err := Parse("application/vnd.provledger.finding+json", []byte(`{}`), Limits{}); !errors.Is(err, ErrNotLineage) {
		t.Error(err)
	}
}

func TestSplitURI(t *testing.T) {
	for in, want := range map[string][3]string{
		"s3://bucket/a/b.parquet":   {"s3://bucket", "a/b.parquet", "true"},
		"s3://bucket":               {"s3://bucket", "/", "true"},
		"git+https://h/x.git@v1":    {"git+https://h", "x.git@v1", "true"},
		"plain-name":                {"", "", "false"},
		"file:///tmp/x":             {"", "", "false"},
		"weird scheme://host/x":     {"", "", "false"},
		"pkg:npm/left-pad@1.3.0":    {"", "", "false"},
		"https://host:8443/p?q=1#f": {"https://host:8443", "p?q=1#f", "true"},
	} {
		ns, n, ok := splitURI(in)
		if ns != want[0] || n != want[1] || (ok && want[2] != "true") || (!ok && want[2] == "true") {
			t.Errorf("splitURI(%q) = %q %q %v", in, ns, n, ok)
		}
	}
}

func TestBadTestdata(t *testing.T) {
	for file, field := range map[string]string{
		"missing-runid.json":     "run.runId",
		"bad-uuid.json":          "run.runId",
		"unknown-eventtype.json": "eventType",
		"dataset-event.json":     "run",
	} {
		_, err := ParseRunEvent(readTestdata(t, "bad/"+file), Limits{})
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Field != field {
			t.Errorf("%s: got %v, want an error naming %s", file, err, field)
		}
	}
}
