package main

import (
	"context"
	"fmt"
	"os"

	"github.com/sigstore/sigstore/pkg/signature"
	"golang.org/x/mod/sumdb/note"

	"github.com/provledger/provledger/api/client"
	"github.com/provledger/provledger/api/provledgerpb"
	"github.com/provledger/provledger/crypto/envelope"
	"github.com/provledger/provledger/crypto/keys"
)

// signingKey is a private key read from a --key file, with what an append
// sends beside its envelope.
type signingKey struct {
	signer signature.Signer
	// pubPEM is the PKIX public key (sent in public_keys, for nodes that
	// trust keys on first use).
	pubPEM []byte
	id     keys.KeyID
}

// loadSigningKey reads a PEM private key (PKCS#8, SEC1 or PKCS#1, as
// openssl makes them) from path. Its errors name the file.
func loadSigningKey(path string) (*signingKey, error) {
	keyPEM, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("--key: %w", err)
	}
	priv, err := keys.ParsePrivatePEM(keyPEM)
	if err != nil {
		return nil, fmt.Errorf("--key %s: %w", path, err)
	}
	k := &signingKey{}
	if k.signer, err = keys.NewSigner(priv); err != nil {
		return nil, fmt.Errorf("--key %s: %w", path, err)
	}
	if k.pubPEM, err = keys.MarshalPublicPEM(priv.Public()); err != nil {
		return nil, fmt.Errorf("--key %s: %w", path, err)
	}
	if k.id, err = keys.IDOf(priv.Public()); err != nil {
		return nil, fmt.Errorf("--key %s: %w", path, err)
	}
	return k, nil
}

// appendSigned appends the signed envelope env to namespace through c and
// verifies the receipt against the log key (--log-key; without one it
// warns that the receipt went unverified, and v is nil). pubPEM, if set,
// is sent in public_keys. what names the command in errors ("append",
// "redact", …).
func (a *app) appendSigned(ctx context.Context, c provledgerpb.LedgerClient, what, namespace string, env *envelope.Envelope, pubPEM []byte) (resp *provledgerpb.AppendResponse, v note.Verifier, err error) {
	req := &provledgerpb.AppendRequest{
		Namespace: namespace,
		Body:      &provledgerpb.AppendRequest_Envelope{Envelope: toProtoEnvelope(env)},
	}
	if pubPEM != nil {
		req.PublicKeys = [][]byte{pubPEM}
	}
	rctx, cancel := a.rpcCtx(ctx)
	defer cancel()
	resp, err = c.Append(rctx, req)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", what, err)
	}
	if e := resp.GetError(); e != nil {
		return nil, nil, fmt.Errorf("%s: the server refused it (code %d): %s", what, e.GetCode(), e.GetMessage())
	}
	if v, err = a.verifierFor(resp.GetCheckpoint(), false); err != nil {
		return nil, nil, fmt.Errorf("%s: entry %d was appended, but: %w", what, resp.GetIndex(), err)
	}
	if err := client.VerifyReceipt(resp, env.Marshal(), v); err != nil {
		return nil, nil, fmt.Errorf("%s: the server says entry %d was appended, but its receipt does not verify: %w", what, resp.GetIndex(), err)
	}
	if v == nil {
		a.warnUnverified("receipt")
	}
	return resp, v, nil
}
