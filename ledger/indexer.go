package ledger

import (
	"github.com/cockroachdb/pebble/v2"

	"github.com/provledger/provledger/crypto/record"
)

// IndexedEntry is a newly integrated entry, as handed to an Indexer.
type IndexedEntry struct {
	Index     uint64
	LeafHash  [32]byte
	Record    record.Record
	RawRecord []byte
	// Envelope is the canonical DSSE JSON.
	Envelope []byte
	// Prepared is Entry.Prepared: the indexer's own Prepare result for
	// this entry's payload, or nil (then the indexer reads Envelope).
	Prepared any
}

// Indexer maintains secondary indexes (lineage graph, cost roll-ups,
// scanner state) in the same Pebble batch as the entries they index, so an
// index never runs ahead of or behind the log.
//
// IndexBatch is called once per applied batch that adds entries, with the
// new entries in index order, before the batch commits. It must be
// deterministic (replicas call it with the same entries) and must use its own
// key prefix. An error aborts the whole batch; return one only for storage
// failures, never for content an indexer does not understand.
type Indexer interface {
	IndexBatch(b *pebble.Batch, entries []IndexedEntry) error
}

// Preparer is implemented by an Indexer that can do the costly part of its
// work (parsing a payload) before an entry is sequenced, off the log's
// serialized apply path: the append path calls Prepare on its parallel
// checker goroutines and puts the result in Entry.Prepared. Prepare must be
// safe for concurrent use and a pure function of its arguments, so that an
// entry indexed with and without it gets the same index keys.
type Preparer interface {
	Prepare(payloadType string, payload []byte) any
}
