package scanner

import (
	"bytes"
	"errors"
	"reflect"
	"testing"
)

// stateSamples are values of every state type, with the corners of the
// encoding: empty and nil lists, a clipped and an unclipped day, negative
// and huge integers, non-finite floats.
func stateSamples() map[byte][]any {
	clip := 12.5
	return map[byte][]any{
		tblKey:      {&keyState{}, &keyState{PEM: "-----BEGIN PUBLIC KEY-----\nAA==\n", Namespaces: []string{"team-*", "ops"}, Granted: true, GrantedAt: 7, Revoked: true, RevokedAt: 1 << 60}},
		tblApproval: {&approval{}, &approval{Versions: []string{"4f1c2e9a", "", "v2"}}},
		tblBudget:   {&budget{}, &budget{Amount: 12000.01, Entry: 3}},
		tblJob:      {&jobState{}, &jobState{Inputs: []string{"a:b"}, Runs: 1 << 40, LastVersion: "abc", Flagged: []string{"x"}, Outputs: []string{"o:1", "o:2"}}},
		tblDataset:  {&datasetState{}, &datasetState{Schema: []string{"a:int"}, LastUpdate: -5, LastEntry: 9, Updates: 3, Gaps: []int64{1, -2, 1 << 62}, Stale: true, Configured: 3600000}},
		tblRun:      {&runState{}, &runState{Job: "ns\x00job", Started: true, StartedAt: 1, StartEntry: 2, Done: true, DoneAt: 3, MaxEvent: -4, MaxEntry: 5, HasInputs: true, Outputs: []string{"x:y"}}},
		tblVolume:   {&series{}, &series{Points: []point{{V: 1.5, WD: 0}, {V: -0.0, WD: 6}, {V: 1e300, WD: -1}}}},
		tblCost: {&costSeries{}, &costSeries{Day: 20000, Sum: 0.1 + 0.2, Entries: []uint64{4, 5}, Amounts: []float64{0.1, 0.2},
			Band: series{Points: []point{{V: 3, WD: 2}}}, Daily: []dayValue{{Day: 19999, V: 7}, {Day: 20000, V: 99, Clip: &clip}},
			Month: 202611, MonthSum: 1e-9, Flagged: 202610}},
	}
}

// encodeState encodes v, a pointer to a state value.
func encodeState(v any) []byte {
	return v.(interface{ appendState([]byte) []byte }).appendState(nil)
}

// decodeStateAs decodes b as the value type of table pfx.
func decodeStateAs(pfx byte, b []byte) (any, error) {
	switch pfx {
	case tblKey:
		return decoded[keyState](b)
	case tblApproval:
		return decoded[approval](b)
	case tblBudget:
		return decoded[budget](b)
	case tblJob:
		return decoded[jobState](b)
	case tblDataset:
		return decoded[datasetState](b)
	case tblRun:
		return decoded[runState](b)
	case tblVolume:
		return decoded[series](b)
	case tblCost:
		return decoded[costSeries](b)
	}
	return nil, errors.New("no such table")
}

func decoded[T any, P stateValue[T]](b []byte) (any, error) {
	v := new(T)
	if err := decodeState[T, P](b, v); err != nil {
		return nil, err
	}
	return v, nil
}

// TestStateRoundTrip: every sample decodes to itself; every truncation of
// its encoding, and the encoding with a byte appended, is an error.
func TestStateRoundTrip(t *testing.T) {
	for pfx, vs := range stateSamples() {
		for _, v := range vs {
			enc := encodeState(v)
			got, err := decodeStateAs(pfx, enc)
			if err != nil {
				t.Fatalf("table %c: decode %+v: %v", pfx, v, err)
			}
			if !reflect.DeepEqual(got, v) {
				t.Fatalf("table %c: round trip\n got %+v\nwant %+v", pfx, got, v)
			}
			for n := range len(enc) {
				if _, err := decodeStateAs(pfx, enc[:n]); !errors.Is(err, errStateValue) {
					t.Fatalf("table %c: %d of %d bytes decoded: %v", pfx, n, len(enc), err)
				}
			}
			if _, err := decodeStateAs(pfx, append(enc, 0)); !errors.Is(err, errStateValue) {
				t.Fatalf("table %c: trailing byte accepted: %v", pfx, err)
			}
		}
	}
}

// FuzzStateDecode: no input panics a decoder or makes it allocate beyond
// the input's size, and whatever decodes re-encodes to bytes that decode
// to the same encoding.
func FuzzStateDecode(f *testing.F) {
	for pfx, vs := range stateSamples() {
		for _, v := range vs {
			f.Add(pfx, encodeState(v))
		}
	}
	f.Fuzz(func(t *testing.T, pfx byte, b []byte) {
		tables := []byte{tblKey, tblApproval, tblBudget, tblJob, tblDataset, tblRun, tblVolume, tblCost}
		pfx = tables[int(pfx)%len(tables)]
		v, err := decodeStateAs(pfx, b)
		if err != nil {
			if !errors.Is(err, errStateValue) {
				t.Fatalf("error %v does not wrap errStateValue", err)
			}
			return
		}
		e1 := encodeState(v)
		v2, err := decodeStateAs(pfx, e1)
		if err != nil {
			t.Fatalf("re-encoding does not decode: %v", err)
		}
		if e2 := encodeState(v2); !bytes.Equal(e1, e2) {
			t.Fatalf("encodings differ:\n%x\n%x", e1, e2)
		}
	})
}
