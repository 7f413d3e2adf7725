package scanner

// The lean decoder as it was before its byte-level reader (lexer.go): the
// same decoding over a jsontext token stream. FuzzLeanLexer holds the
// byte-level decoder to it: the same verdict and the same view on every
// input. Generated from lean.go and leancost.go at 2a5030d (the type and
// constructor renamed, the shared helpers left out).

import (
	"bytes"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/provledger/provledger/query/payload"
)

// refLean decodes, in one pass over a jsontext token stream, the fields
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
type refLean struct {
	d       jsontext.Decoder
	buf     bytes.Buffer
	lim     payload.Limits
	err     error
	scratch []byte
	fields  int // schema fields of the current dataset
}

func newRefLean(lim payload.Limits) *refLean {
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
	return &refLean{lim: lim}
}

// reset starts decoding b.
func (l *refLean) reset(b []byte) {
	l.buf.Reset()
	l.buf.Write(b)
	l.d.Reset(&l.buf)
	l.err = nil
}

// finish checks that nothing but white space follows the value.
func (l *refLean) finish() error {
	if l.err != nil {
		return l.err
	}
	if _, err := l.d.ReadToken(); err != io.EOF {
		return errLean
	}
	return nil
}

// runEvent decodes an OpenLineage RunEvent, or returns errLean.
func (l *refLean) runEvent(b []byte) (*payload.RunEvent, error) {
	l.reset(b)
	e := &payload.RunEvent{Source: payload.SourceOpenLineage}
	l.root(e)
	if err := l.finish(); err != nil {
		return nil, err
	}
	return e, nil
}

func (l *refLean) bail() {
	if l.err == nil {
		l.err = errLean
	}
}

func (l *refLean) token() jsontext.Token {
	if l.err != nil {
		return jsontext.Token{}
	}
	t, err := l.d.ReadToken()
	if err != nil {
		l.err = err
	}
	return t
}

