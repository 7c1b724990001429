package bridge

import (
	"context"
	"errors"
	"net"
	"sync"
)

// pipeListener is an in-process net.Listener: the bridges' local clients
// reach the broker through it, over net.Pipe, without a socket.
type pipeListener struct {
	conns chan net.Conn
	once  sync.Once
	done  chan struct{}
}

func newPipeListener() *pipeListener {
	return &pipeListener{conns: make(chan net.Conn), done: make(chan struct{})}
}

func (l *pipeListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *pipeListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *pipeListener) Addr() net.Addr { return pipeAddr{} }

// dial hands the broker one end of a new pipe and returns the other.
func (l *pipeListener) dial(ctx context.Context) (net.Conn, error) {
	server, cl := net.Pipe()
	select {
	case l.conns <- server:
		return cl, nil
	case <-l.done:
		return nil, errors.New("bridge: the local broker is closed")
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

type pipeAddr struct{}

func (pipeAddr) Network() string { return "pipe" }
func (pipeAddr) String() string  { return "bridge" }
