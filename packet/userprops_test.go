package packet

import (
	"bytes"
	"errors"
	"runtime"
	"testing"
)

// publishWithUserProps returns a 5.0 PUBLISH with n empty User Properties:
// 5 bytes each on the wire.
func publishWithUserProps(n int) []byte {
	var ps bytes.Buffer
	for range n {
		ps.Write([]byte{byte(PropUser), 0, 0, 0, 0})
	}
	return pkt(0x30, str("t"), props(ps.Bytes()), []byte("x"))
}

// decodedBytes returns the bytes allocated while decoding b.
func decodedBytes(d *Decoder, b []byte) (uint64, error) {
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	_, _, err := d.Decode(b)
	runtime.ReadMemStats(&m1)
	return m1.TotalAlloc - m0.TotalAlloc, err
}

// A packet of empty User Properties cannot make the decoder allocate many
// times its size (issue 16, point 3): past MaxUserProperties it fails
// with ErrTooManyUserProperties (reason 0x97), having allocated for at
// most that many.
func TestMaxUserProperties(t *testing.T) {
	b := publishWithUserProps(200_000) // about 1 MB
	d := &Decoder{Version: V5, MaxUserProperties: 1000, Reuse: true}
	n, err := decodedBytes(d, b)
	if !errors.Is(err, ErrTooManyUserProperties) {
		t.Fatalf("Decode: %v, want ErrTooManyUserProperties", err)
	}
	var pe *Error
	if !errors.As(err, &pe) || pe.Code != QuotaExceeded {
		t.Errorf("error %v does not carry reason 0x97", err)
	}
	if n > 256<<10 {
		t.Errorf("decoding %d bytes allocated %d bytes before refusing", len(b), n)
	}
	t.Logf("%d-byte PUBLISH of empty user properties: %d bytes allocated with MaxUserProperties %d", len(b), n, d.MaxUserProperties)

	ok := publishWithUserProps(1000)
	if p, _, err := d.Decode(ok); err != nil || len(p.(*Publish).Properties.User) != 1000 {
		t.Fatalf("1000 user properties: %v", err)
	}
	unlimited := &Decoder{Version: V5, Reuse: true}
	n, err = decodedBytes(unlimited, b)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("without a cap: %d bytes allocated", n)
}
