package gannettest

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
)

// Ports for processes that must be told theirs (a gannet child process,
// mosquitto, a NATS route listener) are picked below the kernel's
// ephemeral range. A port taken from 127.0.0.1:0 and closed again is an
// ephemeral port: the kernel hands it out again at once to the next
// listener on :0 or outgoing connection of any test running meanwhile,
// and the told process then fails with "address already in use" (a CI
// run failed so). Below the range only other tellable ports compete; a
// lock file per port, held until this test process exits, keeps two
// test processes from picking the same one.
var ports struct {
	mu    sync.Mutex
	taken map[int]*os.File // this process's picks, each with its lock held
}

// portLow is the lowest port picked, clear of the well-known ports of
// services that may run on a development machine.
const portLow = 20000

// PickPort returns a loopback TCP port that was free a moment ago and that
// no other test process of this machine is given while this one runs.
func PickPort() (int, error) {
	ports.mu.Lock()
	defer ports.mu.Unlock()
	if ports.taken == nil {
		ports.taken = make(map[int]*os.File)
	}
	hi := ephemeralLow()
	lockDir := filepath.Join(os.TempDir(), "gannet-test-ports")
	if err := os.MkdirAll(lockDir, 0o777); err != nil {
		return 0, err
	}
	for range 200 {
		p := portLow + rand.IntN(hi-portLow)
		if ports.taken[p] != nil {
			continue
		}
		f, err := os.OpenFile(filepath.Join(lockDir, strconv.Itoa(p)), os.O_CREATE|os.O_RDWR, 0o666)
		if err != nil {
			return 0, err
		}
		if syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB) != nil {
			f.Close() // another test process has it
			continue
		}
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
		if err != nil {
			f.Close() // in use by something else
			continue
		}
		l.Close()
		ports.taken[p] = f // the lock stays held until the process exits
		return p, nil
	}
	return 0, errors.New("gannettest: no free port found below the ephemeral range")
}

// ephemeralLow is the bottom of the kernel's ephemeral port range (32768
// when it cannot be read).
func ephemeralLow() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if n, err := strconv.Atoi(f[0]); err == nil && n > portLow+1000 {
				return n
			}
		}
	}
	return 32768
}

// FreePort is PickPort for a test: it fails the test when no port is
// found.
func FreePort(t testing.TB) int {
	t.Helper()
	p, err := PickPort()
	if err != nil {
		t.Fatal(err)
	}
	return p
}
