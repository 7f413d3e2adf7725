package scanner

import (
	"errors"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/provledger/provledger/query/payload"
)

// errLean: the lean decoder cannot vouch for a payload (it is invalid, or
// uses a part of the format the lean decoder leaves to the strict parser).
// The caller then runs the strict parser, whose verdict and message count.
var errLean = errors.New("scanner: lean decoder: payload left to the strict parser")

// leanDecoder decodes, in one pass over a jsontext token stream, the fields
// of an OpenLineage RunEvent that the detectors read: event type and time,
// run id, job name and code version, inputs' and outputs' names, schemas,
// statistics and data quality metrics.
//
// It is sound with respect to payload.ParseRunEvent, the reference: it
// accepts a payload only when it has checked every rule the strict parser
// applies to it, so an accepted payload is one the strict parser accepts,
// with the same values in those fields (FuzzLeanRunEvent compares them).
// jsontext rejects what encoding/json's strict use rejects and more
// (duplicate names at any depth, invalid UTF-8): on any such doubt it
// returns errLean and the caller falls back to the strict parser. A decoder is
// reused for many payloads; it is not safe for concurrent use.
type leanDecoder struct {
	d      lexer
	lim    payload.Limits
	err    error
	fields int // schema fields of the current dataset
	// ints is a slab the counts point into; datasets and fields are
	// built in scratch slices and handed out of slabs at their exact
	// length (appending to a slice per event allocated twice its size).
	ints     []int64
	dscratch []payload.Dataset
	fscratch [][]payload.SchemaField // by depth
	dslab    slab[payload.Dataset]
	fslab    slab[payload.SchemaField]
	base     payload.Limits // as newLeanDecoder was given them
}

// slab hands out slices of T, each of its exact length, from shared
// chunks.
type slab[T any] struct{ buf []T }

// slabChunk is the items of a slab's chunk.
const slabChunk = 64

// take returns a copy of src (nil when empty) in the slab.
func (s *slab[T]) take(src []T) []T {
	n := len(src)
	if n == 0 {
		return nil
	}
	if cap(s.buf)-len(s.buf) < n {
		s.buf = make([]T, 0, max(n, slabChunk))
	}
	start := len(s.buf)
	s.buf = append(s.buf, src...)
	return s.buf[start:len(s.buf):len(s.buf)]
}

// newInt returns a pointer to v in the slab.
func (l *leanDecoder) newInt(v int64) *int64 {
	if len(l.ints) == cap(l.ints) {
		l.ints = make([]int64, 0, 256)
	}
	l.ints = append(l.ints, v)
	return &l.ints[len(l.ints)-1]
}

func newLeanDecoder(lim payload.Limits) *leanDecoder {
	base := lim
	// The strict parser's defaults (payload.Limits.withDefaults).
	if lim.MaxFacetSize <= 0 {
		lim.MaxFacetSize = payload.DefaultMaxFacetSize
	}
	if lim.MaxDatasets <= 0 {
		lim.MaxDatasets = payload.DefaultMaxDatasets
	}
	if lim.MaxFields <= 0 {
		lim.MaxFields = payload.DefaultMaxFields
	}
	if lim.MaxNameLen <= 0 {
		lim.MaxNameLen = payload.DefaultMaxNameLen
	}
	if lim.MaxCostRows <= 0 {
		lim.MaxCostRows = payload.DefaultMaxCostRows
	}
	return &leanDecoder{lim: lim, base: base}
}

// reset starts decoding b.
func (l *leanDecoder) reset(b []byte) {
	l.d.reset(b)
	l.err = nil
}

// finish checks that nothing but white space follows the value.
func (l *leanDecoder) finish() error {
	if l.err != nil {
		return l.err
	}
	if !l.d.eof() {
		return errLean
	}
	return nil
}

// runEvent decodes an OpenLineage RunEvent, or returns errLean.
func (l *leanDecoder) runEvent(b []byte) (*payload.RunEvent, error) {
	l.reset(b)
	e := &payload.RunEvent{Source: payload.SourceOpenLineage}
	l.root(e)
	if err := l.finish(); err != nil {
		return nil, err
	}
	return e, nil
}

