package packet

import (
	"testing"
)

// Packets the benchmarks decode and encode.
var (
	benchPublish311 = &Publish{QoS: 1, PacketID: 42, Topic: "sensors/building-7/floor-3/temperature",
		Payload: []byte(`{"t":21.5,"h":40,"ts":1700000000}`)}
	benchPublish5 = &Publish{QoS: 1, PacketID: 42, Topic: "sensors/building-7/floor-3/temperature",
		Properties: Properties{
			Present:       set(PropMessageExpiry, PropContentType),
			MessageExpiry: 3600, ContentType: "application/json",
			User: []UserProperty{{"site", "lyon"}, {"trace", "4bf92f3577b34da6"}},
		},
		Payload: []byte(`{"t":21.5,"h":40,"ts":1700000000}`)}
	benchConnect = &Connect{ProtocolName: "MQTT", Version: V5, CleanStart: true, KeepAlive: 60,
		Properties: Properties{Present: set(PropSessionExpiry, PropReceiveMaximum), SessionExpiry: 300, ReceiveMaximum: 100},
		ClientID:   "gannet-bench-client-0001", WillFlag: true,
		Will:         Will{Topic: "clients/gannet-bench-client-0001/status", Payload: []byte("offline"), QoS: 1, Retain: true},
		UsernameFlag: true, Username: "bench", PasswordFlag: true, Password: []byte("secret")}
	benchSubscribe = &Subscribe{PacketID: 7, Subscriptions: []Subscription{
		{Filter: "sensors/+/floor-3/#", QoS: 1},
		{Filter: "alerts/building-7", QoS: 2, RetainHandling: 1},
		{Filter: "$share/workers/jobs/+", QoS: 1},
	}}
)

func mustEncode(tb testing.TB, p Packet, level byte) []byte {
	tb.Helper()
	b, err := p.Append(nil, level)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// benchDecode decodes raw over and over from a reused buffer, as a
// connection's read loop does.
func benchDecode(b *testing.B, raw []byte, level byte, reuse bool) {
	buf := make([]byte, len(raw))
	copy(buf, raw)
	d := &Decoder{Version: level, Reuse: reuse}
	b.ReportAllocs()
	b.SetBytes(int64(len(raw)))
	for b.Loop() {
		p, _, err := d.Decode(buf)
		if err != nil || p == nil {
			b.Fatal(err)
		}
	}
}

// benchEncode encodes p over and over into a reused buffer.
func benchEncode(b *testing.B, p Packet, level byte) {
	buf := make([]byte, 0, p.Size(level))
	b.ReportAllocs()
	b.SetBytes(int64(p.Size(level)))
	for b.Loop() {
		var err error
		if buf, err = p.Append(buf[:0], level); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodePublish311(b *testing.B) {
	benchDecode(b, mustEncode(b, benchPublish311, V311), V311, true)
}

func BenchmarkDecodePublish5(b *testing.B) {
	benchDecode(b, mustEncode(b, benchPublish5, V5), V5, true)
}

func BenchmarkEncodePublish311(b *testing.B) { benchEncode(b, benchPublish311, V311) }

func BenchmarkEncodePublish5(b *testing.B) { benchEncode(b, benchPublish5, V5) }

// CONNECT is decoded once per connection: never recycled, it is always a
// fresh value.
func BenchmarkDecodeConnect(b *testing.B) {
	raw := mustEncode(b, benchConnect, V5)
	buf := make([]byte, len(raw))
	copy(buf, raw)
	var d Decoder
	b.ReportAllocs()
	b.SetBytes(int64(len(raw)))
	for b.Loop() {
		d.Version = 0 // a new connection: the level comes from the CONNECT
		if p, _, err := d.Decode(buf); err != nil || p == nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEncodeConnect(b *testing.B) { benchEncode(b, benchConnect, V5) }

func BenchmarkDecodeSubscribe(b *testing.B) {
	benchDecode(b, mustEncode(b, benchSubscribe, V311), V311, true)
}

func BenchmarkEncodeSubscribe(b *testing.B) { benchEncode(b, benchSubscribe, V311) }

// TestPublishZeroAlloc: the PUBLISH hot path allocates nothing: decoding
// with Reuse from a reused buffer, and encoding into a reused buffer.
func TestPublishZeroAlloc(t *testing.T) {
	for _, tc := range []struct {
		level byte
		p     *Publish
	}{{V311, benchPublish311}, {V5, benchPublish5}} {
		raw := mustEncode(t, tc.p, tc.level)
		d := &Decoder{Version: tc.level, Reuse: true}
		decode := func() {
			if p, _, err := d.Decode(raw); err != nil || p == nil {
				t.Fatal(err)
			}
		}
		if n := testing.AllocsPerRun(1000, decode); n != 0 {
			t.Errorf("level %d: decode allocates %v times per PUBLISH", tc.level, n)
		}
		buf := make([]byte, 0, 512)
		encode := func() {
			var err error
			if buf, err = tc.p.Append(buf[:0], tc.level); err != nil {
				t.Fatal(err)
			}
		}
		if n := testing.AllocsPerRun(1000, encode); n != 0 {
			t.Errorf("level %d: encode allocates %v times per PUBLISH", tc.level, n)
		}
		// The acknowledgements of the same hot path.
		ack := mustEncode(t, &Puback{PacketID: 42}, tc.level)
		if n := testing.AllocsPerRun(1000, func() { d.Decode(ack) }); n != 0 {
			t.Errorf("level %d: PUBACK decode allocates %v times", tc.level, n)
		}
		if n := testing.AllocsPerRun(1000, func() { buf, _ = (&Puback{PacketID: 42}).Append(buf[:0], tc.level) }); n != 0 {
			t.Errorf("level %d: PUBACK encode allocates %v times", tc.level, n)
		}
	}
}
