package listener

import "testing"

// Path AnyPath upgrades every path, as a Mosquitto websockets listener
// does: a mosquitto.conf translates to it.
func TestWebSocketAnyPath(t *testing.T) {
	l, _ := listen(t, Config{Type: TypeWS, Path: AnyPath})
	a := accepting(t, l)
	for _, p := range []string{"/", "/mqtt", "/ws/anything"} {
		c, _, _, err := wsConnect(t, l, wsDial{path: p})
		if err != nil {
			t.Fatalf("path %s: %v", p, err)
		}
		wsExchange(t, c, a.next(t))
	}
	if err := (&Config{Type: TypeWS, Address: "127.0.0.1:0", Path: AnyPath}).Validate(); err != nil {
		t.Errorf("Path %q refused: %v", AnyPath, err)
	}
}
