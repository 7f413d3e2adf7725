package graph

import (
	"github.com/provledger/provledger/crypto/envelope"
	"github.com/provledger/provledger/ledger"
	"github.com/provledger/provledger/query/payload"
)

// prepared is a payload parsed ahead of sequencing (Indexer.Prepare):
// exactly what writer.entry would get from the envelope.
type prepared struct {
	typ    string
	parsed *payload.Parsed
	err    error
}

// Prepare implements ledger.Preparer: it parses a payload of a type the
// graph indexes, on the caller's goroutine, so that IndexBatch (which runs
// on the log's serialized apply path) only writes keys. Other payload
// types return nil. It is safe for concurrent use.
func (ix *Indexer) Prepare(payloadType string, body []byte) any {
	if !indexed(payloadType) {
		return nil
	}
	p, err := payload.Parse(payloadType, body, ix.opts.Limits)
	return &prepared{typ: payloadType, parsed: p, err: err}
}

// indexed reports whether the graph indexes payloads of type t.
func indexed(t string) bool {
	switch t {
	case payload.TypeOpenLineage, payload.TypeInToto, payload.TypeCost, payload.TypeOpenLineageDataset, payload.TypeOpenLineageJob:
		return true
	}
	return false
}

// parse returns e's parsed payload: the one prepared before sequencing if
// there is one for its type, else parsed from its envelope now. A
// malformed envelope is reported as a payload error with the "envelope: "
// prefix.
func parse(e *ledger.IndexedEntry, lim payload.Limits) (*payload.Parsed, error) {
	if p, ok := e.Prepared.(*prepared); ok && p.typ == e.Record.PayloadType {
		return p.parsed, p.err
	}
	env, err := envelope.Parse(e.Envelope)
	if err != nil {
		return nil, &envelopeError{err}
	}
	return payload.Parse(e.Record.PayloadType, env.Payload, lim)
}

// envelopeError is an envelope that does not parse (an index skip of
// class SkipMalformed).
type envelopeError struct{ err error }

func (e *envelopeError) Error() string { return "envelope: " + e.err.Error() }
