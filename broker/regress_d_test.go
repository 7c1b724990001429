package broker_test

import (
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/gannet-mqtt/gannet/packet"
	"github.com/gannet-mqtt/gannet/store"
	"github.com/gannet-mqtt/gannet/store/memory"
)

type evlog struct {
	mu  sync.Mutex
	evs []string
}

func (l *evlog) add(f string, a ...any) {
	l.mu.Lock()
	l.evs = append(l.evs, fmt.Sprintf(f, a...))
	l.mu.Unlock()
}

// slowStore is the memory store with a Sync (so the broker treats it as
// durable) whose Update takes 50 ms, as a busy disk may.
type slowStore struct {
	*memory.Store
	log *evlog
}

func (s *slowStore) Sync() error { s.log.add("sync"); return nil }
func (s *slowStore) Update(id string, e *store.Entry) error {
	time.Sleep(50 * time.Millisecond)
	err := s.Store.Update(id, e)
	s.log.add("store update %s seq %d id %d state %d", id, e.Seq, e.PacketID, e.State)
	return err
}

type logListener struct {
	net.Listener
	log *evlog
}

func (l logListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return logConn{c, l.log}, nil
}

type logConn struct {
	net.Conn
	log *evlog
}

func (c logConn) Write(b []byte) (int, error) {
	for off := 0; off < len(b); {
		total, _, err := packet.Header(b[off:], 0)
		if err != nil || total == 0 {
			break
		}
		if b[off]>>4 == byte(packet.PUBLISH) {
			c.log.add("socket write PUBLISH")
		}
		off += total
	}
	return c.Conn.Write(b)
}

// D: fillLocked hands a queued delivery to the connection (sendLocked) and
// only then records its packet identifier and state (updateLocked). The
// flusher's pre-write sync reads writeSeq before the update is counted, so
// the PUBLISH with its identifier reaches the client while the store still
// says "queued, no identifier". A crash there resends the message after the
// restart under a fresh identifier: a QoS 2 duplicate.
func TestRegressPublishWrittenBeforeStoreUpdate(t *testing.T) {
	log := &evlog{}
	o := testOptions()
	o.Store = &slowStore{memory.New(), log}
	b := runBrokerOn(t, o, logListener{listen(t), log})
	sub, _ := v5ConnectOK(t, b.Addr, v5Persistent("rv-d", true, 300))
	sub.v5Sub(0, packet.Subscription{Filter: "rv/d", QoS: 2})
	sub.send(&packet.Disconnect{})
	b.waitOffline(t, "rv-d")
	pub := v5Client(t, b, "rv-d-pub")
	pub.v5Pub("rv/d", "m", 2, false) // queued for the offline session
	sub2, _ := v5ConnectOK(t, b.Addr, v5Persistent("rv-d", false, 300))
	p := expectPacket[*packet.Publish](sub2)
	t.Logf("client received %s", describe(p))
	time.Sleep(200 * time.Millisecond)
	log.mu.Lock()
	defer log.mu.Unlock()
	wrote, updated := -1, -1
	for i, e := range log.evs {
		t.Log(e)
		if wrote < 0 && len(e) > 12 && e[:12] == "socket write" {
			wrote = i
		}
		if updated < 0 && len(e) > 12 && e[:12] == "store update" {
			updated = i
		}
	}
	if wrote >= 0 && (updated < 0 || wrote < updated) {
		t.Errorf("PUBLISH written to the socket (event %d) before the store recorded its identifier (event %d)", wrote, updated)
	}
}
