package pebble

import (
	"errors"
	"strings"
	"sync"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// walFS hands Pebble its files unchanged, except the write-ahead logs
// (*.log), whose syncs it turns into no-ops. It is used with Fsync Interval
// and Never.
//
// Pebble has no commit that writes its log buffer to the file without an
// fsync: a commit with pebble.NoSync stays in the buffer, inside the
// process, until a 32 KiB block fills or a later commit asks for a sync.
// A commit with pebble.Sync writes the buffer to the file (write(2)) and
// then syncs it. With the log's sync a no-op, such a commit ends once the
// operating system has the bytes: a crash of the process alone can no
// longer lose them, and concurrent commits still share one write (Pebble's
// group commit). syncLogs does the real fsync, for the interval syncer.
type walFS struct {
	vfs.FS
	syncOnClose bool // fsync a log Pebble closes (Interval): its writes are older than the interval

	mu   sync.Mutex
	logs map[*walFile]struct{} // open logs; mu held
}

func newWALFS(fs vfs.FS, syncOnClose bool) *walFS {
	return &walFS{FS: fs, syncOnClose: syncOnClose, logs: make(map[*walFile]struct{})}
}

func (w *walFS) wrap(name string, f vfs.File, err error) (vfs.File, error) {
	if err != nil || !strings.HasSuffix(name, ".log") {
		return f, err
	}
	lf := &walFile{File: f, fs: w}
	w.mu.Lock()
	w.logs[lf] = struct{}{}
	w.mu.Unlock()
	return lf, nil
}

// Create opens a new file; a log gets syncs that only write.
func (w *walFS) Create(name string, c vfs.DiskWriteCategory) (vfs.File, error) {
	f, err := w.FS.Create(name, c)
	return w.wrap(name, f, err)
}

// ReuseForWrite opens a recycled log for writing.
func (w *walFS) ReuseForWrite(old, name string, c vfs.DiskWriteCategory) (vfs.File, error) {
	f, err := w.FS.ReuseForWrite(old, name, c)
	return w.wrap(name, f, err)
}

// syncLogs fsyncs every open log: everything written to them so far is
// then on disk.
func (w *walFS) syncLogs() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	var errs []error
	for f := range w.logs {
		errs = append(errs, f.File.Sync())
	}
	return errors.Join(errs...)
}

// walFile is a write-ahead log whose syncs do nothing: Pebble has written
// the log to the file before it syncs it.
type walFile struct {
	vfs.File
	fs *walFS
}

func (f *walFile) Sync() error                { return nil }
func (f *walFile) SyncData() error            { return nil }
func (f *walFile) SyncTo(int64) (bool, error) { return false, nil }
func (f *walFile) Close() error {
	f.fs.mu.Lock()
	delete(f.fs.logs, f) // after this, syncLogs cannot reach f: no sync of a closed file
	f.fs.mu.Unlock()
	var err error
	if f.fs.syncOnClose {
		err = f.File.Sync()
	}
	return errors.Join(err, f.File.Close())
}
