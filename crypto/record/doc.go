// Package record defines the entry record: the small, fixed-schema,
// deterministic byte string that provledger hashes into each Merkle leaf.
//
// A record names an envelope (by SHA-256 digest and size) instead of holding
// it, so every record stays a few hundred bytes whatever the envelope size,
// fits a C2SP tlog-tiles entry bundle (64 KiB per entry), and survives the
// redaction of its envelope: the leaf hash, and every proof through it, does
// not change when the envelope is deleted.
//
// The encoding (version 1), all integers big-endian:
//
//	u8      version (1)
//	u64     integrated time, Unix milliseconds, assigned by the sequencer
//	u8+N    namespace, 1..255 bytes
//	u8+N    payload type, 1..255 bytes
//	[32]    SHA-256 of the canonical envelope JSON
//	u32     size of the canonical envelope JSON in bytes
//	u8      number of signers, 1..16
//	[32]*n  signer key ids (SHA-256 of the DER SubjectPublicKeyInfo), in signature order
//
// Decoding is strict: every field must be in range, and no byte may follow
// the last key id, so each record has exactly one encoding. docs/record.md
// has test vectors.
package record
