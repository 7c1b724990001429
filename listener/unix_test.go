package listener

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"
)

func TestUnixSocket(t *testing.T) {
	path := filepath.Join(t.TempDir(), "gannet.sock")
	l, _ := listen(t, Config{Type: TypeUnix, Address: path})
	a := accepting(t, l)

	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Type() != fs.ModeSocket || fi.Mode().Perm() != 0o660 {
		t.Errorf("socket file mode %v, want socket 0660", fi.Mode())
	}
	c := dial(t, "unix", path)
	sc := a.next(t)
	if sc.RemoteAddr() == nil {
		t.Error("RemoteAddr is nil")
	}
	roundTrip(t, c, sc)

	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("socket file after Close: %v", err)
	}
	roundTrip(t, c, sc) // accepted connections outlive the listener
}

func TestUnixSocketMode(t *testing.T) {
	path := filepath.Join(t.TempDir(), "gannet.sock")
	listen(t, Config{Type: TypeUnix, Address: path, SocketMode: 0o600})
	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", fi.Mode().Perm())
	}
}

// A socket file left behind by a listener that is gone is replaced.
func TestUnixStaleSocket(t *testing.T) {
	path := filepath.Join(t.TempDir(), "gannet.sock")
	old, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	old.SetUnlinkOnClose(false)
	old.Close()
	if _, err := os.Lstat(path); err != nil {
		t.Fatalf("no stale file to test with: %v", err)
	}
	l, _ := listen(t, Config{Type: TypeUnix, Address: path})
	a := accepting(t, l)
	roundTrip(t, dial(t, "unix", path), a.next(t))
}

// A live socket is not taken over, and a file that is not a socket is not
// removed.
func TestUnixSocketNotRemoved(t *testing.T) {
	dir := t.TempDir()
	live := filepath.Join(dir, "live.sock")
	l, _ := listen(t, Config{Type: TypeUnix, Address: live})
	accepting(t, l)
	if _, err := Listen(Config{Type: TypeUnix, Address: live}); !errors.Is(err, ErrSocketInUse) {
		t.Errorf("Listen on a live socket: %v, want ErrSocketInUse", err)
	}

	file := filepath.Join(dir, "data")
	writeFile(t, file, []byte("keep me"))
	if _, err := Listen(Config{Type: TypeUnix, Address: file}); err == nil {
		t.Fatal("Listen on a regular file succeeded")
	}
	if b, err := os.ReadFile(file); err != nil || string(b) != "keep me" {
		t.Errorf("regular file after Listen: %q %v", b, err)
	}
}

func TestUnixAbstractSocket(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("abstract sockets are a Linux feature")
	}
	name := fmt.Sprintf("@gannet-test-%d-%d", os.Getpid(), time.Now().UnixNano())
	l, _ := listen(t, Config{Type: TypeUnix, Address: name})
	a := accepting(t, l)
	roundTrip(t, dial(t, "unix", name), a.next(t))
}
