package packet

import (
	"encoding/binary"
	"slices"
	"unicode/utf8"
	"unsafe"
)

// MaxRemainingLength is the largest Remaining Length a variable byte integer holds.
const MaxRemainingLength = 268435455

// maxPacketSize is the largest packet the protocol can express: one type byte,
// four length bytes and the largest Remaining Length.
const maxPacketSize = 1 + 4 + MaxRemainingLength

// varintLen returns how many bytes v takes as a variable byte integer.
func varintLen(v int) int {
	switch {
	case v < 128:
		return 1
	case v < 16384:
		return 2
	case v < 2097152:
		return 3
	default:
		return 4
	}
}

func appendVarint(dst []byte, v int) []byte {
	for {
		b := byte(v & 0x7f)
		v >>= 7
		if v == 0 {
			return append(dst, b)
		}
		dst = append(dst, b|0x80)
	}
}

// readVarint decodes a variable byte integer from b. It returns the value and
// its length; a length of 0 means b ends before the integer does.
func readVarint(b []byte) (v int, n int, err error) {
	mult := 0
	for n < len(b) {
		c := b[n]
		n++
		v |= int(c&0x7f) << mult
		if c&0x80 == 0 {
			if n > 1 && c == 0 { // [MQTT-1.5.5-1]
				return 0, 0, ErrVarintNotMinimal
			}
			return v, n, nil
		}
		if n == 4 {
			return 0, 0, ErrVarintTooLong
		}
		mult += 7
	}
	return 0, 0, nil
}

// reader walks the body of one packet. Decoded strings and slices alias buf.
type reader struct {
	buf     []byte
	off     int
	maxUser int // Decoder.MaxUserProperties
}

func (r *reader) left() int { return len(r.buf) - r.off }

func (r *reader) byte() (byte, error) {
	if r.off >= len(r.buf) {
		return 0, ErrShort
	}
	b := r.buf[r.off]
	r.off++
	return b, nil
}

func (r *reader) uint16() (uint16, error) {
	if r.left() < 2 {
		return 0, ErrShort
	}
	v := binary.BigEndian.Uint16(r.buf[r.off:])
	r.off += 2
	return v, nil
}

func (r *reader) uint32() (uint32, error) {
	if r.left() < 4 {
		return 0, ErrShort
	}
	v := binary.BigEndian.Uint32(r.buf[r.off:])
	r.off += 4
	return v, nil
}

func (r *reader) varint() (int, error) {
	v, n, err := readVarint(r.buf[r.off:])
	if err != nil {
		return 0, err
	}
	if n == 0 {
		return 0, ErrShort
	}
	r.off += n
	return v, nil
}

// binary reads two-byte-length-prefixed binary data.
func (r *reader) binary() ([]byte, error) {
	l, err := r.uint16()
	if err != nil {
		return nil, err
	}
	if r.left() < int(l) {
		return nil, ErrShort
	}
	b := r.buf[r.off : r.off+int(l) : r.off+int(l)]
	r.off += int(l)
	return b, nil
}

// string reads a UTF-8 Encoded String and checks it is well formed.
func (r *reader) string() (string, error) {
	b, err := r.binary()
	if err != nil {
		return "", err
	}
	if err := validUTF8(b); err != nil {
		return "", err
	}
	return aliasString(b), nil
}

// aliasString returns a string sharing b's memory. The caller guarantees b is
// not modified while the string is in use (see Decoder.Reuse).
func aliasString(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}

// validUTF8 checks a UTF-8 Encoded String: well formed, no surrogates
// [MQTT-1.5.3-1] [MQTT-1.5.4-1], no U+0000 [MQTT-1.5.3-2] [MQTT-1.5.4-2].
// A BOM (EF BB BF) is kept as it is [MQTT-1.5.3-3] [MQTT-1.5.4-3].
func validUTF8(b []byte) error {
	for i := 0; i < len(b); i++ {
		c := b[i]
		if c == 0 {
			return ErrNullChar
		}
		if c >= utf8.RuneSelf {
			// utf8.Valid rejects surrogate code points and overlong forms.
			if !utf8.Valid(b[i:]) {
				return ErrInvalidUTF8
			}
			for _, c := range b[i:] {
				if c == 0 {
					return ErrNullChar
				}
			}
			return nil
		}
	}
	return nil
}

// ValidUTF8 checks a payload that declares itself UTF-8 (Payload Format
// Indicator 1): well-formed UTF-8 as Unicode and RFC 3629 define it, so no
// surrogates and no overlong forms (5.0 section 3.3.2.3.2). U+0000 is
// allowed: its ban is for UTF-8 Encoded Strings [MQTT-1.5.4-2], not for
// Character Data.
func ValidUTF8(b []byte) error {
	if !utf8.Valid(b) {
		return ErrInvalidUTF8
	}
	return nil
}

// ValidString reports whether s is a valid UTF-8 Encoded String.
func ValidString(s string) error {
	if len(s) > 65535 {
		return ErrStringTooLong
	}
	return validUTF8(unsafe.Slice(unsafe.StringData(s), len(s)))
}

func appendUint16(dst []byte, v uint16) []byte { return append(dst, byte(v>>8), byte(v)) }

func appendUint32(dst []byte, v uint32) []byte {
	return append(dst, byte(v>>24), byte(v>>16), byte(v>>8), byte(v))
}

func appendString(dst []byte, s string) []byte {
	dst = appendUint16(dst, uint16(len(s)))
	return append(dst, s...)
}

func appendBinary(dst []byte, b []byte) []byte {
	dst = appendUint16(dst, uint16(len(b)))
	return append(dst, b...)
}

// appendHeader appends the fixed header of a packet with the given body length.
func appendHeader(dst []byte, first byte, remaining int) ([]byte, error) {
	if remaining > MaxRemainingLength {
		return dst, ErrRemainingTooLong
	}
	dst = append(dst, first)
	return appendVarint(dst, remaining), nil
}

// headerSize returns the size of a whole packet whose body is remaining bytes.
func headerSize(remaining int) int { return 1 + varintLen(remaining) + remaining }

// growFor makes room in a full list for every element that can still
// follow, when left bytes of input remain and each element takes at least
// min of them. Growing once to that bound, rather than letting append grow
// step by step (whose discarded arrays add up to several times the last
// one), keeps the memory a decoded packet costs within a fixed multiple of
// the packet's size, and so of the decoder's MaxSize.
func growFor[T any](s []T, left, min int) []T {
	if len(s) < cap(s) {
		return s
	}
	return slices.Grow(s, left/min+1)
}
