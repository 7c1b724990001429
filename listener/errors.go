package listener

import "errors"

// Errors for connections refused before they reach Accept. They are logged
// (Config.Logger) with the remote address; the connection is closed.
var (
	// ErrProxyHeaderMissing: a trusted proxy (ProxyFrom) connected to a
	// listener with ProxyProtocol on and sent no PROXY header. Usually a
	// proxy that is not configured to send one (HAProxy: send-proxy or
	// send-proxy-v2 on the server line).
	ErrProxyHeaderMissing = errors.New("listener: no PROXY protocol header from a trusted proxy (is the proxy configured to send one?)")
	// ErrProxyUntrusted: a source outside ProxyFrom sent a PROXY header.
	ErrProxyUntrusted = errors.New("listener: PROXY protocol header from a source outside ProxyFrom")
	// ErrProxyHeaderInvalid: a PROXY header that does not follow the
	// specification; the wrapping error says where.
	ErrProxyHeaderInvalid = errors.New("listener: invalid PROXY protocol header")
	// ErrSocketInUse: the unix socket path belongs to a live listener.
	ErrSocketInUse = errors.New("listener: unix socket is in use by another listener")
)

// Reasons for dropping a connection in its handshake; logged at debug
// level, each, and counted in a periodic warning.
var (
	errFirstByte = errors.New("listener: no byte from the client within the first-byte timeout")
	errEvicted   = errors.New("listener: dropped to make room for new connections (handshake slots full, or too many from this source)")
)
