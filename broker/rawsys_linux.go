//go:build linux && !race

package broker

import (
	"syscall"
	"unsafe"
)

// sysRead and sysWrite read and write a non-blocking descriptor, which
// returns at once, without telling the scheduler (syscall.RawSyscall).
// syscall.Read and syscall.Write wake the runtime's monitor thread (sysmon)
// whenever they are entered while it sleeps, as it does each time the
// broker goes idle: on a quiet broker that is a thread wake-up per packet,
// two context switches per message where Mosquitto has one (issue 14).
// Never for a blocking call: it would hold the scheduler's processor for as
// long as it blocks. Race builds, and other systems (where a program may
// have to go through libc), use the syscall package (rawsys_other_unix.go).
func sysRead(fd uintptr, b []byte) (int, error) { return rawSyscall(syscall.SYS_READ, fd, b) }

func sysWrite(fd uintptr, b []byte) (int, error) { return rawSyscall(syscall.SYS_WRITE, fd, b) }

func rawSyscall(trap, fd uintptr, b []byte) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	for {
		n, _, errno := syscall.RawSyscall(trap, fd, uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)))
		switch errno {
		case 0:
			return int(n), nil
		case syscall.EINTR:
			continue
		}
		return 0, errno
	}
}
