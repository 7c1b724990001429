package broker

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gannet-mqtt/gannet/packet"
)

// BenchmarkIdleConnections measures what an idle MQTT connection costs the
// broker: GANNET_IDLE_CONNS (default 10,000) clients in a child process
// connect and stay idle, and the broker process's RSS and Go heap+stack
// growth are divided by their number. b.N is ignored.
func BenchmarkIdleConnections(b *testing.B) {
	n := 10000
	if s := os.Getenv("GANNET_IDLE_CONNS"); s != "" {
		n, _ = strconv.Atoi(s)
	}
	addr := benchAddr(b)
	debug.FreeOSMemory()
	rss0, go0 := memNow()
	var ms0, ms1 runtime.MemStats
	runtime.ReadMemStats(&ms0)

	cmd := exec.Command(os.Args[0], "-test.run=^TestIdleClientsChild$")
	cmd.Env = append(os.Environ(), "GANNET_IDLE_CHILD_ADDR="+addr, "GANNET_IDLE_CHILD_N="+strconv.Itoa(n))
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() { stdin.Close(); cmd.Wait() }()
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), "ready") {
			break
		}
	}
	time.Sleep(500 * time.Millisecond) // let connection setup settle
	debug.FreeOSMemory()
	rss1, go1 := memNow()
	runtime.ReadMemStats(&ms1)
	if p := os.Getenv("GANNET_IDLE_HEAPPROFILE"); p != "" {
		f, _ := os.Create(p)
		pprof.WriteHeapProfile(f)
		f.Close()
	}
	b.ReportMetric(float64(int64(ms1.StackInuse)-int64(ms0.StackInuse))/float64(n)/1024, "stack-KiB/conn")
	b.ReportMetric(float64(rss1-rss0)/float64(n)/1024, "RSS-KiB/conn")
	b.ReportMetric(float64(go1-go0)/float64(n)/1024, "heap+stack-KiB/conn")
	b.ReportMetric(float64(runtime.NumGoroutine())/float64(n), "goroutines/conn")
}

// memNow returns the process RSS and the Go heap in use plus goroutine stacks.
func memNow() (rss, goMem int64) {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	data, _ := os.ReadFile("/proc/self/status")
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			rss = kb * 1024
		}
	}
	return rss, int64(ms.HeapInuse + ms.StackInuse)
}

// TestIdleClientsChild is the client side of BenchmarkIdleConnections,
// run in a child process; it does nothing in a normal test run.
func TestIdleClientsChild(t *testing.T) {
	addr := os.Getenv("GANNET_IDLE_CHILD_ADDR")
	if addr == "" {
		return
	}
	n, _ := strconv.Atoi(os.Getenv("GANNET_IDLE_CHILD_N"))
	conns := make([]net.Conn, 0, n)
	connect, _ := (&packet.Connect{Version: packet.V311, CleanStart: true, KeepAlive: 0}).Append(nil, 0)
	buf := make([]byte, 4)
	for i := 0; i < n; i++ {
		nc, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
		nc.Write(connect)
		if _, err := nc.Read(buf); err != nil {
			t.Fatalf("connection %d: no CONNACK: %v", i, err)
		}
		conns = append(conns, nc)
	}
	fmt.Println("ready")
	os.Stdin.Read(make([]byte, 1)) // until the parent closes stdin
	for _, c := range conns {
		c.Close()
	}
}
