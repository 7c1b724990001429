package listener

import (
	"context"
	"net"
)

// listenTCP opens a TCP socket whose accepted connections do not have TCP
// keep-alive turned on. Go's default would set it on every accept (four
// setsockopt calls, a measurable share of the broker's CPU in a connect
// storm), while MQTT's own keep-alive already finds dead peers for clients
// with a Keep Alive above 0 [MQTT-3.1.2-24]. The broker turns TCP
// keep-alive on after CONNECT for the clients that asked for Keep Alive 0
// (broker/tcpkeepalive.go).
func listenTCP(address string) (net.Listener, error) {
	lc := net.ListenConfig{KeepAlive: -1}
	return lc.Listen(context.Background(), "tcp", address)
}
