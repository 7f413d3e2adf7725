package keys

import (
	"errors"
	"testing"
)

// The fuzz targets check that decoders never panic, that every error wraps
// one of the package's sentinels, and that whatever is accepted is within
// the algorithm policy and round-trips.

func isSentinel(err error) bool {
	return errors.Is(err, ErrBadKeyID) || errors.Is(err, ErrUnsupportedKey) || errors.Is(err, ErrNoPEM) || errors.Is(err, ErrBadPEM)
}

func FuzzParseKeyID(f *testing.F) {
	f.Fuzz(func(t *testing.T, s string) {
		id, err := ParseKeyID(s)
		if err != nil {
			if !errors.Is(err, ErrBadKeyID) {
				t.Fatalf("error %v does not wrap ErrBadKeyID", err)
			}
			return
		}
		if id.String() != s {
			t.Fatalf("ParseKeyID(%q).String() = %q", s, id)
		}
	})
}

func FuzzParsePrivatePEM(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		k, err := ParsePrivatePEM(b)
		if err != nil {
			if !isSentinel(err) {
				t.Fatalf("error %v wraps no sentinel", err)
			}
			return
		}
		if err := CheckPublicKey(k.Public()); err != nil {
			t.Fatalf("accepted key outside policy: %v", err)
		}
		out, err := MarshalPrivatePEM(k)
		if err != nil {
			t.Fatalf("accepted key does not marshal: %v", err)
		}
		if _, err := ParsePrivatePEM(out); err != nil {
			t.Fatalf("re-parse: %v", err)
		}
	})
}

func FuzzParsePublicPEMs(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		pubs, err := ParsePublicPEMs(b)
		if err != nil {
			if !isSentinel(err) {
				t.Fatalf("error %v wraps no sentinel", err)
			}
			return
		}
		for _, p := range pubs {
			if _, err := NewVerifiers(p); err != nil {
				t.Fatalf("accepted key has no verifiers: %v", err)
			}
			if _, err := MarshalPublicPEM(p); err != nil {
				t.Fatalf("accepted key does not marshal: %v", err)
			}
		}
		_, _ = ParsePublicPEM(b)
	})
}