func (l *refLean) skip() {
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
func (l *refLean) open() (present bool) { return l.openNullable('{') }

// openNullable reads the opening kind ('{' or '[') of a member that may
// be null (then absent: false); anything else is a bail-out.
func (l *refLean) openNullable(kind jsontext.Kind) bool {
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
func (l *refLean) openStrict() bool {
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
// consumes the '}' and returns false. The token's String is valid until
// the next read.
func (l *refLean) member() (jsontext.Token, bool) {
	if l.err != nil {
		return jsontext.Token{}, false
	}
	switch l.d.PeekKind() {
	case '}':
		l.token()
		return jsontext.Token{}, false
	case '"':
		t := l.token()
		return t, l.err == nil
	}
	l.bail()
	return jsontext.Token{}, false
}

// openArray reads the '[' of an array member; null is absent.
func (l *refLean) openArray() bool { return l.openNullable('[') }

// item reports whether an open array has another item; at its end it
// consumes the ']'.
func (l *refLean) item() bool {
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
func (l *refLean) text(maxLen int, required bool) (s []byte, present bool) {
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
	v, err := l.d.ReadValue()
	if err != nil {
		l.err = err
		return nil, false
	}
	raw := v[1 : len(v)-1]
	if bytes.IndexByte(raw, '\\') >= 0 {
		if l.scratch, err = jsontext.AppendUnquote(l.scratch[:0], v); err != nil {
			l.err = err
			return nil, false
		}
		raw = l.scratch
	}
	if (required && len(raw) == 0) || (maxLen > 0 && len(raw) > maxLen) {
		l.bail()
		return nil, false
	}
	return raw, true
}

// str is text as a string.
func (l *refLean) str(maxLen int, required bool) string {
	b, _ := l.text(maxLen, required)
	return string(b)
}

// timestamp reads an RFC 3339 date-time member (obj.timestamp).
func (l *refLean) timestamp(required bool) (time.Time, bool) {
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
func (l *refLean) numberText() ([]byte, bool) {
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
func (l *refLean) count() *int64 {
	b, ok := l.numberText()
	if !ok {
		return nil
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
	return &v
}

// number checks a finite number member (obj.number).
func (l *refLean) number() {
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
func (l *refLean) facetStart() int64 {
	l.token()
	return l.d.InputOffset() - 1
}

func (l *refLean) facetEnd(start int64) {
	if l.err == nil && l.d.InputOffset()-start > int64(l.lim.MaxFacetSize) {
		l.bail()
	}
}

// otherFacet checks a facet the model does not read: an object under the
// size cap.
func (l *refLean) otherFacet() {
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
func (l *refLean) facets(fn func(name string) bool) {
	if !l.open() {
		return
	}
	for {
		t, ok := l.member()
		if !ok {
			return
		}
		name := t.String()
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

func (l *refLean) root(e *payload.RunEvent) {
	if !l.openStrict() {
		return
	}
	var hasTime, hasProducer, hasRun, hasJob bool
	for {
		t, ok := l.member()
		if !ok {
			break
		}
		switch t.String() {
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

func (l *refLean) run(r *payload.Run) {
	for {
		t, ok := l.member()
		if !ok {
			break
		}
		switch t.String() {
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
func (l *refLean) runFacet(name string) bool {
	switch name {
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
			switch t.String() {
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
			if t.String() == "message" {
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
func (l *refLean) parent(root bool) {
	var hasRun, hasJob bool
	for {
		t, ok := l.member()
		if !ok {
			break
		}
		switch t.String() {
		case "run":
			if hasRun = l.open(); hasRun {
				hasID := false
				for {
					t, ok := l.member()
					if !ok {
						break
					}
					if t.String() != "runId" {
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
					switch t.String() {
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
func (l *refLean) strings(start int64, names ...string) {
	for {
		t, ok := l.member()
		if !ok {
			break
		}
		if slices.Contains(names, t.String()) {
			l.text(l.lim.MaxNameLen, false)
		} else {
			l.skip()
		}
	}
	l.facetEnd(start)
}

// tags checks a tags facet (run, job or dataset).
func (l *refLean) tags() {
	start := l.facetStart()
	for {
		t, ok := l.member()
		if !ok {
			break
		}
		if t.String() != "tags" {
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
				switch t.String() {
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

func (l *refLean) job(j *payload.Job) {
	var hasNS, hasName bool
	for {
		t, ok := l.member()
		if !ok {
			break
		}
		switch t.String() {
		case "namespace":
			j.Namespace = l.str(l.lim.MaxNameLen, true)
			hasNS = l.err == nil
		case "name":
			j.Name = l.str(l.lim.MaxNameLen, true)
			hasName = l.err == nil
		case "facets":
			l.facets(func(name string) bool { return l.jobFacet(j, name) })
		default:
			l.skip()
		}
	}
	if !hasNS || !hasName || j.Namespace == "" || j.Name == "" {
		l.bail()
	}
}

func (l *refLean) jobFacet(j *payload.Job, name string) bool {
	switch name {
	case "sourceCodeLocation":
		start := l.facetStart()
		j.Source = &payload.SourceCode{}
		for {
			t, ok := l.member()
			if !ok {
				break
			}
			switch t.String() {
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
func (l *refLean) datasets(output bool) []payload.Dataset {
	if !l.openArray() {
		return nil
	}
	var out []payload.Dataset
	for l.item() {
		if len(out) == l.lim.MaxDatasets || !l.openStrict() {
			l.bail()
			return nil
		}
		out = append(out, payload.Dataset{})
		l.dataset(&out[len(out)-1], output)
	}
	return out
}

func (l *refLean) dataset(d *payload.Dataset, output bool) {
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
		switch name := t.String(); name {
		case "namespace":
			d.Namespace = l.str(l.lim.MaxNameLen, true)
		case "name":
			d.Name = l.str(l.lim.MaxNameLen, true)
		case "facets":
			l.facets(func(name string) bool { return l.datasetFacet(d, &fq, name) })
		case kindFacets:
			l.facets(func(name string) bool {
				switch name {
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
						switch t.String() {
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

func (l *refLean) datasetFacet(d *payload.Dataset, fq **payload.Quality, name string) bool {
	switch name {
	case "version":
		start := l.facetStart()
		has := false
		for {
			t, ok := l.member()
			if !ok {
				break
			}
			if t.String() == "datasetVersion" {
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
			if t.String() == "fields" {
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
			if t.String() != "lifecycleStateChange" {
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
func (l *refLean) columnLineage() {
	hasFields := false
	for {
		t, ok := l.member()
		if !ok {
			break
		}
		switch t.String() {
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
				name := t.String()
				if n++; n > l.lim.MaxFields || name == "" || len(name) > l.lim.MaxNameLen || !l.openStrict() {
					l.bail()
					break
				}
				hasInputs := false
				for {
					t, ok := l.member()
					if !ok {
						break
					}
					switch t.String() {
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
func (l *refLean) inputFields() (present bool) {
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
			switch t.String() {
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

func (l *refLean) transformations() {
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
			switch t.String() {
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

// schemaFields decodes a schema facet's fields member (obj.schemaFields).
func (l *refLean) schemaFields(depth int) []payload.SchemaField {
	if depth > maxLeanSchemaDepth {
		l.bail()
		return nil
	}
	if !l.openArray() {
		return nil
	}
	var out []payload.SchemaField
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
			switch t.String() {
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
	if out == nil {
		out = []payload.SchemaField{}
	}
	return out
}

// quality decodes a dataQualityMetrics facet (after facetStart is due).
func (l *refLean) quality() *payload.Quality {
	start := l.facetStart()
	q := &payload.Quality{}
	for {
		t, ok := l.member()
		if !ok {
			break
		}
		switch t.String() {
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
				c := payload.ColumnMetric{Column: t.String()}
				if len(q.Columns) >= l.lim.MaxFields || !l.openStrict() {
					l.bail()
					break
				}
				for {
					t, ok := l.member()
					if !ok {
						break
					}
					switch t.String() {
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

// parse decodes a payload of type typ with the lean decoder: OpenLineage
// run events and FOCUS cost rows. Any other type, and anything the lean
// decoder leaves to the strict parser, returns errLean.
func (l *refLean) parse(typ string, b []byte) (*payload.Parsed, error) {
	switch typ {
	case payload.TypeOpenLineage:
		e, err := l.runEvent(b)
		if err != nil {
			return nil, err
		}
		return &payload.Parsed{Event: e}, nil
	case payload.TypeCost:
		rows, err := l.cost(b)
		if err != nil {
			return nil, err
		}
		return &payload.Parsed{Costs: rows}, nil
	}
	return nil, errLean
}

// cost decodes a cost payload (payload.ParseCost): one FOCUS row or a
// non-empty array of rows, with the columns the cost detector reads
// (amounts, currency, charge period, service, tags, link). Tags given as
// a string holding JSON, and any doubt, are left to the strict parser.
func (l *refLean) cost(b []byte) ([]payload.CostRow, error) {
	l.reset(b)
	var rows []payload.CostRow
	switch l.d.PeekKind() {
	case '{':
		rows = make([]payload.CostRow, 1)
		l.costRow(&rows[0])
	case '[':
		l.token()
		for l.item() {
			if len(rows) == l.lim.MaxCostRows {
				l.bail()
				break
			}
			rows = append(rows, payload.CostRow{Row: len(rows)})
			l.costRow(&rows[len(rows)-1])
		}
		if len(rows) == 0 {
			l.bail()
		}
	default:
		l.bail()
	}
	if err := l.finish(); err != nil {
		return nil, err
	}
	return rows, nil
}

func (l *refLean) costRow(r *payload.CostRow) {
	if !l.openStrict() {
		return
	}
	var hasCurrency, hasStart, hasEnd bool
	var runID, jns, jn, tagKey string
	for {
		t, ok := l.member()
		if !ok {
			break
		}
		switch t.String() {
		case "BilledCost":
			r.BilledCost = l.decimal()
		case "EffectiveCost":
			r.EffectiveCost = l.decimal()
		case "ListCost", "ContractedCost", "ConsumedQuantity", "PricingQuantity":
			l.decimal()
		case "BillingCurrency":
			var c []byte
			c, hasCurrency = l.text(3, true)
			if hasCurrency {
				if len(c) != 3 || !isUpper(c[0]) || !isUpper(c[1]) || !isUpper(c[2]) {
					l.bail()
				}
				r.BillingCurrency = string(c)
			}
		case "ChargePeriodStart":
			r.ChargePeriodStart, hasStart = l.timestamp(true)
		case "ChargePeriodEnd":
			r.ChargePeriodEnd, hasEnd = l.timestamp(true)
		case "BillingPeriodStart", "BillingPeriodEnd":
			l.timestamp(false)
		case "ServiceName":
			r.ServiceName = l.str(l.lim.MaxNameLen, false)
		case "ChargeCategory", "ChargeClass", "ChargeDescription", "ConsumedUnit", "PricingUnit",
			"ServiceProviderName", "ServiceCategory", "ResourceId", "ResourceName", "ResourceType",
			"RegionId", "SkuId", "SubAccountId":
			l.text(l.lim.MaxNameLen, false)
		case "Tags":
			r.Tags = l.costTags()
		case "x_RunId":
			runID = l.str(l.lim.MaxNameLen, false)
		case "x_JobNamespace":
			jns = l.str(l.lim.MaxNameLen, false)
		case "x_JobName":
			jn = l.str(l.lim.MaxNameLen, false)
		case "x_LinkTag":
			tagKey = l.str(l.lim.MaxNameLen, false)
		default:
			l.skip()
		}
	}
	if (r.BilledCost == "" && r.EffectiveCost == "") || !hasCurrency || !hasStart || !hasEnd || r.ChargePeriodEnd.Before(r.ChargePeriodStart) {
		l.bail()
		return
	}
	switch {
	case runID != "":
		if len(runID) == 36 {
			if u, ok := canonicalUUID([]byte(runID)); ok {
				runID = u
			}
		}
		r.Link.RunID = runID
	case jns != "" || jn != "":
		if jns == "" || jn == "" {
			l.bail()
			return
		}
		r.Link.Job = &payload.JobRef{Namespace: jns, Name: jn}
	case tagKey != "":
		v, ok := r.Tags[tagKey]
		if !ok {
			l.bail()
			return
		}
		r.Link.Tag = &payload.Tag{Key: tagKey, Value: v}
	}
}

// costTags decodes a Tags column given as an object: string values, or
// numbers and booleans kept as their JSON text.
func (l *refLean) costTags() map[string]string {
	if !l.open() {
		return nil
	}
	tags := map[string]string{}
	for {
		t, ok := l.member()
		if !ok {
			break
		}
		k := t.String()
		if len(tags) == l.lim.MaxFields {
			l.bail()
			break
		}
		switch l.d.PeekKind() {
		case '"':
			tags[k] = l.str(l.lim.MaxNameLen, false)
		case '0', 't', 'f':
			v, err := l.d.ReadValue()
			if err != nil {
				l.err = err
				break
			}
			tags[k] = string(v)
		default:
			l.bail()
		}
	}
	return tags
}

// decimal reads an amount given as a JSON number or a decimal string
// (payload's obj.decimal), in canonical form. Plain decimals (no
// exponent) are put in canonical form here; others go through
// payload.ParseDecimal.
func (l *refLean) decimal() payload.Decimal {
	if l.err != nil {
		return ""
	}
	var s string
	switch l.d.PeekKind() {
	case 'n':
		l.token()
		return ""
	case '"':
		b, _ := l.text(0, false)
		s = strings.TrimSpace(string(b))
	case '0':
		v, err := l.d.ReadValue()
		if err != nil {
			l.err = err
			return ""
		}
		s = string(v)
	default:
		l.bail()
		return ""
	}
	if d, ok := plainDecimal(s); ok {
		return d
	}
	d, ok := payload.ParseDecimal(s)
	if !ok {
		l.bail()
	}
	return d
}
