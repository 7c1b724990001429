// Package listener opens the sockets Gannet serves MQTT on and hands the
// broker net.Conns that carry the raw MQTT byte stream. It never imports
// the broker: a *Listener is a net.Listener, given to
// (*broker.Server).Serve.
//
// The core types:
//
//   - Config describes one listener: Name, Type (tcp, tls, ws, wss, unix),
//     Address, TLS settings, WebSocket Path, PROXY protocol and trusted
//     proxies. DefaultConfig spells out the defaults; Validate reports
//     every invalid field at once, as *FieldError values joined with
//     errors.Join.
//   - Listener, from Listen(cfg), implements net.Listener and adds Name,
//     Type and Reload (re-read TLS certificate, key, CA and CRL files).
//   - PeerIdentity(conn) returns the common name and subject alternative
//     names of a verified client certificate, for use as a username.
//
// Use:
//
//	l, err := listener.Listen(listener.Config{
//		Type:    listener.TypeTLS,
//		Address: ":8883",
//		TLS: listener.TLSConfig{
//			CertFile: "server.crt", KeyFile: "server.key",
//			CAFile: "clients-ca.crt", ClientAuth: listener.ClientAuthRequired,
//		},
//	})
//	if err != nil { ... }
//	go srv.Serve(l)
//	// on SIGHUP: l.Reload()
//
// # What Accept returns
//
//   - tcp: *net.TCPConn; with ProxyProtocol, a wrapper whose RemoteAddr and
//     LocalAddr come from the PROXY header.
//   - tls: *tls.Conn, handshake complete.
//   - ws, wss: a conn over a coder/websocket WebSocket. Each Write is one
//     binary message; Read returns the bytes of binary messages as one
//     stream, so packets may span or share frames [MQTT-6.0.0-2]; a text
//     message closes the WebSocket with status 1003 and fails the read
//     [MQTT-6.0.0-1]. The server selects the subprotocol "mqtt" whenever
//     the client offers it [MQTT-6.0.0-4] ("mqttv3.1" otherwise); a client
//     that offers neither gets 400 [MQTT-6.0.0-3]. RemoteAddr is the HTTP
//     client's address, or the one in X-Forwarded-For when the peer is in
//     ProxyFrom (with port 0).
//   - unix: *net.UnixConn.
//
// # Where handshakes happen
//
// Listeners with TLS or ProxyProtocol run every new connection's PROXY
// header and TLS handshake on a goroutine of its own, under one deadline of
// HandshakeTimeout (default 10s), and Accept returns only connections that
// finished. So a silent or slow client never holds up Accept or other
// clients, and RemoteAddr and PeerIdentity are final when Accept returns.
// The first byte must come within FirstByteTimeout (default 3s). At most
// 1024 connections per listener are in this phase (or finished and waiting
// for Accept), and at most MaxPendingPerSource (default 64) from one source
// address, trusted proxies excepted: past either, the oldest connection
// still in its handshake (of that source) is dropped, so silent sockets
// cannot stop the listener from accepting. Only when every slot holds a
// finished connection that Accept has not taken do new clients wait in the
// kernel backlog. ws and wss run a net/http server on
// the readied connections; the upgrade request is bounded by
// HandshakeTimeout too. Connections that fail are closed and logged to
// Config.Logger with their peer address; they never reach Accept.
//
// # PROXY protocol
//
// Versions 1 and 2 are parsed after HAProxy's specification
// (proxy-protocol.txt). With ProxyProtocol on, a connection from a source
// in ProxyFrom must start with a header (else ErrProxyHeaderMissing), a
// header from any other source closes the connection (ErrProxyUntrusted),
// and such a source may connect without one. A header that breaks the
// specification is ErrProxyHeaderInvalid. v1 UNKNOWN, v2 LOCAL and v2
// families other than TCP and UNIX stream keep the connection's own
// addresses. A v2 CRC32C TLV is verified. A v2 SSL TLV in which a
// TLS-terminating proxy says it verified the client certificate gives
// PeerIdentity that certificate's common name.
//
// # Caveats
//
//   - Close stops accepting and aborts pending handshakes; connections
//     already returned by Accept stay open (the broker closes them).
//   - Reload changes what later handshakes use; established connections
//     keep their certificates. It also replaces the TLS session ticket
//     keys, so sessions from before it are not resumed. Keys are not
//     rotated otherwise. On error the previous files stay in use.
//   - Config.Validate does not read files; Listen reports unreadable or
//     invalid certificate files.
//   - WebSocket conns: Close returns at once and runs the close handshake
//     in the background, closing the transport after 1s at the latest. A
//     read deadline behaves as on TCP (a timeout error, the connection
//     stays usable); a write deadline that passes during a Write closes
//     the WebSocket (coder/websocket's NetConn). Each conn has one extra
//     goroutine reading ahead into a 4 KiB buffer.
//   - wss negotiates HTTP/1.1 only (ALPN "http/1.1"); WebSocket over
//     HTTP/2 is not served. Browser pages from other origins need
//     OriginPatterns; do not allow every origin together with client
//     certificates, which a browser sends for any page.
//   - unix: a socket file left by a listener that has gone is removed at
//     start; a live one is ErrSocketInUse and a non-socket file is never
//     removed. The mode (default 0660) is set right after bind, so run with
//     a umask at least as strict to leave no window. "@name" is an abstract
//     socket (Linux) without file.
//   - Code that wraps the returned conns should give its wrapper a
//     NetConn() net.Conn method, for PeerIdentity to see through it.
package listener
