package bench

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"net/url"

	"github.com/coder/websocket"
)

// Transport is how the bench reaches the broker.
type Transport string

// Transports.
const (
	// TCP is MQTT over plain TCP (the default).
	TCP Transport = "tcp"
	// TLS is MQTT over TLS over TCP.
	TLS Transport = "tls"
	// WS is MQTT over WebSocket over TCP.
	WS Transport = "ws"
	// WSS is MQTT over WebSocket over TLS over TCP.
	WSS Transport = "wss"
)

// wsSubprotocol is the WebSocket subprotocol MQTT uses [MQTT-6.0.0-3].
const wsSubprotocol = "mqtt"

// transport returns the configured transport, TCP when unset.
func (c *Config) transport() Transport {
	if c.Transport == "" {
		return TCP
	}
	return c.Transport
}

// brokerName is the broker as the report names it: host:port for plain
// TCP, scheme://host:port[/path] otherwise.
func (c *Config) brokerName() string {
	if c.SubAddr != "" {
		sc := *c
		sc.SubAddr = ""
		o := sc
		o.Addr = c.SubAddr
		return sc.brokerName() + " (subscribers: " + o.brokerName() + ")"
	}
	switch t := c.transport(); t {
	case TCP:
		return c.Addr
	case WS, WSS:
		return string(t) + "://" + c.Addr + c.wsPath()
	default:
		return string(t) + "://" + c.Addr
	}
}

func (c *Config) wsPath() string {
	if c.WSPath == "" {
		return "/mqtt"
	}
	return c.WSPath
}

// tlsConfig returns the TLS configuration of a tls or wss dial, with the
// server name taken from the address when none is set.
func (c *Config) tlsConfig() *tls.Config {
	var tc *tls.Config
	if c.TLSConfig != nil {
		tc = c.TLSConfig.Clone()
	} else {
		tc = &tls.Config{}
	}
	if tc.ServerName == "" && !tc.InsecureSkipVerify {
		if host, _, err := net.SplitHostPort(c.Addr); err == nil {
			tc.ServerName = host
		}
	}
	return tc
}

// dial opens one connection to the broker over the configured transport,
// from d's local address.
func (c *Config) dial(ctx context.Context, d *net.Dialer) (net.Conn, error) {
	switch c.transport() {
	case TLS:
		td := tls.Dialer{NetDialer: d, Config: c.tlsConfig()}
		return td.DialContext(ctx, "tcp", c.Addr)
	case WS, WSS:
		return c.dialWebSocket(ctx, d)
	default:
		return d.DialContext(ctx, "tcp", c.Addr)
	}
}

// dialWebSocket upgrades an HTTP request on a connection from d to a
// WebSocket with the "mqtt" subprotocol and returns it as a byte stream
// of binary messages [MQTT-6.0.0-1].
func (c *Config) dialWebSocket(ctx context.Context, d *net.Dialer) (net.Conn, error) {
	scheme := "ws"
	tr := &http.Transport{DialContext: d.DialContext, DisableKeepAlives: true}
	if c.transport() == WSS {
		scheme = "wss"
		tr.TLSClientConfig = c.tlsConfig()
		tr.DialTLSContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
			td := tls.Dialer{NetDialer: d, Config: tr.TLSClientConfig}
			return td.DialContext(ctx, network, addr)
		}
	}
	u := url.URL{Scheme: scheme, Host: c.Addr, Path: c.wsPath()}
	ws, resp, err := websocket.Dial(ctx, u.String(), &websocket.DialOptions{
		HTTPClient:   &http.Client{Transport: tr},
		Subprotocols: []string{wsSubprotocol},
	})
	if resp != nil && resp.Body != nil {
		resp.Body.Close()
	}
	if err != nil {
		return nil, err
	}
	if p := ws.Subprotocol(); p != wsSubprotocol {
		ws.Close(websocket.StatusProtocolError, "subprotocol mqtt required")
		return nil, fmt.Errorf("the WebSocket server chose subprotocol %q, not %q [MQTT-6.0.0-4]", p, wsSubprotocol)
	}
	// Incoming messages can be as large as an MQTT packet.
	ws.SetReadLimit(-1)
	// The context given to NetConn bounds the connection's whole life;
	// closing the net.Conn ends it.
	return websocket.NetConn(context.Background(), ws, websocket.MessageBinary), nil
}
