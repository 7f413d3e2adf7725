// Package backupclient receives a backup streamed by the Admin service's
// Backup RPC (package adminservice) and checks that it arrived whole: the
// info first, the data, then a trailer whose byte count and SHA-256 match
// the data. It imports no store: `prov backup` uses it.
package backupclient

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"

	"github.com/provledger/provledger/api/provledgerpb"
)

// ErrIncomplete: the stream ended early, out of order, or its trailer does
// not match the data received. The backup must not be used.
var ErrIncomplete = errors.New("backup stream incomplete")

// Stream is what Receive reads: provledgerpb.Admin_BackupClient.
type Stream interface {
	Recv() (*provledgerpb.BackupChunk, error)
}

// Result is a backup received whole.
type Result struct {
	Info *provledgerpb.BackupInfo
	// Bytes and SHA256 describe the data written.
	Bytes  uint64
	SHA256 []byte
}

// Receive copies the backup's data from s to w and returns its info once
// the trailer confirmed it. Errors of the stream (gRPC statuses) and of w
// are returned wrapped; a malformed stream wraps ErrIncomplete.
func Receive(s Stream, w io.Writer) (*Result, error) {
	first, err := s.Recv()
	if err != nil {
		return nil, fmt.Errorf("receive backup: %w", err)
	}
	info := first.GetInfo()
	if info == nil {
		return nil, fmt.Errorf("%w: the first message is not the backup's info", ErrIncomplete)
	}
	h := sha256.New()
	var n uint64
	for {
		c, err := s.Recv()
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%w: the stream ended after %d bytes without its trailer", ErrIncomplete, n)
		}
		if err != nil {
			return nil, fmt.Errorf("receive backup after %d bytes: %w", n, err)
		}
		switch p := c.GetPart().(type) {
		case *provledgerpb.BackupChunk_Data:
			if _, err := w.Write(p.Data); err != nil {
				return nil, fmt.Errorf("write backup: %w", err)
			}
			h.Write(p.Data)
			n += uint64(len(p.Data))
		case *provledgerpb.BackupChunk_Trailer:
			sum := h.Sum(nil)
			if p.Trailer.GetBytes() != n || !bytes.Equal(p.Trailer.GetSha256(), sum) {
				return nil, fmt.Errorf("%w: received %d bytes (SHA-256 %x), the trailer says %d bytes (SHA-256 %x)", ErrIncomplete, n, sum, p.Trailer.GetBytes(), p.Trailer.GetSha256())
			}
			if _, err := s.Recv(); !errors.Is(err, io.EOF) {
				return nil, fmt.Errorf("%w: messages after the trailer (%v)", ErrIncomplete, err)
			}
			return &Result{Info: info, Bytes: n, SHA256: sum}, nil
		default:
			return nil, fmt.Errorf("%w: unexpected message after %d bytes", ErrIncomplete, n)
		}
	}
}
