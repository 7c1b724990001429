//go:build unix && (race || !linux)

package broker

import "syscall"

// Under the race detector, and on systems other than Linux, reads and
// writes go through the syscall package. It tells the race detector that
// what one goroutine wrote before a socket write happens before what
// another reads after the socket read (tests rely on it);
// rawsys_linux.go has the scheduler-silent versions.

func sysRead(fd uintptr, b []byte) (int, error) {
	for {
		n, err := syscall.Read(int(fd), b)
		if err != syscall.EINTR {
			return max(n, 0), err
		}
	}
}

func sysWrite(fd uintptr, b []byte) (int, error) {
	for {
		n, err := syscall.Write(int(fd), b)
		if err != syscall.EINTR {
			return max(n, 0), err
		}
	}
}
