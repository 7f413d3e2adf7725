// Package checkpoint reads, writes, signs and verifies the log's
// checkpoints: C2SP tlog-checkpoint bodies (c2sp.org/tlog-checkpoint) signed
// as C2SP signed notes (c2sp.org/signed-note) with the log's Ed25519 key.
//
// A checkpoint body is three lines, each ending in a newline:
//
//	<origin>
//	<tree size, decimal, no leading zeros>
//	<base64 of the 32-byte RFC 6962 root hash>
//
// optionally followed by non-empty extension lines, which ParseBody accepts
// and ignores and Body never writes. The signed note adds a blank line and
// one line per signature, "— <key name> <base64(4-byte key id || sig)>".
// The log's key name is its origin, so the verifier key string (VerifierKey)
// is "<origin>+<8 hex digits of key id>+<base64(0x01 || public key)>",
// exactly what golang.org/x/mod/sumdb/note and transparency-dev/formats
// accept.
//
// Signing and signature checking are golang.org/x/mod/sumdb/note's; body
// parsing is this package's own, because formats/log's Unmarshal accepts
// sizes with leading zeros and non-canonical base64, which would give one
// checkpoint several encodings.
package checkpoint
