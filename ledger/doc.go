// Package ledger is provledger's log: an append-only RFC 6962 Merkle log of
// entry records, stored in Pebble, with C2SP tlog-tiles and signed C2SP
// checkpoints.
//
// An append carries a verified DSSE envelope (see crypto/envelope). The log
// stores the envelope content-addressed by its SHA-256 and hashes a small
// entry record (crypto/record) into the tree. Appending an envelope that is
// already in the log returns its first index and does not grow the log.
//
// Entries are integrated in batches. Apply integrates one batch atomically:
// records, envelopes, dedup and leaf-hash indexes, the touched tiles, the
// signed checkpoint of the new size and whatever the Indexer adds all go into
// one Pebble batch. A LocalSequencer group-commits concurrent appends into
// synced batches; the raft package replicates batches and applies them on
// every node.
//
// Reads (entries, tiles, checkpoints, proofs) serve any tree size up to the
// latest checkpoint and never see a partly applied batch.
//
//	l, err := ledger.Open(dir, ledger.Options{Origin: "ledger.example/prod", Signer: s})
//	seq := ledger.NewLocalSequencer(l, ledger.SequencerOptions{})
//	receipts, err := seq.Submit(ctx, []ledger.Entry{e})
//
// docs/ledger.md describes the storage layout and the design decisions.
package ledger
