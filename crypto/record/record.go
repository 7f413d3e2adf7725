package record

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"
)

// Version is the record format version this package writes.
const Version = 1

// Limits on the variable-length fields. They keep a record under
// MaxEncodedSize bytes.
const (
	MaxNamespaceLen   = 255
	MaxPayloadTypeLen = 255
	MaxSigners        = 16
	// MaxEncodedSize bounds Marshal's output (far below tlog-tiles' 64 KiB).
	MaxEncodedSize = 1 + 8 + 1 + MaxNamespaceLen + 1 + MaxPayloadTypeLen + 32 + 4 + 1 + 32*MaxSigners
)

// ErrMalformed is wrapped by every decoding and validation error.
var ErrMalformed = errors.New("malformed entry record")

// Record is one entry of the log, as hashed into its leaf.
type Record struct {
	// IntegratedTime is when the sequencer integrated the entry, at
	// millisecond precision.
	IntegratedTime time.Time
	// Namespace owns the entry.
	Namespace string
	// PayloadType is the DSSE payload type of the envelope.
	PayloadType string
	// EnvelopeDigest is SHA-256 of the canonical envelope JSON.
	EnvelopeDigest [32]byte
	// EnvelopeSize is the length of the canonical envelope JSON.
	EnvelopeSize uint32
	// Signers are the key ids of the envelope's signatures, in order.
	Signers [][32]byte
}

// Validate reports whether r can be encoded; the error names the field to fix.
func (r *Record) Validate() error {
	switch {
	case len(r.Namespace) == 0 || len(r.Namespace) > MaxNamespaceLen:
		return fmt.Errorf("%w: namespace must be 1..%d bytes, got %d", ErrMalformed, MaxNamespaceLen, len(r.Namespace))
	case !utf8.ValidString(r.Namespace):
		return fmt.Errorf("%w: namespace is not valid UTF-8", ErrMalformed)
	case len(r.PayloadType) == 0 || len(r.PayloadType) > MaxPayloadTypeLen:
		return fmt.Errorf("%w: payload type must be 1..%d bytes, got %d", ErrMalformed, MaxPayloadTypeLen, len(r.PayloadType))
	case !utf8.ValidString(r.PayloadType):
		return fmt.Errorf("%w: payload type is not valid UTF-8", ErrMalformed)
	case len(r.Signers) == 0 || len(r.Signers) > MaxSigners:
		return fmt.Errorf("%w: need 1..%d signers, got %d", ErrMalformed, MaxSigners, len(r.Signers))
	case r.IntegratedTime.UnixMilli() < 0:
		return fmt.Errorf("%w: integrated time %s is before 1970", ErrMalformed, r.IntegratedTime)
	}
	return nil
}

// Marshal returns the version 1 encoding of r. Equal records give equal
// bytes; IntegratedTime is truncated to milliseconds.
func (r *Record) Marshal() ([]byte, error) {
	if err := r.Validate(); err != nil {
		return nil, err
	}
	return r.AppendTo(make([]byte, 0, r.encodedSize())), nil
}

// AppendTo appends the encoding of a valid record to b. Call Validate first:
// AppendTo does not check.
func (r *Record) AppendTo(b []byte) []byte {
	b = append(b, Version)
	b = binary.BigEndian.AppendUint64(b, uint64(r.IntegratedTime.UnixMilli()))
	b = append(b, byte(len(r.Namespace)))
	b = append(b, r.Namespace...)
	b = append(b, byte(len(r.PayloadType)))
	b = append(b, r.PayloadType...)
	b = append(b, r.EnvelopeDigest[:]...)
	b = binary.BigEndian.AppendUint32(b, r.EnvelopeSize)
	b = append(b, byte(len(r.Signers)))
	for _, s := range r.Signers {
		b = append(b, s[:]...)
	}
	return b
}

func (r *Record) encodedSize() int {
	return 1 + 8 + 1 + len(r.Namespace) + 1 + len(r.PayloadType) + 32 + 4 + 1 + 32*len(r.Signers)
}

// Unmarshal decodes a version 1 record. It rejects unknown versions, fields
// out of range and trailing bytes.
func Unmarshal(b []byte) (Record, error) {
	var r Record
	d := decoder{b: b}
	if v := d.u8("version"); d.err == nil && v != Version {
		return r, fmt.Errorf("%w: unknown version %d (this build reads version %d)", ErrMalformed, v, Version)
	}
	ms := d.u64("integrated time")
	r.Namespace = d.str("namespace")
	r.PayloadType = d.str("payload type")
	copy(r.EnvelopeDigest[:], d.bytes(32, "envelope digest"))
	r.EnvelopeSize = d.u32("envelope size")
	n := int(d.u8("signer count"))
	if d.err != nil {
		return Record{}, d.err
	}
	r.Signers = make([][32]byte, n)
	for i := range r.Signers {
		copy(r.Signers[i][:], d.bytes(32, "signer key id"))
	}
	if d.err != nil {
		return Record{}, d.err
	}
	if len(d.b) != 0 {
		return Record{}, fmt.Errorf("%w: %d trailing bytes", ErrMalformed, len(d.b))
	}
	if ms > 1<<62 {
		return Record{}, fmt.Errorf("%w: integrated time %d ms out of range", ErrMalformed, ms)
	}
	r.IntegratedTime = time.UnixMilli(int64(ms)).UTC()
	if err := r.Validate(); err != nil {
		return Record{}, err
	}
	return r, nil
}

type decoder struct {
	b   []byte
	err error
}

func (d *decoder) bytes(n int, field string) []byte {
	if d.err != nil {
		return nil
	}
	if len(d.b) < n {
		d.err = fmt.Errorf("%w: truncated in %s", ErrMalformed, field)
		return nil
	}
	v := d.b[:n]
	d.b = d.b[n:]
	return v
}

func (d *decoder) u8(field string) uint8 {
	if v := d.bytes(1, field); v != nil {
		return v[0]
	}
	return 0
}

func (d *decoder) u32(field string) uint32 {
	if v := d.bytes(4, field); v != nil {
		return binary.BigEndian.Uint32(v)
	}
	return 0
}

func (d *decoder) u64(field string) uint64 {
	if v := d.bytes(8, field); v != nil {
		return binary.BigEndian.Uint64(v)
	}
	return 0
}

func (d *decoder) str(field string) string {
	n := int(d.u8(field + " length"))
	return string(d.bytes(n, field))
}
