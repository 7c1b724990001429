package listener

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"

	"github.com/coder/websocket"
)

// wsSubprotocols are the WebSocket subprotocols accepted, in order of
// preference: Accept selects the first one the client offers, so "mqtt"
// whenever it is offered [MQTT-6.0.0-4]; "mqttv3.1" is the name some 3.1
// clients offer.
var wsSubprotocols = []string{"mqtt", "mqttv3.1"}

// transportKey keys the connection below an HTTP request in its context.
type transportKey struct{}

// wsServer runs an HTTP server on a listener's socket, upgrades requests
// for Config.Path to WebSockets and hands them to Accept as wsConns.
type wsServer struct {
	l      *Listener
	srv    *http.Server
	ready  chan net.Conn // upgraded conns waiting for Accept
	done   chan struct{} // closed by close
	served chan struct{} // closed when Serve has returned
	err    error         // Serve's error; read after served is closed

	closeOnce sync.Once
}

// startWS serves HTTP on next, the socket or the stage that has done the
// PROXY header and the TLS handshake.
func startWS(l *Listener, next net.Listener) *wsServer {
	w := &wsServer{
		l:      l,
		ready:  make(chan net.Conn),
		done:   make(chan struct{}),
		served: make(chan struct{}),
	}
	w.srv = &http.Server{
		Handler: w,
		// The upgrade request; deadlines are lifted when the WebSocket
		// takes the connection over (http.Hijacker).
		ReadHeaderTimeout: l.cfg.HandshakeTimeout,
		WriteTimeout:      l.cfg.HandshakeTimeout,
		IdleTimeout:       l.cfg.HandshakeTimeout,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slog.NewLogLogger(l.log.Handler(), slog.LevelDebug),
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			return context.WithValue(ctx, transportKey{}, c)
		},
	}
	go func() {
		w.err = w.srv.Serve(next)
		close(w.served)
	}()
	return w
}

// accept returns the next upgraded connection.
func (w *wsServer) accept() (net.Conn, error) {
	select {
	case <-w.done:
		return nil, net.ErrClosed
	default:
	}
	select {
	case c := <-w.ready:
		return c, nil
	case <-w.done:
		return nil, net.ErrClosed
	case <-w.served:
		return nil, w.err
	}
}

// close stops the HTTP server: its socket and the connections not yet
// upgraded. Upgraded connections belong to whoever accepted them.
func (w *wsServer) close() error {
	var err error
	w.closeOnce.Do(func() {
		close(w.done)
		err = w.srv.Close()
		<-w.served
	})
	return err
}

// ServeHTTP upgrades a request to an MQTT WebSocket.
func (w *wsServer) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	cfg := &w.l.cfg
	if r.URL.Path != cfg.Path && cfg.Path != AnyPath {
		http.NotFound(rw, r)
		return
	}
	raw, _ := r.Context().Value(transportKey{}).(net.Conn)
	if raw == nil {
		http.Error(rw, "listener: no transport", http.StatusInternalServerError)
		return
	}
	// The client must offer "mqtt" [MQTT-6.0.0-3]; refuse the upgrade
	// rather than accept a WebSocket without a subprotocol that no MQTT
	// client would take.
	if !offersSubprotocol(r, wsSubprotocols) {
		w.l.log.Info("WebSocket upgrade refused: no mqtt subprotocol offered", "remote", r.RemoteAddr, "offered", r.Header.Values("Sec-WebSocket-Protocol"))
		http.Error(rw, "listener: MQTT over WebSocket needs the subprotocol \"mqtt\"", http.StatusBadRequest)
		return
	}
	remote := w.remoteAddr(r, raw)
	ws, err := websocket.Accept(rw, r, &websocket.AcceptOptions{
		Subprotocols:   wsSubprotocols, // [MQTT-6.0.0-4]
		OriginPatterns: cfg.OriginPatterns,
	})
	if err != nil { // Accept has answered the request
		w.l.log.Info("WebSocket upgrade refused", "remote", remote, "error", err)
		return
	}
	// Binary messages only [MQTT-6.0.0-1], read as one stream
	// [MQTT-6.0.0-2]. The context bounds the conn's life: it ends with the
	// conn, not with the request or the listener.
	c := newWSConn(ws, raw, remote)
	select {
	case w.ready <- c:
	case <-w.done:
		c.Close()
	}
}

// offersSubprotocol reports whether the request offers one of names.
func offersSubprotocol(r *http.Request, names []string) bool {
	for _, h := range r.Header.Values("Sec-WebSocket-Protocol") {
		for tok := range strings.SplitSeq(h, ",") {
			tok = strings.TrimSpace(tok)
			for _, n := range names {
				if strings.EqualFold(tok, n) {
					return true
				}
			}
		}
	}
	return false
}

// remoteAddr is the address of the HTTP client: the transport's peer (the
// PROXY header's source, if any), or, when that peer is a trusted proxy
// (ProxyFrom), the address it names in X-Forwarded-For. The header is
// walked from its right end, the entry the nearest proxy added, and each
// entry is believed only while the one after it is trusted, so a client
// cannot spoof its address by sending the header itself.
func (w *wsServer) remoteAddr(r *http.Request, raw net.Conn) net.Addr {
	peer := raw.RemoteAddr()
	from := w.l.cfg.ProxyFrom
	xff := r.Header.Values("X-Forwarded-For")
	if len(from) == 0 || len(xff) == 0 || !trusted(peer, from) {
		return peer
	}
	var hops []string
	for _, h := range xff {
		for tok := range strings.SplitSeq(h, ",") {
			hops = append(hops, strings.TrimSpace(tok))
		}
	}
	var client netip.Addr
	for i := len(hops) - 1; i >= 0; i-- {
		a, ok := parseForwardedAddr(hops[i])
		if !ok {
			break
		}
		client = a
		if !trustedIP(a, from) {
			break
		}
	}
	if !client.IsValid() {
		return peer
	}
	return net.TCPAddrFromAddrPort(netip.AddrPortFrom(client, 0))
}

// parseForwardedAddr parses an X-Forwarded-For entry: an IP address,
// possibly with a port.
func parseForwardedAddr(s string) (netip.Addr, bool) {
	if a, err := netip.ParseAddr(s); err == nil && a.Zone() == "" {
		return a.Unmap(), true
	}
	if ap, err := netip.ParseAddrPort(s); err == nil && ap.Addr().Zone() == "" {
		return ap.Addr().Unmap(), true
	}
	return netip.Addr{}, false
}

func trustedIP(a netip.Addr, prefixes []netip.Prefix) bool {
	for _, p := range prefixes {
		if p.Contains(a) {
			return true
		}
	}
	return false
}