func (l *leanDecoder) bail() {
	if l.err == nil {
		l.err = errLean
	}
}

func (l *leanDecoder) token() []byte {
	if l.err != nil {
		return nil
	}
	t, err := l.d.ReadToken()
	if err != nil {
		l.err = err
	}
	return t
}

func (l *leanDecoder) skip() {
	if l.err != nil {
		return
	}
	if err := l.d.SkipValue(); err != nil {
		l.err = err
	}
}

// open reads the '{' of an object member. A null member is absent
// (present false, as the strict parser treats it); anything else but an
// object is a bail-out.
func (l *leanDecoder) open() (present bool) { return l.openNullable('{') }

// openNullable reads the opening kind ('{' or '[') of a member that may
// be null (then absent: false); anything else is a bail-out.
func (l *leanDecoder) openNullable(kind byte) bool {
	if l.err != nil {
		return false
	}
	switch l.d.PeekKind() {
	case kind:
		l.token()
		return l.err == nil
	case 'n':
		l.token()
		return false
	}
	l.bail()
	return false
}

// openStrict reads the '{' of an object that may not be null (an array
// item, a column metric).
func (l *leanDecoder) openStrict() bool {
	if l.err != nil {
		return false
	}
	if l.d.PeekKind() != '{' {
		l.bail()
		return false
	}
	l.token()
	return l.err == nil
}

// member reads the next member name of an open object; at its end it
// consumes the '}' and returns false. The name stays valid while the
// payload is decoded.
func (l *leanDecoder) member() ([]byte, bool) {
	if l.err != nil {
		return nil, false
	}
	t, ok := l.d.Member()
	if l.d.err != nil {
		l.err = l.d.err
		return nil, false
	}
	return t, ok
}

// openArray reads the '[' of an array member; null is absent.
func (l *leanDecoder) openArray() bool { return l.openNullable('[') }

// item reports whether an open array has another item; at its end it
// consumes the ']'.
func (l *leanDecoder) item() bool {
	if l.err != nil {
		return false
	}
	switch l.d.PeekKind() {
	case ']':
		l.token()
		return false
	case 0:
		l.bail()
		return false
	}
	return true
}

// text reads a string member as the strict parser's obj.str does: null is
// absent (present false); a string must be non-empty when required and at
// most maxLen bytes (0: no limit) once unescaped. The bytes are valid
// until the next read.
func (l *leanDecoder) text(maxLen int, required bool) (s []byte, present bool) {
	if l.err != nil {
		return nil, false
	}
	switch l.d.PeekKind() {
	case 'n':
		l.token()
		if required {
			l.bail()
		}
		return nil, false
	case '"':
	default:
		l.bail()
		return nil, false
	}
	raw, err := l.d.ReadString()
	if err != nil {
		l.err = err
		return nil, false
	}
	if (required && len(raw) == 0) || (maxLen > 0 && len(raw) > maxLen) {
		l.bail()
		return nil, false
	}
	return raw, true
}

// str is text as a string.
func (l *leanDecoder) str(maxLen int, required bool) string {
	b, _ := l.text(maxLen, required)
	return string(b)
}

// timestamp reads an RFC 3339 date-time member (obj.timestamp).
func (l *leanDecoder) timestamp(required bool) (time.Time, bool) {
	b, ok := l.text(64, required)
	if !ok || l.err != nil {
		return time.Time{}, false
	}
	t, err := time.Parse(time.RFC3339Nano, string(b))
	if err != nil {
		l.bail()
		return time.Time{}, false
	}
	return t.UTC(), true
}

// numberText reads a number member's literal; null is absent. A number
// given as a string (which encoding/json also takes for a json.Number) is
// left to the strict parser.
func (l *leanDecoder) numberText() ([]byte, bool) {
	if l.err != nil {
		return nil, false
	}
	switch l.d.PeekKind() {
	case 'n':
		l.token()
		return nil, false
	case '0':
		v, err := l.d.ReadValue()
		if err != nil {
			l.err = err
			return nil, false
		}
		return v, true
	}
	l.bail()
	return nil, false
}

