package scanner

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"slices"

	"github.com/cockroachdb/pebble/v2"
)

// Key layout under the scanner's reserved prefix 's' (docs/scanner.md).
const (
	keyPrefix = 's'

	tblMeta     = 'm' // sm<name>
	tblFinding  = 'f' // sf<index u64> → finding JSON
	tblKey      = 'k' // sk<keyid hex> → keyState
	tblApproval = 'a' // sa<ns>\x00<name> → approval
	tblBudget   = 'u' // su<series>|<currency> → budget
	tblJob      = 'j' // sj<ns>\x00<name> → jobState
	tblDataset  = 'd' // sd<ns>\x00<name> → datasetState
	tblRun      = 'r' // sr<run id> → runState
	tblVolume   = 'v' // sv<series> → series
	tblCost     = 'c' // sc<series> → costSeries
)

// stateFormat is the version of the state encoding: 2 is the binary one
// (statecodec.go). A store of format 1 (JSON values) is migrated when the
// scanner opens it; another format is refused (ErrState).
const (
	stateFormat     = 2
	stateFormatJSON = 1
)

var (
	keyCursor = []byte{keyPrefix, tblMeta, 'c', 'u', 'r', 's', 'o', 'r'}
	keyFormat = []byte{keyPrefix, tblMeta, 'f', 'o', 'r', 'm', 'a', 't'}
	keyTick   = []byte{keyPrefix, tblMeta, 't', 'i', 'c', 'k'}
)

func findingKey(index uint64) []byte {
	return binary.BigEndian.AppendUint64([]byte{keyPrefix, tblFinding}, index)
}

// stateValue is a state table's value type: binary encoding (format 2).
type stateValue[T any] interface {
	*T
	appendState([]byte) []byte
	readState(*rbuf)
}

// table is one kind of state, held in memory and written back (the dirty
// part) with the cursor.
type table[T any, P stateValue[T]] struct {
	pfx byte
	m   map[string]*cell[T]
	// dirty lists the keys changed or deleted since the last flush, in
	// the order of their first change (a key deleted and created again
	// may be listed twice: flush writes it once).
	dirty []string
	// gone are the keys deleted since the last flush whose value is
	// stored: flush deletes them. A key created and deleted between two
	// flushes (most runs: a run's state lives two days, a commit spans
	// weeks of a big log) is not stored and writes nothing.
	gone map[string]struct{}
	buf  []byte // encoding scratch (Batch.Set copies it)
}

// cell is a value of a table, whether it is listed as dirty, and whether
// the store holds a value for its key (written by a flush, or loaded).
type cell[T any] struct {
	v      T
	dirty  bool
	stored bool
}

func newTable[T any, P stateValue[T]](pfx byte) *table[T, P] {
	return &table[T, P]{pfx: pfx, m: map[string]*cell[T]{}}
}

// peek returns the value for k, or nil; changes to it must be followed by
// touch.
func (t *table[T, P]) peek(k string) *T {
	if c := t.m[k]; c != nil {
		return &c.v
	}
	return nil
}

// peekBytes is peek with the key in a buffer (not retained).
func (t *table[T, P]) peekBytes(k []byte) *T {
	if c := t.m[string(k)]; c != nil {
		return &c.v
	}
	return nil
}

// touch returns the value for k, creating it, and marks it for writing.
func (t *table[T, P]) touch(k string) *T {
	c := t.m[k]
	if c == nil {
		c = new(cell[T])
		if _, ok := t.gone[k]; ok {
			// Deleted and created again: the stored value is overwritten.
			c.stored = true
			delete(t.gone, k)
		}
		t.m[k] = c
	}
	if !c.dirty {
		c.dirty = true
		t.dirty = append(t.dirty, k)
	}
	return &c.v
}

// touchBytes is touch with the key in a reused buffer: the key is
// copied only when it is new or becomes dirty.
func (t *table[T, P]) touchBytes(k []byte) *T {
	if c := t.m[string(k)]; c != nil && c.dirty {
		return &c.v
	}
	return t.touch(string(k))
}

// del removes k.
func (t *table[T, P]) del(k string) {
	c := t.m[k]
	if c == nil {
		return
	}
	delete(t.m, k)
	if !c.stored {
		return // (listed as dirty: flush finds nothing to write)
	}
	if t.gone == nil {
		t.gone = map[string]struct{}{}
	}
	t.gone[k] = struct{}{}
	if !c.dirty {
		t.dirty = append(t.dirty, k)
	}
}

// each calls f with every key and value, in no particular order.
func (t *table[T, P]) each(f func(k string, v *T)) {
	for k, c := range t.m {
		f(k, &c.v)
	}
}

// keys returns the keys, sorted.
func (t *table[T, P]) keys() []string {
	ks := make([]string, 0, len(t.m))
	for k := range t.m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

func (t *table[T, P]) key(k string) []byte {
	return append([]byte{keyPrefix, t.pfx}, k...)
}

// load reads the table from db, whose values are of the given state
// format (the JSON of format 1 is read for migration: every value read
// is marked dirty, so the next flush rewrites it in the binary format).
func (t *table[T, P]) load(db *pebble.DB, format uint64) error {
	lo := []byte{keyPrefix, t.pfx}
	it, err := db.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: []byte{keyPrefix, t.pfx + 1}})
	if err != nil {
		return err
	}
	defer it.Close()
	for ok := it.First(); ok; ok = it.Next() {
		c := &cell[T]{stored: true}
		k := string(it.Key()[2:])
		if format == stateFormatJSON {
			if err := json.Unmarshal(it.Value(), &c.v); err != nil {
				return fmt.Errorf("scanner state %q: %w", it.Key(), err)
			}
			c.dirty = true
			t.dirty = append(t.dirty, k)
		} else if err := decodeState[T, P](it.Value(), &c.v); err != nil {
			return fmt.Errorf("scanner state %q: %w", it.Key(), err)
		}
		t.m[k] = c
	}
	return it.Error()
}

