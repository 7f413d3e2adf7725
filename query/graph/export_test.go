package graph

import "github.com/provledger/provledger/ledger"

// AttachOnly binds the indexer to l without catching up (to test the gap
// handling of IndexBatch).
func (ix *Indexer) AttachOnly(l *ledger.Log) { ix.l, ix.db = l, l.DB() }

// Load exposes load.
func (ix *Indexer) Load(start, end uint64) ([]ledger.IndexedEntry, error) { return ix.load(start, end) }