// count reads a non-negative integer member (obj.count).
func (l *leanDecoder) count() *int64 {
	b, ok := l.numberText()
	if !ok {
		return nil
	}
	if v, ok := plainCount(b); ok {
		return l.newInt(v)
	}
	s := string(b)
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		f, ferr := strconv.ParseFloat(s, 64)
		if ferr != nil || f != math.Trunc(f) || math.Abs(f) > 1<<62 {
			l.bail()
			return nil
		}
		v = int64(f)
	}
	if v < 0 {
		l.bail()
		return nil
	}
	return l.newInt(v)
}

// plainCount reads a number literal of at most 18 digits and nothing
// else (which the lexer has checked to be a JSON number, so without a
// leading zero unless it is 0): what strconv.ParseInt gives it.
func plainCount(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 18 {
		return 0, false
	}
	var v int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + int64(c-'0')
	}
	return v, true
}

// number checks a finite number member (obj.number).
func (l *leanDecoder) number() {
	b, ok := l.numberText()
	if !ok {
		return
	}
	f, err := strconv.ParseFloat(string(b), 64)
	if err != nil || math.IsInf(f, 0) {
		l.bail()
	}
}

// facetStart reads the '{' of a facet and returns its offset; facetEnd,
// after the facet's '}', checks its size against MaxFacetSize.
func (l *leanDecoder) facetStart() int64 {
	l.token()
	return l.d.InputOffset() - 1
}

func (l *leanDecoder) facetEnd(start int64) {
	if l.err == nil && l.d.InputOffset()-start > int64(l.lim.MaxFacetSize) {
		l.bail()
	}
}

// otherFacet checks a facet the model does not read: an object under the
// size cap.
func (l *leanDecoder) otherFacet() {
	v, err := l.d.ReadValue()
	if err != nil {
		l.err = err
		return
	}
	if len(v) > l.lim.MaxFacetSize {
		l.bail()
	}
}

// facets iterates a facets member: each non-null facet must be an object;
// fn decodes the facet named name (after facetStart) and reports whether
// it knew it, else the facet is checked by otherFacet.
func (l *leanDecoder) facets(fn func(name []byte) bool) {
	if !l.open() {
		return
	}
	for {
		t, ok := l.member()
		if !ok {
			return
		}
		name := t
		switch l.d.PeekKind() {
		case 'n':
			l.token()
			continue
		case '{':
		default:
			l.bail()
			return
		}
		if !fn(name) {
			l.otherFacet()
		}
	}
}

func (l *leanDecoder) root(e *payload.RunEvent) {
	if !l.openStrict() {
		return
	}
	var hasTime, hasProducer, hasRun, hasJob bool
	for {
		t, ok := l.member()
		if !ok {
			break
		}
		switch string(t) {
		case "eventType":
			b, ok := l.text(32, false)
			if !ok {
				continue
			}
			switch et := payload.EventType(b); et {
			case payload.Start, payload.Running, payload.Complete, payload.Abort, payload.Fail, payload.Other:
				e.EventType = et
			default:
				l.bail()
			}
		case "eventTime":
			e.EventTime, hasTime = l.timestamp(true)
		case "producer":
			_, hasProducer = l.text(l.lim.MaxNameLen, true)
		case "schemaURL":
			l.text(l.lim.MaxNameLen, false)
		case "run":
			if hasRun = l.open(); hasRun {
				l.run(&e.Run)
			}
		case "job":
			if hasJob = l.open(); hasJob {
				l.job(&e.Job)
			}
		case "inputs":
			e.Inputs = l.datasets(false)
		case "outputs":
			e.Outputs = l.datasets(true)
		default:
			l.skip()
		}
	}
	if !hasTime || !hasProducer || !hasRun || !hasJob || len(e.Inputs)+len(e.Outputs) > l.lim.MaxDatasets {
		l.bail()
	}
}

