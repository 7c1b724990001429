package client

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"net/url"

	"github.com/coder/websocket"
)

// Subprotocol is the WebSocket subprotocol MQTT uses [MQTT-6.0.0-3].
const Subprotocol = "mqtt"

// dialNetwork opens the transport named by u's scheme.
func dialNetwork(ctx context.Context, u *url.URL, o *Options) (net.Conn, error) {
	switch u.Scheme {
	case "mqtt", "tcp":
		var d net.Dialer
		return d.DialContext(ctx, "tcp", u.Host)
	case "mqtts", "ssl", "tls":
		d := tls.Dialer{Config: tlsConfig(u, o)}
		return d.DialContext(ctx, "tcp", u.Host)
	case "ws", "wss":
		return dialWebSocket(ctx, u, o)
	}
	return nil, fmt.Errorf("client: unsupported scheme %q", u.Scheme)
}

// DialServer opens the transport a server URL names (see Options.Server),
// with the TLS settings and WebSocket headers of o, as Connect would: for
// an Options.Dialer that chooses among servers.
func DialServer(ctx context.Context, server string, o *Options) (net.Conn, error) {
	u, err := parseServer(server)
	if err != nil {
		return nil, err
	}
	return dialNetwork(ctx, u, o)
}

func tlsConfig(u *url.URL, o *Options) *tls.Config {
	var cfg *tls.Config
	if o.TLSConfig != nil {
		cfg = o.TLSConfig.Clone()
	} else {
		cfg = &tls.Config{}
	}
	if cfg.ServerName == "" {
		cfg.ServerName = u.Hostname()
	}
	return cfg
}

// dialWebSocket opens a WebSocket with the "mqtt" subprotocol and returns
// it as a byte stream of binary messages [MQTT-6.0.0-1].
func dialWebSocket(ctx context.Context, u *url.URL, o *Options) (net.Conn, error) {
	wsURL := *u
	wsURL.User = nil
	if wsURL.Path == "" {
		wsURL.Path = "/mqtt"
	}
	tr := &http.Transport{Proxy: http.ProxyFromEnvironment}
	if u.Scheme == "wss" {
		tr.TLSClientConfig = tlsConfig(u, o)
	}
	ws, resp, err := websocket.Dial(ctx, wsURL.String(), &websocket.DialOptions{
		HTTPClient:   &http.Client{Transport: tr},
		HTTPHeader:   o.WebSocketHeader,
		Subprotocols: []string{Subprotocol},
	})
	if resp != nil && resp.Body != nil {
		resp.Body.Close()
	}
	if err != nil {
		return nil, err
	}
	if p := ws.Subprotocol(); p != Subprotocol {
		ws.Close(websocket.StatusProtocolError, "subprotocol mqtt required")
		return nil, fmt.Errorf("client: WebSocket server chose subprotocol %q, not %q [MQTT-6.0.0-4]", p, Subprotocol)
	}
	// The context given to NetConn bounds the connection's whole life;
	// closing the net.Conn ends it.
	return websocket.NetConn(context.Background(), ws, websocket.MessageBinary), nil
}

func joinHostPort(host, port string) string { return net.JoinHostPort(host, port) }
