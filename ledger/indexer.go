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
