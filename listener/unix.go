package listener

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"strings"
	"syscall"
	"time"
)

// listenUnix listens on a Unix stream socket at path with the given file
// mode. A socket file left by a listener that is gone is removed first; a
// live one (a connection to it succeeds) is ErrSocketInUse, and a path that
// is not a socket is never removed. A path starting with "@" is a Linux
// abstract socket: there is no file to remove or chmod.
//
// The mode is set right after bind, so for a moment the socket has the mode
// the process umask gives; run with umask 007 or stricter to close that gap.
func listenUnix(path string, mode fs.FileMode) (net.Listener, error) {
	abstract := strings.HasPrefix(path, "@")
	if !abstract {
		if err := removeStaleSocket(path); err != nil {
			return nil, err
		}
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, err
	}
	if abstract {
		return ln, nil
	}
	// Close removes the file (the default for sockets made by Listen;
	// set here so it does not depend on that default).
	ln.(*net.UnixListener).SetUnlinkOnClose(true)
	if err := os.Chmod(path, mode); err != nil {
		ln.Close()
		return nil, fmt.Errorf("listener: socket mode: %w", err)
	}
	return ln, nil
}

// removeStaleSocket removes the socket file at path if no one listens on it.
func removeStaleSocket(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("listener: socket path: %w", err)
	}
	if fi.Mode().Type() != fs.ModeSocket {
		return fmt.Errorf("listener: %s exists and is not a socket (%v); not removing it", path, fi.Mode().Type())
	}
	c, err := net.DialTimeout("unix", path, time.Second)
	if err == nil {
		c.Close()
		return fmt.Errorf("%w: %s", ErrSocketInUse, path)
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		return fmt.Errorf("listener: checking whether socket %s is stale: %w", path, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("listener: removing stale socket: %w", err)
	}
	return nil
}
