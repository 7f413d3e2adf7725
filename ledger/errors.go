package ledger

import "errors"

// Sentinel errors. Errors returned by this package wrap them; compare with
// errors.Is.
var (
	// ErrNotFound: no such entry, envelope, tile or checkpoint.
	ErrNotFound = errors.New("not found")
	// ErrOutOfRange: an index or tree size beyond the latest checkpoint.
	ErrOutOfRange = errors.New("out of range")
	// ErrInvalidEntry: an entry that cannot be appended (the message says why).
	ErrInvalidEntry = errors.New("invalid entry")
	// ErrTooLarge: an envelope above Options.MaxEnvelopeSize.
	ErrTooLarge = errors.New("envelope too large")
	// ErrClosed: the log or sequencer was closed.
	ErrClosed = errors.New("ledger closed")
	// ErrRedacted: the envelope was removed by a redaction; its record and
	// leaf remain.
	ErrRedacted = errors.New("envelope redacted")
	// ErrCorrupt: stored data contradicts itself (e.g. the recomputed root
	// does not match the signed checkpoint).
	ErrCorrupt = errors.New("ledger storage corrupt")
)