func (l *leanDecoder) run(r *payload.Run) {
	for {
		t, ok := l.member()
		if !ok {
			break
		}
		switch string(t) {
		case "runId":
			if b, ok := l.text(64, true); ok {
				r.ID, ok = canonicalUUID(b)
				if !ok {
					l.bail()
				}
			}
		case "facets":
			l.facets(l.runFacet)
		default:
			l.skip()
		}
	}
	if r.ID == "" {
		l.bail()
	}
}

// runFacet decodes (checks) the run facets the strict parser reads.
func (l *leanDecoder) runFacet(name []byte) bool {
	switch string(name) {
	case "tags":
		l.tags()
	case "processing_engine":
		start := l.facetStart()
		l.strings(start, "name", "version", "openlineageAdapterVersion")
	case "nominalTime":
		start := l.facetStart()
		hasStart := false
		for {
			t, ok := l.member()
			if !ok {
				break
			}
			switch string(t) {
			case "nominalStartTime":
				_, hasStart = l.timestamp(true)
			case "nominalEndTime":
				l.timestamp(false)
			default:
				l.skip()
			}
		}
		if !hasStart {
			l.bail()
		}
		l.facetEnd(start)
	case "errorMessage":
		start := l.facetStart()
		for {
			t, ok := l.member()
			if !ok {
				break
			}
			if string(t) == "message" {
				l.text(0, false)
			} else {
				l.skip()
			}
		}
		l.facetEnd(start)
	case "parent":
		start := l.facetStart()
		l.parent(false)
		l.facetEnd(start)
	default:
		return false
	}
	return true
}

// parent checks a parent facet (after its '{'): run and job required,
// and an optional root with a run and a job (root true: this is it).
func (l *leanDecoder) parent(root bool) {
	var hasRun, hasJob bool
	for {
		t, ok := l.member()
		if !ok {
			break
		}
		switch string(t) {
		case "run":
			if hasRun = l.open(); hasRun {
				hasID := false
				for {
					t, ok := l.member()
					if !ok {
						break
					}
					if string(t) != "runId" {
						l.skip()
						continue
					}
					var b []byte
					if b, hasID = l.text(64, true); hasID {
						if _, ok := canonicalUUID(b); !ok {
							l.bail()
						}
					}
				}
				if !hasID {
					l.bail()
				}
			}
		case "job":
			if hasJob = l.open(); hasJob {
				var hasNS, hasName bool
				for {
					t, ok := l.member()
					if !ok {
						break
					}
					switch string(t) {
					case "namespace":
						_, hasNS = l.text(l.lim.MaxNameLen, true)
					case "name":
						_, hasName = l.text(l.lim.MaxNameLen, true)
					default:
						l.skip()
					}
				}
				if !hasNS || !hasName {
					l.bail()
				}
			}
		case "root":
			if root {
				l.skip()
			} else if l.open() {
				l.parent(true)
			}
		default:
			l.skip()
		}
	}
	if !hasRun || !hasJob {
		l.bail()
	}
}

// strings checks a facet whose listed members are optional strings of at
// most MaxNameLen bytes.
func (l *leanDecoder) strings(start int64, names ...string) {
	for {
		t, ok := l.member()
		if !ok {
			break
		}
		if slices.Contains(names, string(t)) {
			l.text(l.lim.MaxNameLen, false)
		} else {
			l.skip()
		}
	}
	l.facetEnd(start)
}

// tags checks a tags facet (run, job or dataset).
func (l *leanDecoder) tags() {
	start := l.facetStart()
	for {
		t, ok := l.member()
		if !ok {
			break
		}
		if string(t) != "tags" {
			l.skip()
			continue
		}
		if !l.openArray() {
			continue
		}
		n := 0
		for l.item() {
			if n++; n > l.lim.MaxFields || !l.openStrict() {
				l.bail()
				break
			}
			hasKey, hasValue := false, false
			for {
				t, ok := l.member()
				if !ok {
					break
				}
				switch string(t) {
				case "key":
					_, hasKey = l.text(l.lim.MaxNameLen, true)
				case "value":
					_, hasValue = l.text(l.lim.MaxNameLen, false)
				case "source", "field":
					l.text(l.lim.MaxNameLen, false)
				default:
					l.skip()
				}
			}
			if !hasKey || !hasValue {
				l.bail()
			}
		}
	}
	l.facetEnd(start)
}

