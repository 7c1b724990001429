package packet

import (
	"bytes"
	"testing"
)

// ValidUTF8 checks payloads declared UTF-8: no length limit (unlike a
// UTF-8 Encoded String), well formed [MQTT-1.5.4-1], and U+0000 allowed:
// [MQTT-1.5.4-2] bans it in UTF-8 Encoded Strings only (issue 17.6).
func TestValidUTF8Payload(t *testing.T) {
	if err := ValidUTF8(bytes.Repeat([]byte("é"), 40000)); err != nil {
		t.Errorf("80,000-byte valid payload: %v", err)
	}
	if err := ValidUTF8([]byte("a\x00b")); err != nil {
		t.Errorf("U+0000 in a payload: %v, want it accepted", err)
	}
	if err := ValidString("a\x00b"); err != ErrNullChar {
		t.Errorf("U+0000 in a string: %v, want ErrNullChar [MQTT-1.5.4-2]", err)
	}
	if err := ValidUTF8([]byte{0xc0, 0x80}); err != ErrInvalidUTF8 {
		t.Errorf("overlong U+0000: %v, want ErrInvalidUTF8", err)
	}
	if err := ValidUTF8([]byte{0xed, 0xa0, 0x80}); err != ErrInvalidUTF8 {
		t.Errorf("surrogate: %v, want ErrInvalidUTF8", err)
	}
}
