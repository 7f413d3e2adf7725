package badgerstore

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/raft"
)

// Stored form of a raft.Log (the index is also the key):
//
//	version   u8 = 1
//	index     uvarint (must equal the key's)
//	term      uvarint
//	type      u8
//	flags     u8   bit 0: AppendedAt present
//	appended  i64 big-endian Unix nanoseconds, if flag bit 0
//	data      uvarint length, bytes
//	ext       uvarint length, bytes
const logFormatV1 = 1

var errBadLog = errors.New("malformed stored raft log")

func encodedLogSize(l *raft.Log) int {
	return 1 + uvarintLen(l.Index) + uvarintLen(l.Term) + 2 + 8 +
		uvarintLen(uint64(len(l.Data))) + len(l.Data) + uvarintLen(uint64(len(l.Extensions))) + len(l.Extensions)
}

func uvarintLen(x uint64) int {
	n := 1
	for x >= 0x80 {
		x >>= 7
		n++
	}
	return n
}

func encodeLog(l *raft.Log) []byte {
	b := make([]byte, 0, encodedLogSize(l))
	b = append(b, logFormatV1)
	b = binary.AppendUvarint(b, l.Index)
	b = binary.AppendUvarint(b, l.Term)
	b = append(b, byte(l.Type))
	if l.AppendedAt.IsZero() {
		b = append(b, 0)
	} else {
		b = append(b, 1)
		b = binary.BigEndian.AppendUint64(b, uint64(l.AppendedAt.UnixNano()))
	}
	b = binary.AppendUvarint(b, uint64(len(l.Data)))
	b = append(b, l.Data...)
	b = binary.AppendUvarint(b, uint64(len(l.Extensions)))
	b = append(b, l.Extensions...)
	return b
}

// decodeLog fills l from v; l.Data and l.Extensions alias v.
func decodeLog(index uint64, v []byte, l *raft.Log) error {
	if len(v) < 1 || v[0] != logFormatV1 {
		return fmt.Errorf("%w: unknown format", errBadLog)
	}
	v = v[1:]
	uv := func() (uint64, error) {
		x, n := binary.Uvarint(v)
		if n <= 0 {
			return 0, errBadLog
		}
		v = v[n:]
		return x, nil
	}
	bytesField := func() ([]byte, error) {
		n, err := uv()
		if err != nil || n > uint64(len(v)) {
			return nil, errBadLog
		}
		f := v[:n:n]
		v = v[n:]
		if n == 0 {
			return nil, nil
		}
		return f, nil
	}
	idx, err := uv()
	if err != nil {
		return err
	}
	if idx != index {
		return fmt.Errorf("%w: holds index %d", errBadLog, idx)
	}
	term, err := uv()
	if err != nil {
		return err
	}
	if len(v) < 2 {
		return errBadLog
	}
	typ, flags := v[0], v[1]
	v = v[2:]
	var at time.Time
	switch flags {
	case 0:
	case 1:
		if len(v) < 8 {
			return errBadLog
		}
		at = time.Unix(0, int64(binary.BigEndian.Uint64(v)))
		v = v[8:]
	default:
		return fmt.Errorf("%w: flags %#x", errBadLog, flags)
	}
	data, err := bytesField()
	if err != nil {
		return err
	}
	ext, err := bytesField()
	if err != nil {
		return err
	}
	if len(v) != 0 {
		return fmt.Errorf("%w: %d trailing bytes", errBadLog, len(v))
	}
	*l = raft.Log{Index: idx, Term: term, Type: raft.LogType(typ), Data: data, Extensions: ext, AppendedAt: at}
	return nil
}