// decodeState decodes a binary state value into v.
func decodeState[T any, P stateValue[T]](b []byte, v *T) error {
	r := rbuf{b: b}
	P(v).readState(&r)
	return r.end()
}

// flush writes the dirty keys into b. (If b is not committed, the state
// is reloaded: load resets the marks.)
func (t *table[T, P]) flush(b *pebble.Batch) error {
	for _, k := range t.dirty {
		c := t.m[k]
		if c == nil {
			if _, ok := t.gone[k]; !ok {
				continue // created and deleted since the last flush
			}
			delete(t.gone, k) // (a key listed twice is deleted once)
			if err := b.Delete(t.key(k), nil); err != nil {
				return err
			}
			continue
		}
		if !c.dirty {
			continue // listed twice, written already
		}
		c.dirty, c.stored = false, true
		t.buf = P(&c.v).appendState(t.buf[:0])
		if err := b.Set(t.key(k), t.buf, nil); err != nil {
			return err
		}
	}
	clear(t.dirty)
	t.dirty = t.dirty[:0]
	clear(t.gone)
	return nil
}

func (t *table[T, P]) reset() {
	clear(t.m)
	clear(t.dirty)
	t.dirty = t.dirty[:0]
	clear(t.gone)
}

// keyState is a key granted or revoked by policy.
type keyState struct {
	PEM        string   `json:"pem,omitempty"`
	Namespaces []string `json:"ns,omitempty"`
	Granted    bool     `json:"granted,omitempty"`
	GrantedAt  uint64   `json:"grantedAt,omitempty"`
	Revoked    bool     `json:"revoked,omitempty"`
	RevokedAt  uint64   `json:"revokedAt,omitempty"`
}

type approval struct {
	Versions []string `json:"v"`
}

type budget struct {
	Amount float64 `json:"amount"`
	Entry  uint64  `json:"entry"`
}

type jobState struct {
	Inputs      []string `json:"in,omitempty"`
	Runs        int      `json:"runs,omitempty"`
	LastVersion string   `json:"ver,omitempty"`
	Flagged     []string `json:"flagged,omitempty"`
	// Outputs are the datasets ("NS:NAME", sorted) the job's latest
	// completed run wrote: its cost rows count in their dataset series.
	Outputs []string `json:"out,omitempty"`
}

type datasetState struct {
	Schema     []string `json:"schema,omitempty"`
	LastUpdate int64    `json:"last,omitempty"` // integration time, Unix ms
	LastEntry  uint64   `json:"lastEntry,omitempty"`
	Updates    int      `json:"n,omitempty"`
	Gaps       []int64  `json:"gaps,omitempty"` // ms
	Stale      bool     `json:"stale,omitempty"`
	Configured int64    `json:"cfg,omitempty"` // ms, from policy

	// limit caches the freshness limit (ms, 0: none) and how it was set;
	// limitOK false: to compute (after an update or a policy change).
	limit   int64
	how     string
	limitOK bool
}

type runState struct {
	Job        string `json:"job"`
	Started    bool   `json:"started,omitempty"`
	StartedAt  int64  `json:"startedAt,omitempty"` // integration time, ms
	StartEntry uint64 `json:"startEntry,omitempty"`
	Done       bool   `json:"done,omitempty"`
	DoneAt     int64  `json:"doneAt,omitempty"`
	MaxEvent   int64  `json:"maxEvent,omitempty"` // eventTime, ms
	MaxEntry   uint64 `json:"maxEntry,omitempty"`
	HasInputs  bool   `json:"hasInputs,omitempty"`
	// Outputs are the datasets ("NS:NAME", sorted) the run wrote.
	Outputs []string `json:"out,omitempty"`
}

type dayValue struct {
	Day int64   `json:"d"` // days since 1970-01-01 (UTC)
	V   float64 `json:"v"`
	// Clip is set when the day fell outside its band: the forecast uses
	// the band edge instead of V (a one-off spike is not a level).
	Clip *float64 `json:"c,omitempty"`
}

// forecastValue is the day's value as the forecast sees it.
func (d dayValue) forecastValue() float64 {
	if d.Clip != nil {
		return *d.Clip
	}
	return d.V
}

type costSeries struct {
	Day      int64      `json:"day"` // open bucket
	Sum      float64    `json:"sum"`
	Entries  []uint64   `json:"entries,omitempty"`
	Amounts  []float64  `json:"amounts,omitempty"`
	Band     series     `json:"band"`
	Daily    []dayValue `json:"daily,omitempty"`
	Month    int        `json:"month,omitempty"` // yyyymm of MonthSum
	MonthSum float64    `json:"monthSum,omitempty"`
	Flagged  int        `json:"flagged,omitempty"` // month whose budget was reported
}
