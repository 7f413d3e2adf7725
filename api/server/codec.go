package server

import (
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// undecodableField is the protobuf field number (the largest valid one)
// under which requestCodec records why a request did not decode.
const undecodableField = protowire.MaxValidNumber

// requestCodec is the server's protobuf codec. A request whose bytes are
// not the method's message is the caller's mistake, but grpc-go reports a
// codec failure as Internal, before any interceptor runs. So when a
// request does not decode, requestCodec hands over an empty message that
// carries the decode error as an unknown field instead, and the
// interceptors (checkDecoded) answer InvalidArgument saying which message
// did not decode and why; the handler never sees it.
type requestCodec struct{ encoding.CodecV2 }

func newRequestCodec() requestCodec { return requestCodec{encoding.GetCodecV2("proto")} }

// Unmarshal implements encoding.CodecV2.
func (c requestCodec) Unmarshal(data mem.BufferSlice, v any) error {
	err := c.CodecV2.Unmarshal(data, v)
	if err == nil {
		return nil
	}
	m, ok := v.(proto.Message)
	if !ok {
		return err
	}
	proto.Reset(m)
	b := protowire.AppendTag(nil, undecodableField, protowire.BytesType)
	m.ProtoReflect().SetUnknown(protowire.AppendString(b, err.Error()))
	return nil
}

// undecodable returns the decode error requestCodec recorded in m, if any.
func undecodable(m any) (string, bool) {
	pm, ok := m.(proto.Message)
	if !ok {
		return "", false
	}
	u := pm.ProtoReflect().GetUnknown()
	for len(u) > 0 {
		num, typ, n := protowire.ConsumeTag(u)
		if n < 0 {
			return "", false
		}
		u = u[n:]
		if num == undecodableField && typ == protowire.BytesType {
			s, n := protowire.ConsumeString(u)
			return s, n >= 0
		}
		n = protowire.ConsumeFieldValue(num, typ, u)
		if n < 0 {
			return "", false
		}
		u = u[n:]
	}
	return "", false
}
