package backupclient_test

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"io"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/provledger/provledger/api/adminservice/backupclient"
	"github.com/provledger/provledger/api/provledgerpb"
)

// fakeStream replays messages, then err (io.EOF if nil).
type fakeStream struct {
	msgs []*provledgerpb.BackupChunk
	err  error
}

func (f *fakeStream) Recv() (*provledgerpb.BackupChunk, error) {
	if len(f.msgs) == 0 {
		if f.err != nil {
			return nil, f.err
		}
		return nil, io.EOF
	}
	m := f.msgs[0]
	f.msgs = f.msgs[1:]
	return m, nil
}

func info() *provledgerpb.BackupChunk {
	return &provledgerpb.BackupChunk{Part: &provledgerpb.BackupChunk_Info{Info: &provledgerpb.BackupInfo{Size: 3, LogKey: "k"}}}
}

func data(b string) *provledgerpb.BackupChunk {
	return &provledgerpb.BackupChunk{Part: &provledgerpb.BackupChunk_Data{Data: []byte(b)}}
}

func trailer(n uint64, content string) *provledgerpb.BackupChunk {
	sum := sha256.Sum256([]byte(content))
	return &provledgerpb.BackupChunk{Part: &provledgerpb.BackupChunk_Trailer{Trailer: &provledgerpb.BackupTrailer{Bytes: n, Sha256: sum[:]}}}
}

func TestReceive(t *testing.T) {
	unavailable := status.Error(codes.Unavailable, "node stopping")
	for _, tc := range []struct {
		name string
		s    *fakeStream
		want string // data written on success; "" with err set
		err  error
	}{
		{"whole", &fakeStream{msgs: []*provledgerpb.BackupChunk{info(), data("abc"), data("def"), trailer(6, "abcdef")}}, "abcdef", nil},
		{"empty data", &fakeStream{msgs: []*provledgerpb.BackupChunk{info(), trailer(0, "")}}, "", nil},
		{"no info", &fakeStream{msgs: []*provledgerpb.BackupChunk{data("abc"), trailer(3, "abc")}}, "", backupclient.ErrIncomplete},
		{"no trailer", &fakeStream{msgs: []*provledgerpb.BackupChunk{info(), data("abc")}}, "", backupclient.ErrIncomplete},
		{"short count", &fakeStream{msgs: []*provledgerpb.BackupChunk{info(), data("abc"), trailer(4, "abc")}}, "", backupclient.ErrIncomplete},
		{"altered data", &fakeStream{msgs: []*provledgerpb.BackupChunk{info(), data("abd"), trailer(3, "abc")}}, "", backupclient.ErrIncomplete},
		{"second info", &fakeStream{msgs: []*provledgerpb.BackupChunk{info(), info(), trailer(0, "")}}, "", backupclient.ErrIncomplete},
		{"after trailer", &fakeStream{msgs: []*provledgerpb.BackupChunk{info(), trailer(0, ""), data("x")}}, "", backupclient.ErrIncomplete},
		{"empty message", &fakeStream{msgs: []*provledgerpb.BackupChunk{info(), {}}}, "", backupclient.ErrIncomplete},
		{"stream error", &fakeStream{msgs: []*provledgerpb.BackupChunk{info(), data("abc")}, err: unavailable}, "", unavailable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			res, err := backupclient.Receive(tc.s, &buf)
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Fatalf("Receive = %v, want %v", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if buf.String() != tc.want || res.Bytes != uint64(len(tc.want)) || res.Info.GetSize() != 3 {
				t.Fatalf("got %q, %+v", buf.String(), res)
			}
		})
	}
}

// FuzzReceive feeds Receive a stream of messages decoded from arbitrary
// bytes (each message: one length byte, then that many bytes of protobuf).
// It must never panic, and a backup it accepts matches its trailer.
func FuzzReceive(f *testing.F) {
	var seed []byte
	for _, m := range []*provledgerpb.BackupChunk{info(), data("abc"), trailer(3, "abc")} {
		b, _ := proto.Marshal(m)
		seed = append(append(seed, byte(len(b))), b...)
	}
	f.Add(seed)
	f.Fuzz(func(t *testing.T, b []byte) {
		s := &fakeStream{}
		for len(b) > 0 {
			n := min(int(b[0]), len(b)-1)
			m := &provledgerpb.BackupChunk{}
			if err := proto.Unmarshal(b[1:1+n], m); err != nil {
				break
			}
			s.msgs = append(s.msgs, m)
			b = b[1+n:]
		}
		var buf bytes.Buffer
		res, err := backupclient.Receive(s, &buf)
		if err != nil {
			return
		}
		sum := sha256.Sum256(buf.Bytes())
		if res.Bytes != uint64(buf.Len()) || !bytes.Equal(res.SHA256, sum[:]) {
			t.Fatalf("accepted %d bytes, result %+v", buf.Len(), res)
		}
	})
}
