package pebble_test

import (
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/gannet-mqtt/gannet/store"
	"github.com/gannet-mqtt/gannet/store/pebble"
	"github.com/gannet-mqtt/gannet/store/storetest"
)

// processCrashImage copies the store's directory as the operating system
// holds it, with the store still open: what a restart finds after the
// process is killed (kill -9), whatever Pebble still buffered inside the
// process being lost.
func processCrashImage(t *testing.T, dir string) string {
	t.Helper()
	img := t.TempDir()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if e.IsDir() || e.Name() == "LOCK" {
			continue
		}
		src, err := os.Open(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		dst, err := os.Create(filepath.Join(img, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.Copy(dst, src); err != nil {
			t.Fatal(err)
		}
		src.Close()
		dst.Close()
	}
	return img
}

// After Sync, every write (deletions included) is in the operating system
// in every fsync mode, so a crash of the process loses nothing: the broker
// calls Sync before it acknowledges (PUBACK, PUBREC, SUBACK, UNSUBACK,
// CONNACK) [MQTT-4.3.2-4] [MQTT-4.3.3-8].
func TestSyncSurvivesProcessCrash(t *testing.T) {
	for _, mode := range []pebble.Fsync{pebble.Always, pebble.Interval, pebble.Never} {
		t.Run(mode.String(), func(t *testing.T) {
			opts := pebble.DefaultOptions()
			opts.Fsync = mode
			opts.Interval = time.Hour // the timer must not be what saves the writes
			dir := t.TempDir()
			s, err := pebble.Open(dir, opts)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			must := func(err error) {
				t.Helper()
				if err != nil {
					t.Fatal(err)
				}
			}
			must(s.SaveSession(&store.Session{ClientID: "kept", Version: 4, Expiry: storetest.Never}))
			must(s.SaveSession(&store.Session{ClientID: "gone", Version: 4, Expiry: storetest.Never}))
			must(s.Append("kept", &store.Entry{Seq: 1, QoS: 1, Message: storetest.Plain(1, "a/b", "queued")}))
			must(s.Append("gone", &store.Entry{Seq: 1, QoS: 1, Message: storetest.Plain(2, "a/b", "queued")}))
			must(s.SetRetained(storetest.Plain(3, "r/1", "retained")))
			must(s.SetRetained(storetest.Plain(4, "r/2", "retained")))
			must(s.Sync())
			// Deletions after a first sync must reach the OS too.
			must(s.DeleteSession("gone"))
			must(s.DeleteRetained("r/2"))
			must(s.Sync())

			img, err := pebble.Open(processCrashImage(t, dir), opts)
			if err != nil {
				t.Fatalf("opening the image a process crash leaves: %v", err)
			}
			defer img.Close()
			var sessions []string
			must(img.LoadSessions(func(s *store.Session) error { sessions = append(sessions, s.ClientID); return nil }))
			if len(sessions) != 1 || sessions[0] != "kept" {
				t.Errorf("sessions after a process crash: %v, want [kept]", sessions)
			}
			var queued []string
			must(img.LoadQueue("kept", func(e *store.Entry) error { queued = append(queued, string(e.Message.Payload)); return nil }))
			if len(queued) != 1 {
				t.Errorf("queue of kept after a process crash: %v, want [queued]", queued)
			}
			var retained []string
			must(img.LoadRetained(func(m *store.Message) error { retained = append(retained, m.Topic); return nil }))
			if len(retained) != 1 || retained[0] != "r/1" {
				t.Errorf("retained after a process crash: %v, want [r/1]", retained)
			}
		})
	}
}
