package payload

import (
	"errors"
	"os"
	"strings"
	"testing"
)

// TestStaticEvents: the DatasetEvent and JobEvent of testdata/static parse
// into the model, and ParseOpenLineageEvent tells them and a RunEvent
// apart.
func TestStaticEvents(t *testing.T) {
	read := func(p string) []byte {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	ds, err := ParseDatasetEvent(read("testdata/static/dataset-event.json"), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if d := ds.Dataset; d == nil || d.Namespace != "snowflake://acme.eu-west-1" || d.Name != "ANALYTICS.PUBLIC.DAILY_REVENUE" ||
		len(d.Schema) != 2 || d.Schema[1].Name != "revenue" || d.DataSource == nil || len(d.Tags) != 1 || d.Tags[0].Value != "finance" ||
		ds.Job != nil || ds.EventTime.IsZero() {
		t.Errorf("DatasetEvent: %+v", ds)
	}
	je, err := ParseJobEvent(read("testdata/static/job-event.json"), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if j := je.Job; j == nil || j.Namespace != "dbt-prod" || j.CodeVersion() != "4b825dc642cb6eb9a060e54bf8d69288fbee4904" ||
		j.Type == nil || j.Type.JobType != "MODEL" || len(je.Inputs) != 2 || len(je.Outputs) != 1 ||
		len(je.Outputs[0].ColumnLineage) != 1 || je.Dataset != nil {
		t.Errorf("JobEvent: %+v", je)
	}
	for _, tc := range []struct {
		file, want string
	}{
		{"testdata/static/dataset-event.json", TypeOpenLineageDataset},
		{"testdata/static/job-event.json", TypeOpenLineageJob},
		{"testdata/openlineage/aggregate-complete.json", TypeOpenLineage},
	} {
		e, err := ParseOpenLineageEvent(read(tc.file), Limits{})
		if err != nil {
			t.Errorf("%s: %v", tc.file, err)
			continue
		}
		if e.Type != tc.want || (e.Run == nil) == (tc.want == TypeOpenLineage) || (e.Static == nil) != (tc.want == TypeOpenLineage) {
			t.Errorf("%s: %+v, want type %s", tc.file, e, tc.want)
		}
	}
}

// TestBadStaticEvents: each bad event is refused with a FieldError naming
// the field.
func TestBadStaticEvents(t *testing.T) {
	const head = `"eventTime":"2026-11-20T06:00:00Z","producer":"p"`
	cases := []struct {
		name, event, field, msg string
	}{
		{"dataset without name", `{` + head + `,"dataset":{"namespace":"ns"}}`, "dataset.name", "is required"},
		{"dataset event with job", `{` + head + `,"dataset":{"namespace":"ns","name":"n"},"job":{"namespace":"j","name":"j"}}`, "dataset", "not both"},
		{"dataset event with inputs", `{` + head + `,"dataset":{"namespace":"ns","name":"n"},"inputs":[]}`, "inputs", "DatasetEvent has no inputs"},
		{"dataset event without time", `{"producer":"p","dataset":{"namespace":"ns","name":"n"}}`, "eventTime", "is required"},
		{"dataset facet over cap", `{` + head + `,"dataset":{"namespace":"ns","name":"n","facets":{"schema":{"fields":[],"pad":"` + strings.Repeat("x", 300) + `"}}}}`, "dataset.facets.schema", "the limit is 256"},
		{"job event without job name", `{` + head + `,"job":{"namespace":"j"}}`, "job.name", "is required"},
		{"job event bad input", `{` + head + `,"job":{"namespace":"j","name":"n"},"inputs":[{"namespace":"ns"}]}`, "inputs[0].name", "is required"},
		{"job with eventType is a run event", `{` + head + `,"eventType":"COMPLETE","job":{"namespace":"j","name":"n"}}`, "run", "is required"},
		{"nothing", `{` + head + `}`, "run", "is required"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseOpenLineageEvent([]byte(tc.event), Limits{MaxFacetSize: 256})
			var fe *FieldError
			if !errors.As(err, &fe) || !errors.Is(err, ErrInvalid) {
				t.Fatalf("error %v, want a FieldError", err)
			}
			if fe.Field != tc.field || !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("field %q, error %q; want field %q and %q", fe.Field, err, tc.field, tc.msg)
			}
		})
	}
	if _, err := ParseJobEvent([]byte(`{`+head+`,"job":{"namespace":"j","name":"n"},"dataset":{"namespace":"ns","name":"n"}}`), Limits{}); err == nil || !strings.Contains(err.Error(), "JobEvent has no dataset") {
		t.Errorf("a dataset accepted in a JobEvent: %v", err)
	}
	for _, p := range []func([]byte, Limits) (*StaticEvent, error){ParseDatasetEvent, ParseJobEvent} {
		if _, err := p([]byte(`{`+head+`,"run":{"runId":"x"}}`), Limits{}); err == nil || !strings.Contains(err.Error(), "send a RunEvent") {
			t.Errorf("a run accepted in a static event: %v", err)
		}
		if _, err := p([]byte(`[1]`), Limits{}); !errors.Is(err, ErrInvalid) {
			t.Errorf("an array: %v", err)
		}
	}
}

func FuzzParseOpenLineageEvent(f *testing.F) {
	addSeeds(f, "static", "openlineage", "bad")
	f.Fuzz(func(t *testing.T, b []byte) {
		checkParse(t, b, ParseOpenLineageEvent)
	})
}

// Parse dispatches the static payload types, and a malformed static
// payload is a FieldError, as the indexer records it.
func TestParseStaticTypes(t *testing.T) {
	for _, c := range []struct {
		typ, file string
	}{
		{TypeOpenLineageDataset, "testdata/static/dataset-event.json"},
		{TypeOpenLineageJob, "testdata/static/job-event.json"},
	} {
		b, err := os.ReadFile(c.file)
		if err != nil {
			t.Fatal(err)
		}
		p, err := Parse(c.typ, b, Limits{})
		if err != nil || p.Static == nil || p.Event != nil || p.Costs != nil {
			t.Errorf("%s: %+v %v", c.typ, p, err)
		}
		// The other static type's parser refuses it, naming the field.
		other := TypeOpenLineageJob
		if c.typ == TypeOpenLineageJob {
			other = TypeOpenLineageDataset
		}
		var fe *FieldError
		if _, err := Parse(other, b, Limits{}); !errors.As(err, &fe) {
			t.Errorf("%s parsed as %s: %v", c.file, other, err)
		}
	}
}

// StaticVersion: the version facet; else a name of the schema (same
// schema, same version; any change in a name, type, description or
// nesting, another); else none.
func TestStaticVersion(t *testing.T) {
	f := func(fs ...SchemaField) *Dataset { return &Dataset{Schema: fs} }
	base := StaticVersion(f(SchemaField{Name: "a", Type: "INT"}, SchemaField{Name: "b", Fields: []SchemaField{{Name: "c"}}}))
	if !strings.HasPrefix(base, "schema:") || len(base) != len("schema:")+32 {
		t.Fatalf("schema version %q", base)
	}
	for i, d := range []*Dataset{
		f(SchemaField{Name: "a", Type: "INT"}),
		f(SchemaField{Name: "a", Type: "BIGINT"}, SchemaField{Name: "b", Fields: []SchemaField{{Name: "c"}}}),
		f(SchemaField{Name: "a", Type: "INT"}, SchemaField{Name: "b", Description: "x", Fields: []SchemaField{{Name: "c"}}}),
		f(SchemaField{Name: "a", Type: "INT"}, SchemaField{Name: "b"}, SchemaField{Name: "c"}),
		f(SchemaField{Name: "aI", Type: "NT"}, SchemaField{Name: "b", Fields: []SchemaField{{Name: "c"}}}),
	} {
		if v := StaticVersion(d); v == base || v == "" {
			t.Errorf("schema %d: version %q", i, v)
		}
	}
	if v := StaticVersion(f(SchemaField{Name: "a", Type: "INT"}, SchemaField{Name: "b", Fields: []SchemaField{{Name: "c"}}})); v != base {
		t.Errorf("the same schema: %q, then %q", base, v)
	}
	if v := StaticVersion(&Dataset{Version: "v7", Schema: []SchemaField{{Name: "a"}}}); v != "v7" {
		t.Errorf("version facet: %q", v)
	}
	if v := StaticVersion(&Dataset{}); v != "" {
		t.Errorf("no version, no schema: %q", v)
	}
}
