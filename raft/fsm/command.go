package fsm

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/provledger/provledger/ledger"
)

// CommandVersion is the first byte of every command.
const CommandVersion = 1

// Kind says what a command does.
type Kind uint8

// Command kinds.
const (
	// KindBatch integrates one group-committed batch of entries.
	KindBatch Kind = 1
	// KindSetMember records a node's API address.
	KindSetMember Kind = 2
	// KindRemoveMember forgets a node's API address.
	KindRemoveMember Kind = 3
)

// Limits the decoder enforces (the encoder's callers stay below them).
const (
	MaxMemberID   = 255
	MaxMemberAddr = 1024
)

// ErrMalformed: a command that does not decode. Decoding is strict: one
// byte sequence per command, nothing trailing.
var ErrMalformed = errors.New("malformed raft command")

// Command is a decoded Raft command.
type Command struct {
	Kind Kind
	// Batch is set for KindBatch. Its envelopes alias the decoded bytes.
	Batch ledger.Batch
	// Member is set for KindSetMember (ID and APIAddr) and KindRemoveMember
	// (ID).
	Member Member
}

// Member is a node of the cluster as the FSM records it.
type Member struct {
	ID      string
	APIAddr string
}

// Encoding (version 1). uvarints are minimal; strings and byte fields are a
// uvarint length followed by the bytes.
//
//	version  u8 = 1
//	kind     u8
//	KindBatch:
//	  time     i64 big-endian, Unix milliseconds (the leader's clock)
//	  count    uvarint ≥ 1
//	  count ×  namespace, payload type, envelope (byte fields),
//	           signers: uvarint n, then n × 32-byte key id
//	KindSetMember:    id, API address (byte fields)
//	KindRemoveMember: id (byte field)

// BatchSize returns the exact encoded size of a batch command.
func BatchSize(entries []ledger.Entry) int {
	n := 2 + 8 + uvarintLen(uint64(len(entries)))
	for i := range entries {
		n += EntrySize(&entries[i])
	}
	return n
}

// EntrySize returns the encoded size of one entry inside a batch command.
func EntrySize(e *ledger.Entry) int {
	return fieldLen(len(e.Namespace)) + fieldLen(len(e.PayloadType)) + fieldLen(len(e.Envelope)) +
		uvarintLen(uint64(len(e.Signers))) + 32*len(e.Signers)
}

// AppendBatch appends the encoding of b to dst. b must hold at least one
// entry.
func AppendBatch(dst []byte, b ledger.Batch) []byte {
	dst = append(dst, CommandVersion, byte(KindBatch))
	dst = binary.BigEndian.AppendUint64(dst, uint64(b.Time.UnixMilli()))
	dst = binary.AppendUvarint(dst, uint64(len(b.Entries)))
	for i := range b.Entries {
		e := &b.Entries[i]
		dst = appendField(dst, e.Namespace)
		dst = appendField(dst, e.PayloadType)
		dst = appendField(dst, e.Envelope)
		dst = binary.AppendUvarint(dst, uint64(len(e.Signers)))
		for _, s := range e.Signers {
			dst = append(dst, s[:]...)
		}
	}
	return dst
}

// EncodeBatch returns the command integrating b.
func EncodeBatch(b ledger.Batch) ([]byte, error) {
	if len(b.Entries) == 0 {
		return nil, fmt.Errorf("encode batch: no entries")
	}
	return AppendBatch(make([]byte, 0, BatchSize(b.Entries)), b), nil
}

// EncodeSetMember returns the command recording m's API address.
func EncodeSetMember(m Member) ([]byte, error) {
	if err := m.validate(true); err != nil {
		return nil, err
	}
	b := []byte{CommandVersion, byte(KindSetMember)}
	b = appendField(b, m.ID)
	return appendField(b, m.APIAddr), nil
}

// EncodeRemoveMember returns the command forgetting node id.
func EncodeRemoveMember(id string) ([]byte, error) {
	if err := (Member{ID: id}).validate(false); err != nil {
		return nil, err
	}
	return appendField([]byte{CommandVersion, byte(KindRemoveMember)}, id), nil
}

