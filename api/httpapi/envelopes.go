package httpapi

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/provledger/provledger/crypto/record"
	"github.com/provledger/provledger/ledger"
	"github.com/provledger/provledger/ledger/tiles"
)

// EnvelopesContentType is the media type of an envelope bundle
// (GET /envelopes/<N>[.p/<W>]).
const EnvelopesContentType = "application/vnd.provledger.envelope-bundle"

// CacheEnvelopes is the Cache-Control of an envelope bundle: unlike an
// entry bundle it can change after the fact (a later redaction empties an
// envelope), so it is cached for a short time only.
const CacheEnvelopes = "public, max-age=60"

// envelopeBundle serves GET /envelopes/<N>[.p/<W>]: the envelopes of the
// entries of entry bundle N (width W), in index order, each as a 4-byte
// big-endian length followed by the canonical envelope JSON; length 0 for
// a redacted envelope. It spares an auditor one request per envelope.
func (h *Handler) envelopeBundle(w http.ResponseWriter, p string) {
	rest, _ := strings.CutPrefix(p, "envelopes/")
	t, err := tiles.ParsePath("tile/entries/" + rest)
	if err != nil {
		h.fail(w, http.StatusBadRequest, fmt.Sprintf("bad envelope bundle path %q: want envelopes/<N>[.p/<W>], N and W as in /tile/entries/ (https://c2sp.org/tlog-tiles)", p))
		return
	}
	b, err := EnvelopeBundle(h.log, t.Index, t.Width)
	if err != nil {
		h.ledgerError(w, p, err)
		return
	}
	w.Header().Set("Cache-Control", CacheEnvelopes)
	h.write(w, EnvelopesContentType, b)
}

// EnvelopeBundle returns the envelope bundle of entry bundle index with
// width entries: for each entry 256·index … 256·index+width−1, a 4-byte
// big-endian length and the entry's canonical envelope JSON, or length 0
// when the envelope was redacted. The bundle must lie within the latest
// checkpoint (else an error wrapping ledger.ErrNotFound).
func EnvelopeBundle(l *ledger.Log, index uint64, width int) ([]byte, error) {
	if !tiles.Available(0, index, width, l.Latest().Size) {
		return nil, fmt.Errorf("envelope bundle %d width %d: %w", index, width, ledger.ErrNotFound)
	}
	start := index * tiles.Width
	digests := make([][32]byte, 0, width)
	err := l.Records(start, start+uint64(width), func(i uint64, rec []byte) error {
		r, err := record.Unmarshal(rec)
		if err != nil {
			return fmt.Errorf("%w: record %d: %v", ledger.ErrCorrupt, i, err)
		}
		digests = append(digests, r.EnvelopeDigest)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("envelope bundle %d: %w", index, err)
	}
	// Envelopes are stored in index order: one range read gives every
	// envelope of the bundle; an entry it skips (redacted) is asked for by
	// digest, for its error.
	var b []byte
	end := start + uint64(len(digests))
	next := start
	skipped := func(upto uint64) error {
		for ; next < upto; next++ {
			_, err := l.Envelope(digests[next-start])
			switch {
			case errors.Is(err, ledger.ErrRedacted):
				b = binary.BigEndian.AppendUint32(b, 0)
			case err != nil:
				return fmt.Errorf("entry %d: %w", next, err)
			default:
				return fmt.Errorf("%w: entry %d: envelope readable by digest but not in index order", ledger.ErrCorrupt, next)
			}
		}
		return nil
	}
	err = l.Envelopes(start, end, func(i uint64, env []byte) error {
		if err := skipped(i); err != nil {
			return err
		}
		if b == nil {
			b = make([]byte, 0, len(digests)*(4+len(env)+len(env)/4))
		}
		b = binary.BigEndian.AppendUint32(b, uint32(len(env)))
		b = append(b, env...)
		next = i + 1
		return nil
	})
	if err == nil {
		err = skipped(end)
	}
	if err != nil {
		return nil, fmt.Errorf("envelope bundle %d: %w", index, err)
	}
	return b, nil
}
