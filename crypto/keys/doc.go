// Package keys handles the public-key material provledger trusts: key
// generation, PEM encoding and decoding, key ids, sigstore signers and
// verifiers, and the Keyring of trusted keys.
//
// Algorithm policy. Every key that enters provledger through this package
// (generated, parsed, wrapped in a signer or added to a Keyring) is one of:
//
//   - Ed25519 (signatures over the whole message, no pre-hash);
//   - ECDSA on NIST P-256 (SHA-256) or P-384 (SHA-384), ASN.1 DER signatures;
//   - RSA with a modulus of 2048 to 8192 bits, signing with PKCS#1 v1.5 and
//     SHA-256; verification also accepts RSASSA-PSS with SHA-256.
//
// Anything else is refused with an error wrapping ErrUnsupportedKey.
//
// Key ids. A KeyID is the SHA-256 of the key's DER-encoded PKIX
// SubjectPublicKeyInfo (the bytes inside a "PUBLIC KEY" PEM block). It is
// written as 64 lowercase hex digits, which is also the "keyid" that
// provledger puts in DSSE signatures. The id depends only on the public key,
// never on how the key was stored (PKCS#8, PKCS#1 or SEC1 give the same id).
//
// PEM. Private keys are written as PKCS#8 "PRIVATE KEY"; PKCS#1
// "RSA PRIVATE KEY" and SEC1 "EC PRIVATE KEY" (optionally preceded by the
// "EC PARAMETERS" block that `openssl ecparam -genkey` writes) are read too.
// Encrypted PEM is refused. Public keys are "PUBLIC KEY" blocks; a trust file
// is any number of them concatenated, with free text allowed between blocks.
// A block that starts with "-----BEGIN" but cannot be decoded is an error,
// never silently skipped.
package keys
