package pebble

import (
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/gannet-mqtt/gannet/store"
)

// syncCountingFS counts the syncs of the write-ahead log.
type syncCountingFS struct {
	vfs.FS
	syncs atomic.Int64
}

type syncCountingFile struct {
	vfs.File
	fs *syncCountingFS
}

func (f *syncCountingFS) wrap(name string, file vfs.File, err error) (vfs.File, error) {
	if err != nil || !strings.HasSuffix(name, ".log") {
		return file, err
	}
	return &syncCountingFile{file, f}, nil
}

func (f *syncCountingFS) Create(name string, c vfs.DiskWriteCategory) (vfs.File, error) {
	file, err := f.FS.Create(name, c)
	return f.wrap(name, file, err)
}

func (f *syncCountingFS) ReuseForWrite(old, name string, c vfs.DiskWriteCategory) (vfs.File, error) {
	file, err := f.FS.ReuseForWrite(old, name, c)
	return f.wrap(name, file, err)
}

func (f *syncCountingFile) Sync() error     { f.fs.syncs.Add(1); return f.File.Sync() }
func (f *syncCountingFile) SyncData() error { f.fs.syncs.Add(1); return f.File.SyncData() }
func (f *syncCountingFile) SyncTo(n int64) (bool, error) {
	f.fs.syncs.Add(1)
	return f.File.SyncTo(n)
}

// openCounting opens a store in a temporary directory with Fsync Always,
// counting its log syncs.
func openCounting(b *testing.B) (*Store, *syncCountingFS) {
	b.Helper()
	cfs := &syncCountingFS{FS: vfs.Default}
	opts := quiet()
	opts.fs = cfs
	s, err := Open(b.TempDir(), opts)
	if err != nil {
		b.Fatal(err)
	}
	return s, cfs
}

// Each operation appends one entry of a new 256-byte message and syncs,
// as the broker does before it acknowledges a QoS 1 message for an offline
// subscriber. With 8 goroutines, concurrent syncs share an fsync: compare
// syncs/op.
func BenchmarkAppendSync(b *testing.B) {
	for _, g := range []int{1, 8} {
		b.Run(fmt.Sprintf("goroutines=%d", g), func(b *testing.B) {
			s, cfs := openCounting(b)
			defer s.Close()
			var ids atomic.Uint64
			payload := make([]byte, 256)
			b.ReportAllocs()
			b.ResetTimer()
			before := cfs.syncs.Load()
			var wg sync.WaitGroup
			for w := range g {
				n := b.N / g
				if w < b.N%g {
					n++
				}
				wg.Go(func() {
					client := fmt.Sprint("client-", w)
					m := &store.Message{Topic: "bench/append", Payload: payload, QoS: 1}
					e := &store.Entry{Message: m, QoS: 1}
					for i := range n {
						m.ID = ids.Add(1)
						e.Seq = uint64(i + 1)
						if err := s.Append(client, e); err != nil {
							b.Error(err)
							return
						}
						if err := s.Sync(); err != nil {
							b.Error(err)
							return
						}
					}
				})
			}
			wg.Wait()
			b.StopTimer()
			b.ReportMetric(float64(cfs.syncs.Load()-before)/float64(b.N), "syncs/op")
		})
	}
}

// Each operation queues one 1 KiB message for 10,000 offline sessions,
// one Append each as the broker does, then syncs once. The message is
// written once: the log grows by the entries (about 40 bytes each), not
// by 10,000 payloads.
func BenchmarkFanOutAppend(b *testing.B) {
	const sessions, size = 10_000, 1024
	s, _ := openCounting(b)
	clients := make([]string, sessions)
	for i := range clients {
		clients[i] = fmt.Sprintf("subscriber-%05d", i)
	}
	m := &store.Message{Topic: "bench/fanout", Payload: make([]byte, size), QoS: 1}
	e := &store.Entry{Message: m, QoS: 1}
	met, _ := s.Metrics()
	walBefore := met.WAL.BytesWritten
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		m.ID = uint64(i + 1)
		e.Seq = uint64(i + 1)
		for _, c := range clients {
			if err := s.Append(c, e); err != nil {
				b.Fatal(err)
			}
		}
		if err := s.Sync(); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	met, _ = s.Metrics()
	wal := float64(met.WAL.BytesWritten-walBefore) / float64(b.N)
	b.ReportMetric(wal, "log-B/op")
	b.ReportMetric(wal/size, "payloads-in-log/op")
	if err := s.Close(); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(dirSize(b, s.Dir()))/float64(b.N), "disk-B/op")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*sessions), "ns/entry")
}

func dirSize(b *testing.B, dir string) int64 {
	var n int64
	err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		info, err := d.Info()
		if err == nil {
			n += info.Size()
		}
		return err
	})
	if err != nil {
		b.Fatal(err)
	}
	return n
}