func (l *leanDecoder) job(j *payload.Job) {
	var hasNS, hasName bool
	for {
		t, ok := l.member()
		if !ok {
			break
		}
		switch string(t) {
		case "namespace":
			j.Namespace = l.str(l.lim.MaxNameLen, true)
			hasNS = l.err == nil
		case "name":
			j.Name = l.str(l.lim.MaxNameLen, true)
			hasName = l.err == nil
		case "facets":
			l.facets(func(name []byte) bool { return l.jobFacet(j, name) })
		default:
			l.skip()
		}
	}
	if !hasNS || !hasName || j.Namespace == "" || j.Name == "" {
		l.bail()
	}
}

func (l *leanDecoder) jobFacet(j *payload.Job, name []byte) bool {
	switch string(name) {
	case "sourceCodeLocation":
		start := l.facetStart()
		j.Source = &payload.SourceCode{}
		for {
			t, ok := l.member()
			if !ok {
				break
			}
			switch string(t) {
			case "version":
				j.Source.Version = l.str(l.lim.MaxNameLen, false)
			case "type", "url", "repoUrl", "path", "tag", "branch":
				l.text(l.lim.MaxNameLen, false)
			default:
				l.skip()
			}
		}
		l.facetEnd(start)
	case "jobType":
		start := l.facetStart()
		l.strings(start, "processingType", "integration", "jobType")
	case "tags":
		l.tags()
	default:
		return false
	}
	return true
}

// datasets decodes an inputs or outputs member.
func (l *leanDecoder) datasets(output bool) []payload.Dataset {
	if !l.openArray() {
		return nil
	}
	sc := l.dscratch[:0]
	defer func() {
		clear(sc)
		l.dscratch = sc[:0]
	}()
	for l.item() {
		if len(sc) == l.lim.MaxDatasets || !l.openStrict() {
			l.bail()
			return nil
		}
		sc = append(sc, payload.Dataset{})
		l.dataset(&sc[len(sc)-1], output)
	}
	if l.err != nil {
		return nil
	}
	return l.dslab.take(sc)
}

func (l *leanDecoder) dataset(d *payload.Dataset, output bool) {
	kindFacets, statsName := "inputFacets", "inputStatistics"
	if output {
		kindFacets, statsName = "outputFacets", "outputStatistics"
	}
	var fq, kq *payload.Quality
	l.fields = 0
	for {
		t, ok := l.member()
		if !ok {
			break
		}
		switch string(t) {
		case "namespace":
			d.Namespace = l.str(l.lim.MaxNameLen, true)
		case "name":
			d.Name = l.str(l.lim.MaxNameLen, true)
		case "facets":
			l.facets(func(name []byte) bool { return l.datasetFacet(d, &fq, name) })
		case kindFacets:
			l.facets(func(name []byte) bool {
				switch string(name) {
				case "dataQualityMetrics":
					kq = l.quality()
				case statsName:
					start := l.facetStart()
					d.Stats = &payload.Statistics{}
					for {
						t, ok := l.member()
						if !ok {
							break
						}
						switch string(t) {
						case "rowCount":
							d.Stats.RowCount = l.count()
						case "size":
							d.Stats.Size = l.count()
						case "fileCount":
							d.Stats.FileCount = l.count()
						default:
							l.skip()
						}
					}
					l.facetEnd(start)
				default:
					return false
				}
				return true
			})
		default:
			l.skip()
		}
	}
	if d.Namespace == "" || d.Name == "" {
		l.bail()
	}
	// The strict parser takes the input/output facet first.
	d.Quality = kq
	if d.Quality == nil {
		d.Quality = fq
	}
}

