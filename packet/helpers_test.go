package packet

import (
	"encoding/hex"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
)

// hx parses hexadecimal bytes written with spaces between them: hx("30 05 00").
func hx(s string) []byte {
	b, err := hex.DecodeString(strings.Join(strings.Fields(s), ""))
	if err != nil {
		panic("hx: " + err.Error())
	}
	return b
}

// cat concatenates byte slices.
func cat(parts ...[]byte) []byte {
	var b []byte
	for _, p := range parts {
		b = append(b, p...)
	}
	return b
}

// str returns s as a UTF-8 Encoded String (or Binary Data): two-byte length, bytes.
func str(s string) []byte {
	return append([]byte{byte(len(s) >> 8), byte(len(s))}, s...)
}

func u16(v uint16) []byte { return []byte{byte(v >> 8), byte(v)} }

func u32(v uint32) []byte { return []byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)} }

// vbi encodes a Variable Byte Integer the way 5.0 section 1.5.5 prints it,
// independently of the codec's appendVarint.
func vbi(x int) []byte {
	var b []byte
	for {
		enc := byte(x % 128)
		x /= 128
		if x > 0 {
			enc |= 128
		}
		b = append(b, enc)
		if x == 0 {
			return b
		}
	}
}

// pkt builds a packet from its first byte and body; the Remaining Length is
// computed.
func pkt(first byte, body ...[]byte) []byte {
	bd := cat(body...)
	return cat([]byte{first}, vbi(len(bd)), bd)
}

// props builds a property block: Property Length, then the properties.
func props(parts ...[]byte) []byte {
	bd := cat(parts...)
	return cat(vbi(len(bd)), bd)
}

// prop builds one property: identifier then value bytes.
func prop(id PropID, value ...[]byte) []byte { return cat(append([][]byte{{byte(id)}}, value...)...) }

// userProp builds a User Property.
func userProp(k, v string) []byte { return cat([]byte{byte(PropUser)}, str(k), str(v)) }

// set returns the PropSet holding ids.
func set(ids ...PropID) PropSet {
	var s PropSet
	for _, id := range ids {
		s.Add(id)
	}
	return s
}

// deepEqual compares two values like reflect.DeepEqual, except that a nil
// slice and an empty one are equal (decoding yields either, depending on
// Reuse and on whether a field was present but empty).
func deepEqual(a, b any) bool { return equalValues(reflect.ValueOf(a), reflect.ValueOf(b)) }

func equalValues(a, b reflect.Value) bool {
	if a.IsValid() != b.IsValid() {
		return false
	}
	if !a.IsValid() {
		return true
	}
	if a.Type() != b.Type() {
		return false
	}
	switch a.Kind() {
	case reflect.Pointer, reflect.Interface:
		if a.IsNil() || b.IsNil() {
			return a.IsNil() == b.IsNil()
		}
		return equalValues(a.Elem(), b.Elem())
	case reflect.Struct:
		for i := range a.NumField() {
			if !equalValues(a.Field(i), b.Field(i)) {
				return false
			}
		}
		return true
	case reflect.Slice, reflect.Array:
		if a.Len() != b.Len() {
			return false
		}
		for i := range a.Len() {
			if !equalValues(a.Index(i), b.Index(i)) {
				return false
			}
		}
		return true
	case reflect.String:
		return a.String() == b.String()
	case reflect.Bool:
		return a.Bool() == b.Bool()
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return a.Uint() == b.Uint()
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return a.Int() == b.Int()
	}
	panic("deepEqual: unhandled kind " + a.Kind().String())
}

// show formats a packet for failure messages.
func show(p any) string {
	if p == nil {
		return "<nil>"
	}
	return fmt.Sprintf("%T%+v", p, reflect.Indirect(reflect.ValueOf(p)).Interface())
}

// clonePacket deep-copies a decoded packet so that it survives the next
// Decode call of a Reuse decoder and changes to the input buffer.
func clonePacket(p Packet) Packet {
	if p == nil {
		return nil
	}
	v := reflect.ValueOf(p).Elem()
	c := reflect.New(v.Type())
	deepCopy(c.Elem(), v)
	return c.Interface().(Packet)
}

func deepCopy(dst, src reflect.Value) {
	switch src.Kind() {
	case reflect.Struct:
		for i := range src.NumField() {
			deepCopy(dst.Field(i), src.Field(i))
		}
	case reflect.Slice:
		if src.IsNil() {
			return
		}
		s := reflect.MakeSlice(src.Type(), src.Len(), src.Len())
		for i := range src.Len() {
			deepCopy(s.Index(i), src.Index(i))
		}
		dst.Set(s)
	case reflect.String:
		dst.SetString(strings.Clone(src.String()))
	default:
		dst.Set(src)
	}
}

// errCode returns the reason code of a codec *Error, or 0xff if err is not one.
func errCode(err error) ReasonCode {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return 0xff
}

// effectiveVersion is the level a packet decoded by a decoder whose Version
// was ver before the call was decoded at, and must be encoded at.
func effectiveVersion(p Packet, ver byte) byte {
	switch p := p.(type) {
	case *Connect:
		return p.Version
	case *Connack:
		if ver == 0 {
			return V311
		}
	}
	return ver
}

// decodeAll decodes every complete packet at the front of buf, cloning
// each. It stops at the first error or incomplete packet and returns the
// error and the number of bytes used.
func decodeAll(d *Decoder, buf []byte) (pkts []Packet, vers []byte, used int, err error) {
	for {
		ver := d.Version
		p, n, err := d.Decode(buf[used:])
		if err != nil || p == nil {
			return pkts, vers, used, err
		}
		pkts = append(pkts, clonePacket(p))
		vers = append(vers, effectiveVersion(p, ver))
		used += n
	}
}

// encodeOrFail encodes p at version and checks that Size agrees.
func encodeOrFail(t testing.TB, p Packet, version byte) []byte {
	t.Helper()
	b, err := p.Append(nil, version)
	if err != nil {
		t.Fatalf("encode %s at level %d: %v", show(p), version, err)
	}
	if s := p.Size(version); s != len(b) {
		t.Fatalf("encode %s at level %d: Size %d, encoded %d bytes", show(p), version, s, len(b))
	}
	return b
}
