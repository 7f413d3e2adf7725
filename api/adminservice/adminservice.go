// Package adminservice implements the provledger Admin gRPC service
// (provledgerpb.AdminServer): operations on the node's store, for the
// admin role. Backup streams a consistent backup of the ledger (the
// ledger's backup file: a header with the log key and the signed
// checkpoint, then the snapshot stream) that `provd --restore` reads.
//
// Errors are gRPC statuses: Unavailable when the ledger is closed (the
// node is stopping), Canceled or DeadlineExceeded when the client went
// away, Internal for storage errors (logged).
package adminservice

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"log/slog"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/provledger/provledger/api/provledgerpb"
	"github.com/provledger/provledger/ledger"
)

// DefaultChunkSize is the data carried by one BackupChunk.
const DefaultChunkSize = 256 << 10

// ErrConfig is returned by New for an incomplete Config.
var ErrConfig = errors.New("adminservice: bad config")

// Config configures a Service.
type Config struct {
	// Log is the node's ledger. Required.
	Log *ledger.Log
	// LogKey is the log's note verifier key ("origin+hash+base64",
	// checkpoint.VerifierKey), written into every backup. Required.
	LogKey string
	// Node names this node in BackupInfo (e.g. its Raft node id); may be
	// empty.
	Node string
	// ChunkSize is the data per message. Default DefaultChunkSize.
	ChunkSize int
	// Logger receives the service's logs. Default slog.Default().
	Logger *slog.Logger
}

// Service implements provledgerpb.AdminServer.
type Service struct {
	provledgerpb.UnimplementedAdminServer
	cfg Config
	log *slog.Logger
}

var _ provledgerpb.AdminServer = (*Service)(nil)

// New returns a Service for cfg.
func New(cfg Config) (*Service, error) {
	switch {
	case cfg.Log == nil:
		return nil, fmt.Errorf("%w: Log is required", ErrConfig)
	case cfg.LogKey == "":
		return nil, fmt.Errorf("%w: LogKey is required", ErrConfig)
	case cfg.ChunkSize < 0:
		return nil, fmt.Errorf("%w: ChunkSize %d is negative", ErrConfig, cfg.ChunkSize)
	}
	if cfg.ChunkSize == 0 {
		cfg.ChunkSize = DefaultChunkSize
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Service{cfg: cfg, log: cfg.Logger.With("component", "admin-api")}, nil
}

// Backup implements provledgerpb.AdminServer: BackupInfo, the backup
// file's bytes, then BackupTrailer (byte count and SHA-256). The view is
// taken when the call starts; appends go on meanwhile and are not in it.
func (s *Service) Backup(_ *provledgerpb.BackupRequest, stream provledgerpb.Admin_BackupServer) error {
	ctx := stream.Context()
	start := time.Now()
	b, err := s.cfg.Log.NewBackup(s.cfg.LogKey)
	if err != nil {
		return s.fail(ctx, "take the backup's view", err)
	}
	defer b.Close()
	cp := b.Checkpoint()
	err = stream.Send(&provledgerpb.BackupChunk{Part: &provledgerpb.BackupChunk_Info{Info: &provledgerpb.BackupInfo{
		Checkpoint: cp.Note, Size: cp.Size, LogKey: b.LogKey(), AppliedIndex: b.AppliedIndex(), Node: s.cfg.Node,
	}}})
	if err != nil {
		return s.fail(ctx, "send", err)
	}
	w := &chunkWriter{stream: stream, ctx: ctx, max: s.cfg.ChunkSize, h: sha256.New()}
	if _, err := b.WriteTo(w); err != nil {
		return s.fail(ctx, "stream the backup", err)
	}
	err = stream.Send(&provledgerpb.BackupChunk{Part: &provledgerpb.BackupChunk_Trailer{Trailer: &provledgerpb.BackupTrailer{
		Bytes: w.n, Sha256: w.h.Sum(nil),
	}}})
	if err != nil {
		return s.fail(ctx, "send", err)
	}
	s.log.InfoContext(ctx, "backup sent", "size", cp.Size, "applied_index", b.AppliedIndex(), "bytes", w.n, "took", time.Since(start))
	return nil
}

// fail maps err to a status, logging what is not the client's doing.
func (s *Service) fail(ctx context.Context, what string, err error) error {
	if ctx.Err() != nil {
		return status.FromContextError(ctx.Err()).Err()
	}
	if _, ok := status.FromError(err); ok && !errors.Is(err, ledger.ErrClosed) {
		return err
	}
	if errors.Is(err, ledger.ErrClosed) {
		return status.Error(codes.Unavailable, "the node is shutting down; retry on another node or after restart")
	}
	s.log.ErrorContext(ctx, "backup failed", "step", what, "err", err)
	return status.Errorf(codes.Internal, "backup: %s: %v", what, err)
}

// chunkWriter sends what is written to it as BackupChunk data messages of
// at most max bytes, hashing them.
type chunkWriter struct {
	stream provledgerpb.Admin_BackupServer
	ctx    context.Context
	max    int
	h      hash.Hash
	n      uint64
}

func (c *chunkWriter) Write(p []byte) (int, error) {
	written := 0
	for len(p) > 0 {
		if err := c.ctx.Err(); err != nil {
			return written, err
		}
		part := p[:min(len(p), c.max)]
		if err := c.stream.Send(&provledgerpb.BackupChunk{Part: &provledgerpb.BackupChunk_Data{Data: part}}); err != nil {
			return written, err
		}
		c.h.Write(part)
		c.n += uint64(len(part))
		written += len(part)
		p = p[len(part):]
	}
	return written, nil
}
