package broker

import (
	"net"
	"time"
)

// tcpKeepAlive is the TCP keep-alive of a connection whose CONNECT has Keep
// Alive 0: Go's defaults (first probe after 15 s idle, then every 15 s, 9
// unanswered probes), so that a peer that vanished without a FIN is found
// in about 2.5 minutes and its will published.
var tcpKeepAlive = net.KeepAliveConfig{Enable: true, Idle: 15 * time.Second, Interval: 15 * time.Second, Count: 9}

// enableTCPKeepAlive turns TCP keep-alive on for the socket under nc, for
// a client that asked for Keep Alive 0 and so has no MQTT keep-alive to
// find it dead. The listener package opens its sockets without it (cheaper
// accepts); clients with Keep Alive above 0 are timed out by the broker at
// 1.5 times their Keep Alive (3.1.1 [MQTT-3.1.2-24], 5.0 [MQTT-3.1.2-22]).
//
// It sees through the connections that wrap a socket and tell it with a
// NetConn method: TLS (*tls.Conn), the PROXY protocol and WebSocket
// wrappers of the listener package. A connection over a Unix socket, or
// one whose wrapper hides its socket, is left as it is.
func enableTCPKeepAlive(nc net.Conn) {
	for range 4 { // TLS over PROXY over the first-byte peek, WebSocket over TLS
		switch c := nc.(type) {
		case *net.TCPConn:
			c.SetKeepAliveConfig(tcpKeepAlive)
			return
		case interface{ NetConn() net.Conn }:
			nc = c.NetConn()
		default:
			return
		}
	}
}
