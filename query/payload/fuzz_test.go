package payload

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// addSeeds adds every testdata file under dir as a seed.
func addSeeds(f *testing.F, dirs ...string) {
	for _, dir := range dirs {
		files, err := filepath.Glob(filepath.Join("testdata", dir, "*.json"))
		if err != nil {
			f.Fatal(err)
		}
		for _, p := range files {
			b, err := os.ReadFile(p)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(b)
		}
	}
}

// checkParse is the property every parser must have: no panic; every
// error is a FieldError (ErrInvalid) or ErrNotLineage; an accepted payload
// marshals to JSON, and parsing is deterministic.
func checkParse[T any](t *testing.T, b []byte, parse func([]byte, Limits) (T, error)) {
	v, err := parse(b, Limits{MaxFacetSize: 4096, MaxFields: 64, MaxDatasets: 16})
	if err != nil {
		var fe *FieldError
		if !errors.As(err, &fe) && !errors.Is(err, ErrNotLineage) {
			t.Fatalf("error %v (%T) is neither a FieldError nor ErrNotLineage", err, err)
		}
		if errors.As(err, &fe) && fe.Msg == "" {
			t.Fatalf("error without a message: %#v", fe)
		}
		return
	}
	j1, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("accepted payload does not marshal: %v", err)
	}
	v2, err := parse(b, Limits{MaxFacetSize: 4096, MaxFields: 64, MaxDatasets: 16})
	if err != nil {
		t.Fatalf("second parse failed: %v", err)
	}
	j2, _ := json.Marshal(v2)
	if !bytes.Equal(j1, j2) {
		t.Fatalf("parse is not deterministic:\n%s\n%s", j1, j2)
	}
}

func FuzzParseRunEvent(f *testing.F) {
	addSeeds(f, "openlineage", "bad")
	f.Fuzz(func(t *testing.T, b []byte) {
		checkParse(t, b, ParseRunEvent)
		if e, err := ParseRunEvent(b, Limits{}); err == nil {
			if e.Run.ID == "" || e.Job.Namespace == "" || e.Job.Name == "" || e.EventTime.IsZero() && !bytes.Contains(b, []byte("0001-01-01")) {
				t.Fatalf("accepted an event without run id, job or time: %+v", e)
			}
		}
	})
}

func FuzzParseStatement(f *testing.F) {
	addSeeds(f, "intoto")
	f.Fuzz(func(t *testing.T, b []byte) {
		checkParse(t, b, ParseStatement)
	})
}

func FuzzParseCost(f *testing.F) {
	addSeeds(f, "cost")
	f.Fuzz(func(t *testing.T, b []byte) {
		checkParse(t, b, ParseCost)
		rows, err := ParseCost(b, Limits{})
		if err != nil {
			return
		}
		for _, r := range rows {
			if r.Amount() == "" || r.BillingCurrency == "" {
				t.Fatalf("accepted a row without amount or currency: %+v", r)
			}
			if d, ok := ParseDecimal(string(r.Amount())); !ok || d != r.Amount() {
				t.Fatalf("amount %q is not canonical", r.Amount())
			}
		}
	})
}

// FuzzCountMembers: the one-pass member count agrees with encoding/json's
// tokenizer on every valid object, so duplicate members are always found.
func FuzzCountMembers(f *testing.F) {
	addSeeds(f, "openlineage", "intoto", "cost", "bad")
	f.Add([]byte(`{"a":1,"a":2}`))
	f.Add([]byte(`{"a\"b":"x,\"y","c":[{"d":1},"e"],"f":{}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		t2 := bytes.TrimSpace(b)
		if !json.Valid(t2) || len(t2) == 0 || t2[0] != '{' {
			return
		}
		dec := json.NewDecoder(bytes.NewReader(t2))
		dec.Token()
		want := 0
		for dec.More() {
			if _, err := dec.Token(); err != nil {
				t.Fatal(err)
			}
			var skip json.RawMessage
			if err := dec.Decode(&skip); err != nil {
				t.Fatal(err)
			}
			want++
		}
		if got := countMembers(t2); got != want {
			t.Fatalf("countMembers = %d, encoding/json counts %d in %s", got, want, t2)
		}
	})
}
