// Package envelope implements DSSE (Dead Simple Signing Envelope) v1
// envelopes as provledger accepts, stores and verifies them.
//
// Wire form. Parse reads the DSSE JSON object
//
//	{"payloadType": "...", "payload": "<base64>", "signatures": [{"keyid": "...", "sig": "<base64>"}]}
//
// strictly: exactly those member names (case-sensitive, no duplicates, no
// others), valid UTF-8, a non-empty payloadType, 1 to MaxSignatures
// signatures, each with a non-empty sig. Base64 may be standard or URL-safe,
// padded or not. Every error wraps ErrMalformed and names the bad field.
//
// Canonical form. Marshal writes one canonical encoding: the members in the
// order above, standard padded base64, no whitespace, strings escaped as
// encoding/json escapes them. The same envelope always gives the same bytes,
// and Digest (SHA-256 of those bytes) is the envelope's content address in
// the ledger. An envelope received in any accepted wire form is stored in
// canonical form, so two encodings of one envelope deduplicate.
//
// Signatures are over the DSSE v1 pre-authentication encoding
// PAE(payloadType, payload), never over the JSON. A signature's keyid is
// the keys.KeyID (hex SHA-256 of the signer's PKIX public key) of the key
// that made it; Verifier.Verify looks keys up by that id in a keys.Keyring.
package envelope
