package cluster

import (
	"testing"
	"time"
)

// The election timeout reaches nats-server's raft timing (read back
// through nats-server's own functions), once per process: another value
// later is refused, as the servers running read it without a lock.
func TestRaftTimingSet(t *testing.T) {
	if err := setRaftTiming(DefaultElectionTimeout); err != nil {
		t.Fatal(err)
	}
	if natsMinElectionTimeout != DefaultElectionTimeout || natsMaxElectionTimeout != DefaultElectionTimeout*3/2 ||
		natsHBInterval != DefaultElectionTimeout/4 || natsLostQuorumInterval != 10*time.Second {
		t.Errorf("raft timing: election %v to %v, heartbeat %v, lost quorum %v",
			natsMinElectionTimeout, natsMaxElectionTimeout, natsHBInterval, natsLostQuorumInterval)
	}
	if err := checkRaftTiming(DefaultElectionTimeout); err != nil {
		t.Error(err)
	}
	// What the check says when the values are not nats-server's.
	if err := checkRaftTiming(4 * DefaultElectionTimeout); err == nil {
		t.Error("the check accepts election timeouts drawn outside the range it was given")
	}
	if err := setRaftTiming(2 * DefaultElectionTimeout); err == nil {
		t.Error("a second, different election timeout in one process was accepted")
	}
}

// Options.Validate bounds the election timeout; 0 is the default.
func TestElectionTimeoutOption(t *testing.T) {
	o := DefaultOptions()
	o.Node, o.DataDir = "n1", t.TempDir()
	for _, d := range []time.Duration{0, minElectionTimeoutOption, DefaultElectionTimeout, maxElectionTimeoutOption} {
		o.ElectionTimeout = d
		if err := o.Validate(); err != nil {
			t.Errorf("election timeout %v: %v", d, err)
		}
	}
	for _, d := range []time.Duration{-time.Second, 100 * time.Millisecond, time.Minute} {
		o.ElectionTimeout = d
		if err := o.Validate(); err == nil {
			t.Errorf("election timeout %v accepted", d)
		}
	}
}