func (l *leanDecoder) datasetFacet(d *payload.Dataset, fq **payload.Quality, name []byte) bool {
	switch string(name) {
	case "version":
		start := l.facetStart()
		has := false
		for {
			t, ok := l.member()
			if !ok {
				break
			}
			if string(t) == "datasetVersion" {
				_, has = l.text(l.lim.MaxNameLen, true)
			} else {
				l.skip()
			}
		}
		if !has {
			l.bail()
		}
		l.facetEnd(start)
	case "schema":
		start := l.facetStart()
		for {
			t, ok := l.member()
			if !ok {
				break
			}
			if string(t) == "fields" {
				d.Schema = l.schemaFields(0)
				if d.Schema == nil {
					d.Schema = []payload.SchemaField{}
				}
			} else {
				l.skip()
			}
		}
		l.facetEnd(start)
	case "dataSource":
		start := l.facetStart()
		l.strings(start, "name", "uri")
	case "storage":
		start := l.facetStart()
		l.strings(start, "storageLayer", "fileFormat")
	case "lifecycleStateChange":
		start := l.facetStart()
		has := false
		for {
			t, ok := l.member()
			if !ok {
				break
			}
			if string(t) != "lifecycleStateChange" {
				l.skip()
				continue
			}
			b, ok := l.text(64, true)
			switch has = ok; string(b) {
			case "ALTER", "CREATE", "DROP", "OVERWRITE", "RENAME", "TRUNCATE":
			default:
				l.bail()
			}
		}
		if !has {
			l.bail()
		}
		l.facetEnd(start)
	case "dataQualityMetrics":
		*fq = l.quality()
	case "tags":
		l.tags()
	case "columnLineage":
		start := l.facetStart()
		l.columnLineage()
		l.facetEnd(start)
	default:
		return false
	}
	return true
}

// columnLineage checks a columnLineage facet (after its '{'): a required
// fields object of output fields, each with required inputFields, and an
// optional dataset list of input fields.
func (l *leanDecoder) columnLineage() {
	hasFields := false
	for {
		t, ok := l.member()
		if !ok {
			break
		}
		switch string(t) {
		case "fields":
			if hasFields = l.open(); !hasFields {
				continue
			}
			n := 0
			for {
				t, ok := l.member()
				if !ok {
					break
				}
				name := t
				if n++; n > l.lim.MaxFields || len(name) == 0 || len(name) > l.lim.MaxNameLen || !l.openStrict() {
					l.bail()
					break
				}
				hasInputs := false
				for {
					t, ok := l.member()
					if !ok {
						break
					}
					switch string(t) {
					case "inputFields":
						hasInputs = l.inputFields()
					case "transformationDescription":
						l.text(0, false)
					case "transformationType":
						l.text(l.lim.MaxNameLen, false)
					default:
						l.skip()
					}
				}
				if !hasInputs {
					l.bail()
				}
			}
		case "dataset":
			l.inputFields()
		default:
			l.skip()
		}
	}
	if !hasFields {
		l.bail()
	}
}

// inputFields checks an array of column-lineage input fields; present is
// false when the member is null.
func (l *leanDecoder) inputFields() (present bool) {
	if !l.openArray() {
		return false
	}
	n := 0
	for l.item() {
		if n++; n > l.lim.MaxFields || !l.openStrict() {
			l.bail()
			return false
		}
		var hasNS, hasName, hasField bool
		for {
			t, ok := l.member()
			if !ok {
				break
			}
			switch string(t) {
			case "namespace":
				_, hasNS = l.text(l.lim.MaxNameLen, true)
			case "name":
				_, hasName = l.text(l.lim.MaxNameLen, true)
			case "field":
				_, hasField = l.text(l.lim.MaxNameLen, true)
			case "transformations":
				l.transformations()
			default:
				l.skip()
			}
		}
		if !hasNS || !hasName || !hasField {
			l.bail()
		}
	}
	return true
}

// maxTransformations is the strict parser's cap on the transformations of
// one input field.
const maxTransformations = 64

