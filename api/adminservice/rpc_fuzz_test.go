package adminservice_test

import (
	"bytes"
	"context"
	"io"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/provledger/provledger/api/adminservice/backupclient"
	"github.com/provledger/provledger/api/provledgerpb"
)

// FuzzBackupRPC decodes arbitrary bytes as a BackupRequest (it has no
// fields: whatever decodes is a valid request, its fields unknown and
// ignored) and calls Backup on a real ledger over gRPC: the stream arrives
// whole, names the log's current checkpoint, and the log does not change.
func FuzzBackupRPC(f *testing.F) {
	e := start(f, 1<<14)
	e.fill(f, 0, 40)
	f.Add([]byte{})
	f.Add([]byte("\x08\x01"))
	f.Add([]byte("\x12\x03abc\x18\x05"))
	f.Fuzz(func(t *testing.T, body []byte) {
		req := &provledgerpb.BackupRequest{}
		if proto.Unmarshal(body, req) != nil {
			return // the server package's FuzzLedgerRPC covers undecodable requests
		}
		before := e.log.Latest()
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		stream, err := e.admin.Backup(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		res, err := backupclient.Receive(stream, io.Discard)
		if err != nil {
			t.Fatalf("Backup(%x): %v", body, err)
		}
		if !bytes.Equal(res.Info.GetCheckpoint(), before.Note) {
			t.Fatalf("Backup(%x) names checkpoint of size %d, the log's is %d", body, res.Info.GetSize(), before.Size)
		}
		if after := e.log.Latest(); after.Size != before.Size {
			t.Fatalf("Backup(%x): the log changed from %d to %d", body, before.Size, after.Size)
		}
	})
}
