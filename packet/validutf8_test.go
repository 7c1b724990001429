package packet

import (
	"bytes"
	"testing"
)

// ValidUTF8 checks payloads declared UTF-8: no length limit (unlike a
// UTF-8 Encoded String), but the same well-formedness rules
// [MQTT-1.5.4-1] [MQTT-1.5.4-2].
func TestValidUTF8Payload(t *testing.T) {
	if err := ValidUTF8(bytes.Repeat([]byte("é"), 40000)); err != nil {
		t.Errorf("80,000-byte valid payload: %v", err)
	}
	if err := ValidUTF8([]byte("a\x00b")); err != ErrNullChar {
		t.Errorf("U+0000: %v, want ErrNullChar", err)
	}
	if err := ValidUTF8([]byte{0xed, 0xa0, 0x80}); err != ErrInvalidUTF8 {
		t.Errorf("surrogate: %v, want ErrInvalidUTF8", err)
	}
}