func (l *leanDecoder) transformations() {
	if !l.openArray() {
		return
	}
	n := 0
	for l.item() {
		if n++; n > maxTransformations || !l.openStrict() {
			l.bail()
			return
		}
		hasType := false
		for {
			t, ok := l.member()
			if !ok {
				break
			}
			switch string(t) {
			case "type":
				b, ok := l.text(32, true)
				if hasType = ok; ok && string(b) != "DIRECT" && string(b) != "INDIRECT" {
					l.bail()
				}
			case "subtype":
				l.text(l.lim.MaxNameLen, false)
			case "description":
				l.text(0, false)
			case "masking":
				switch l.d.PeekKind() {
				case 't', 'f', 'n':
					l.token()
				default:
					l.bail()
				}
			default:
				l.skip()
			}
		}
		if !hasType {
			l.bail()
		}
	}
}

// maxLeanSchemaDepth is the nesting of schema fields the lean decoder
// takes (the strict parser takes up to 32 levels; deeper ones go to it).
const maxLeanSchemaDepth = 16

// schemaFields decodes a schema facet's fields member (obj.schemaFields).
func (l *leanDecoder) schemaFields(depth int) []payload.SchemaField {
	if depth > maxLeanSchemaDepth {
		l.bail()
		return nil
	}
	if !l.openArray() {
		return nil
	}
	for len(l.fscratch) <= depth {
		l.fscratch = append(l.fscratch, nil)
	}
	out := l.fscratch[depth][:0]
	defer func() {
		clear(out)
		l.fscratch[depth] = out[:0]
	}()
	for l.item() {
		if l.fields++; l.fields > l.lim.MaxFields || len(out) >= l.lim.MaxFields || !l.openStrict() {
			l.bail()
			return nil
		}
		var f payload.SchemaField
		hasName := false
		for {
			t, ok := l.member()
			if !ok {
				break
			}
			switch string(t) {
			case "name":
				f.Name = l.str(l.lim.MaxNameLen, true)
				hasName = f.Name != ""
			case "type":
				f.Type = l.str(l.lim.MaxNameLen, false)
			case "description":
				l.text(0, false)
			case "fields":
				f.Fields = l.schemaFields(depth + 1)
			default:
				l.skip()
			}
		}
		if !hasName {
			l.bail()
		}
		out = append(out, f)
	}
	if l.err != nil {
		return nil
	}
	if len(out) == 0 {
		return []payload.SchemaField{}
	}
	return l.fslab.take(out)
}

// quality decodes a dataQualityMetrics facet (after facetStart is due).
func (l *leanDecoder) quality() *payload.Quality {
	start := l.facetStart()
	q := &payload.Quality{}
	for {
		t, ok := l.member()
		if !ok {
			break
		}
		switch string(t) {
		case "rowCount":
			q.RowCount = l.count()
		case "bytes":
			q.Bytes = l.count()
		case "fileCount":
			q.FileCount = l.count()
		case "columnMetrics":
			if !l.open() {
				continue
			}
			for {
				t, ok := l.member()
				if !ok {
					break
				}
				c := payload.ColumnMetric{Column: string(t)}
				if len(q.Columns) >= l.lim.MaxFields || !l.openStrict() {
					l.bail()
					break
				}
				for {
					t, ok := l.member()
					if !ok {
						break
					}
					switch string(t) {
					case "nullCount":
						c.NullCount = l.count()
					case "distinctCount":
						c.DistinctCount = l.count()
					case "sum", "count", "min", "max":
						l.number()
					default:
						l.skip()
					}
				}
				q.Columns = append(q.Columns, c)
			}
		default:
			l.skip()
		}
	}
	l.facetEnd(start)
	// The strict parser visits columns in sorted order.
	slices.SortFunc(q.Columns, func(a, b payload.ColumnMetric) int { return strings.Compare(a.Column, b.Column) })
	return q
}

// canonicalUUID is payload's check of a UUID in 8-4-4-4-12 hex form (any
// case), returned in lower case.
func canonicalUUID(b []byte) (string, bool) {
	if len(b) != 36 {
		return "", false
	}
	var out [36]byte
	for i, c := range b {
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return "", false
			}
		default:
			if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
				return "", false
			}
		}
		out[i] = c
	}
	return string(out[:]), true
}
