package ledger_test

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"log"
	"os"

	"github.com/provledger/provledger/crypto/checkpoint"
	"github.com/provledger/provledger/crypto/envelope"
	"github.com/provledger/provledger/crypto/keys"
	"github.com/provledger/provledger/crypto/proof"
	"github.com/provledger/provledger/ledger"
)

// Example embeds a log: open it, sign and verify an envelope, append it,
// and check the receipt with the log's public key alone.
func Example() {
	dir, err := os.MkdirTemp("", "provledger-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	// The log's Ed25519 key signs checkpoints; its public key is all a
	// verifier needs.
	logKey := ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize))
	signer, err := checkpoint.NewSigner("ledger.example/prod", logKey)
	if err != nil {
		log.Fatal(err)
	}
	l, err := ledger.Open(dir, ledger.Options{Origin: "ledger.example/prod", Signer: signer})
	if err != nil {
		log.Fatal(err)
	}
	defer l.Close()
	seq, err := ledger.NewLocalSequencer(l, ledger.SequencerOptions{})
	if err != nil {
		log.Fatal(err)
	}
	defer seq.Close()

	// A pipeline signs its record as a DSSE envelope.
	pipelineKey, _ := keys.Generate("ed25519")
	ps, _ := keys.NewSigner(pipelineKey)
	env, err := envelope.Sign("application/vnd.in-toto+json", []byte(`{"_type":"https://in-toto.io/Statement/v1"}`), ps)
	if err != nil {
		log.Fatal(err)
	}
	trusted, _ := keys.NewKeyring(pipelineKey.Public())
	signers, err := (&envelope.Verifier{Keyring: trusted}).Verify(env)
	if err != nil {
		log.Fatal(err)
	}
	ids := make([][32]byte, len(signers))
	for i, id := range signers {
		ids[i] = id
	}

	receipts, err := seq.Submit(context.Background(), []ledger.Entry{{
		Namespace:   "team-a",
		PayloadType: env.PayloadType,
		Envelope:    env.Marshal(),
		Signers:     ids,
	}})
	if err != nil {
		log.Fatal(err)
	}
	r := receipts[0]

	// Anyone with the log's public key checks the receipt.
	v, _ := checkpoint.NewVerifier("ledger.example/prod", logKey.Public().(ed25519.PublicKey))
	cp, err := checkpoint.Open(r.Checkpoint.Note, v)
	if err != nil {
		log.Fatal(err)
	}
	err = proof.VerifyInclusion(r.Index, cp.Size, proof.LeafHash(r.Record), r.Proof, cp.Hash)
	fmt.Println("index", r.Index, "tree size", cp.Size, "verified:", err == nil)
	// Output: index 0 tree size 1 verified: true
}
