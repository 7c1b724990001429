package gannettest

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// Require stops a test that cannot run here because err says something it
// needs is missing (install says how to get it): under CI (the environment
// variable CI set, as .ci/run does) the test fails, elsewhere it is skipped.
// A test that needs an external tool must never pass without running.
func Require(t testing.TB, what, install string, err error) {
	t.Helper()
	if err == nil {
		return
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("%s missing under CI (%s): %v", what, install, err)
	}
	t.Skipf("%s not installed (%s): %v", what, install, err)
}

// Tool returns the path of an external program: on PATH, or in /usr/sbin
// or /usr/local/sbin where Debian puts daemons. Missing, it fails the test
// under CI and skips it elsewhere (see Require).
func Tool(t testing.TB, name, install string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err == nil {
		return p
	}
	for _, dir := range []string{"/usr/sbin", "/usr/local/sbin"} {
		c := filepath.Join(dir, name)
		if _, e := os.Stat(c); e == nil {
			return c
		}
	}
	Require(t, name, install, err)
	return ""
}

// MosquittoClients returns the paths of Debian's mosquitto_pub and
// mosquitto_sub (package mosquitto-clients), through Tool.
func MosquittoClients(t testing.TB) (pub, sub string) {
	t.Helper()
	return Tool(t, "mosquitto_pub", "apt-get install mosquitto-clients"),
		Tool(t, "mosquitto_sub", "apt-get install mosquitto-clients")
}

// HostPort splits a broker address for tools that take -h and -p.
func HostPort(t testing.TB, addr string) (host, port string) {
	t.Helper()
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatalf("split %q: %v", addr, err)
	}
	return host, port
}

// Command is a running external program; its stdout and stderr are
// collected together.
type Command struct {
	Cmd  *exec.Cmd
	out  SyncBuffer
	done chan struct{} // closed when the process has exited
	err  error         // exit status, set before done is closed
}

// StartTool starts the program at path with args and stdin (may be
// empty); it is killed after limit at the latest, or when the test ends.
func StartTool(t testing.TB, path, stdin string, limit time.Duration, args ...string) *Command {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	c := &Command{Cmd: exec.CommandContext(ctx, path, args...), done: make(chan struct{})}
	c.Cmd.Stdout = &c.out
	c.Cmd.Stderr = &c.out
	if stdin != "" {
		c.Cmd.Stdin = strings.NewReader(stdin)
	}
	if err := c.Cmd.Start(); err != nil {
		cancel()
		t.Fatalf("start %s: %v", path, err)
	}
	go func() {
		c.err = c.Cmd.Wait()
		cancel()
		close(c.done)
	}()
	t.Cleanup(func() {
		cancel()
		<-c.done
	})
	return c
}

// Result waits for the command to exit and returns its output and exit
// status.
func (c *Command) Result() (string, error) {
	<-c.done
	return c.out.String(), c.err
}

// Wait waits for the command to exit successfully and returns its output.
func (c *Command) Wait(t testing.TB) string {
	t.Helper()
	out, err := c.Result()
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(c.Cmd.Args, " "), err, out)
	}
	return out
}

// Kill ends the command abruptly (SIGKILL): its connection drops without
// DISCONNECT.
func (c *Command) Kill() {
	c.Cmd.Process.Kill()
	<-c.done
}

// Output returns what the command has written so far.
func (c *Command) Output() string { return c.out.String() }

// SyncBuffer is a bytes.Buffer safe for a writer and readers in different
// goroutines, for a child process's output.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func (s *SyncBuffer) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Len()
}

// RunMosquitto starts Debian's mosquitto broker on a free 127.0.0.1 port
// with an anonymous listener and no persistence, and kills it when the test
// ends. Extra lines are appended to its configuration file. Without
// mosquitto the test fails under CI and is skipped elsewhere. It returns
// the address.
func RunMosquitto(t testing.TB, extra ...string) string {
	t.Helper()
	return RunMosquittoConf(t, func(port int) string {
		return strings.Join(append([]string{
			fmt.Sprintf("listener %d 127.0.0.1", port),
			"allow_anonymous true",
			"persistence false",
		}, extra...), "\n")
	})
}

// RunMosquittoConf starts Debian's mosquitto with the configuration conf
// returns for a free loopback port (it must listen on 127.0.0.1 at that
// port), and kills it when the test ends; its output is logged when the
// test failed. Lines are added that keep it in the foreground of the test:
// it keeps root privileges (its files are in a private temporary
// directory) and logs errors and warnings to stderr. Without mosquitto the
// test fails under CI and is skipped elsewhere. It returns the address
// once mosquitto accepts connections.
func RunMosquittoConf(t testing.TB, conf func(port int) string) string {
	t.Helper()
	bin := Tool(t, "mosquitto", "apt-get install mosquitto")
	port := FreePort(t)
	path := filepath.Join(t.TempDir(), "mosquitto.conf")
	text := strings.TrimRight(conf(port), "\n") + "\nuser root\nlog_dest stderr\nlog_type error\nlog_type warning\n"
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	var out SyncBuffer
	cmd := exec.Command(bin, "-c", path)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start mosquitto: %v", err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		cmd.Process.Kill() // by PID: the process this test started
		select {
		case <-exited:
		case <-time.After(WaitFor):
			t.Errorf("mosquitto (pid %d) did not exit", cmd.Process.Pid)
		}
		if t.Failed() && out.Len() > 0 {
			t.Logf("mosquitto output:\n%s", out.String())
		}
	})
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	deadline := time.Now().Add(WaitFor)
	for {
		nc, err := net.DialTimeout("tcp", addr, WaitFor)
		if err == nil {
			nc.Close()
			return addr
		}
		select {
		case <-exited:
			t.Fatalf("mosquitto exited:\n%s", out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("mosquitto did not listen on %s: %v\n%s", addr, err, out.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}
