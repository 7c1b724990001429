package bench

import (
	"strings"
	"testing"
	"time"

	"github.com/gannet-mqtt/gannet/broker"
)

// With SubAddr, publishers connect to Addr and subscribers to SubAddr
// (another node of a cluster): here two brokers that share nothing, so
// every message is missing, and each broker saw only its own role.
func TestSubscribersOnAnotherBroker(t *testing.T) {
	pubs := runBroker(t, broker.DefaultOptions())
	subs := runBroker(t, broker.DefaultOptions())
	cfg := testConfig(pubs.addr)
	cfg.SubAddr = subs.addr
	cfg.Clients = 2
	cfg.Count = 20
	cfg.Drain = 300 * time.Millisecond
	cfg.ClientIDPrefix = "subaddr-"
	r := run(t, cfg)
	if got := pubs.l.accepted.Load(); got != 2 {
		t.Errorf("the publishers' broker accepted %d connections, want 2", got)
	}
	if got := subs.l.accepted.Load(); got != 2 {
		t.Errorf("the subscribers' broker accepted %d connections, want 2", got)
	}
	if r.Messages.Sent != 40 || r.Messages.Received != 0 || r.Messages.Missing != 40 {
		t.Errorf("sent %d, received %d, missing %d: want 40, 0, 40", r.Messages.Sent, r.Messages.Received, r.Messages.Missing)
	}
	if !strings.Contains(r.Broker, subs.addr) {
		t.Errorf("the report names the broker %q, without the subscribers' %s", r.Broker, subs.addr)
	}
}