func (m Member) validate(addr bool) error {
	switch {
	case m.ID == "" || len(m.ID) > MaxMemberID:
		return fmt.Errorf("member id must have 1 to %d bytes, not %d", MaxMemberID, len(m.ID))
	case addr && (m.APIAddr == "" || len(m.APIAddr) > MaxMemberAddr):
		return fmt.Errorf("member %q: API address must have 1 to %d bytes, not %d", m.ID, MaxMemberAddr, len(m.APIAddr))
	}
	return nil
}

// Decode parses a command. It accepts exactly the encodings the Encode
// functions produce (Decode then re-encode gives the same bytes).
func Decode(data []byte) (Command, error) {
	d := decoder{b: data}
	if len(data) < 2 {
		return Command{}, fmt.Errorf("%w: %d bytes", ErrMalformed, len(data))
	}
	if data[0] != CommandVersion {
		return Command{}, fmt.Errorf("%w: version %d (this node knows %d; upgrade it)", ErrMalformed, data[0], CommandVersion)
	}
	d.b = data[2:]
	c := Command{Kind: Kind(data[1])}
	switch c.Kind {
	case KindBatch:
		if len(d.b) < 8 {
			return Command{}, fmt.Errorf("%w: batch time truncated", ErrMalformed)
		}
		c.Batch.Time = time.UnixMilli(int64(binary.BigEndian.Uint64(d.b)))
		d.b = d.b[8:]
		n := d.uvarint()
		// Every entry takes at least 4 bytes: bound the allocation.
		if d.err == nil && (n == 0 || n > uint64(len(d.b))/4) {
			return Command{}, fmt.Errorf("%w: batch of %d entries in %d bytes", ErrMalformed, n, len(d.b))
		}
		c.Batch.Entries = make([]ledger.Entry, 0, n)
		for i := uint64(0); i < n && d.err == nil; i++ {
			var e ledger.Entry
			e.Namespace = string(d.field())
			e.PayloadType = string(d.field())
			e.Envelope = d.field()
			ns := d.uvarint()
			if d.err == nil && ns > uint64(len(d.b))/32 {
				d.err = fmt.Errorf("entry %d: %d signers in %d bytes", i, ns, len(d.b))
			}
			if d.err == nil && ns > 0 {
				e.Signers = make([][32]byte, ns)
				for j := range e.Signers {
					copy(e.Signers[j][:], d.b[:32])
					d.b = d.b[32:]
				}
			}
			c.Batch.Entries = append(c.Batch.Entries, e)
		}
	case KindSetMember:
		c.Member.ID = string(d.field())
		c.Member.APIAddr = string(d.field())
		if d.err == nil {
			d.err = c.Member.validate(true)
		}
	case KindRemoveMember:
		c.Member.ID = string(d.field())
		if d.err == nil {
			d.err = c.Member.validate(false)
		}
	default:
		return Command{}, fmt.Errorf("%w: unknown kind %d", ErrMalformed, c.Kind)
	}
	if d.err != nil {
		return Command{}, fmt.Errorf("%w: %v", ErrMalformed, d.err)
	}
	if len(d.b) != 0 {
		return Command{}, fmt.Errorf("%w: %d trailing bytes", ErrMalformed, len(d.b))
	}
	return c, nil
}

type decoder struct {
	b   []byte
	err error
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	x, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.err = errors.New("bad varint")
		return 0
	}
	if n != uvarintLen(x) {
		d.err = errors.New("non-minimal varint")
		return 0
	}
	d.b = d.b[n:]
	return x
}

func (d *decoder) field() []byte {
	n := d.uvarint()
	if d.err != nil {
		return nil
	}
	if n > uint64(len(d.b)) {
		d.err = fmt.Errorf("field of %d bytes, %d left", n, len(d.b))
		return nil
	}
	f := d.b[:n:n]
	d.b = d.b[n:]
	return f
}

func appendField[T string | []byte](dst []byte, f T) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(f)))
	return append(dst, f...)
}

func fieldLen(n int) int { return uvarintLen(uint64(n)) + n }

func uvarintLen(x uint64) int {
	n := 1
	for x >= 0x80 {
		x >>= 7
		n++
	}
	return n
}
