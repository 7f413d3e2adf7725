package checkpoint

import (
	"bytes"
	"errors"
	"testing"

	"github.com/transparency-dev/formats/log"
)

// FuzzParseBody: never panics, errors wrap ErrMalformed, and an accepted
// body is canonical: its first three lines are exactly Body() of the
// result, and formats/log agrees on the values.
func FuzzParseBody(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := ParseBody(b)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
			return
		}
		body := c.Body()
		if !bytes.HasPrefix(b, body) {
			t.Fatalf("accepted non-canonical body %q (canonical %q)", b, body)
		}
		var lc log.Checkpoint
		if _, err := lc.Unmarshal(b); err != nil {
			t.Fatalf("formats/log rejects accepted body %q: %v", b, err)
		}
		if lc.Origin != c.Origin || lc.Size != c.Size || !bytes.Equal(lc.Hash, c.Hash[:]) {
			t.Fatalf("formats/log reads %+v, we read %+v", lc, c)
		}
		if c2, err := ParseBody(body); err != nil || c2 != c {
			t.Fatalf("Body does not round-trip: %+v, %v", c2, err)
		}
	})
}

// FuzzOpen: never panics, errors wrap one sentinel, and only the genuine
// checkpoint (possibly with extra signature lines) opens.
func FuzzOpen(f *testing.F) {
	v := mustVerifier(f, origin, logKey)
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := Open(b, v)
		if err != nil {
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrBadSignature) && !errors.Is(err, ErrWrongOrigin) {
				t.Fatalf("error %v wraps no sentinel", err)
			}
			return
		}
		if c != exampleCP {
			t.Fatalf("opened a forged checkpoint %+v", c)
		}
	})
}
