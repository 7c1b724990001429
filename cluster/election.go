package cluster

import (
	"fmt"
	"sync"
	"time"
	_ "unsafe" // go:linkname

	"github.com/nats-io/nats-server/v2/server"
)

// How fast a raft group of the embedded nats-server elects a new leader.
//
// When the node that leads a JetStream raft group (a stream, a KV
// bucket, the meta group) is killed, its followers campaign only when
// their election timer fires: a random time between minElectionTimeout
// and maxElectionTimeout after the last append entry or heartbeat they
// had from the leader (nats-server 2.15 server/raft.go,
// randElectionTimeout, re-armed by every append entry). nats-server ships
// 4 to 9 s, and no option, stream or account setting changes it: until
// then the group refuses writes, so a client of the dead node could not
// claim its session on a survivor, nor a QoS 1/2 message be stored, for
// 4 to 9 s (issue 12 asks for failover under 5 s).
//
// These are package variables of nats-server, unexported: Gannet sets
// them through go:linkname, once per process, before its first server
// starts (they are read by every raft group of every server in the
// process without a lock, so they are never written again). From
// Options.ElectionTimeout (E, default DefaultElectionTimeout):
//
//   - elections between E and 1.5 E after the leader's last contact;
//   - the leader's heartbeat (sent to an idle group) every E/4: nats-server
//     ships 1 s against its 4 s minimum, and derives from it how long a
//     follower counts as current (3 heartbeats) and a health check's grace
//     (2 heartbeats), so every one of those windows keeps its proportion
//     to the election timeout. An idle follower hears from its leader at
//     least every 2 heartbeats (E/2), half the minimum election timeout:
//     the margin against an election while the leader lives is the one
//     nats-server ships with, in proportion;
//   - a leader that has not heard from a quorum steps down after
//     lostQuorumInterval, left at nats-server's 10 s (or 10 heartbeats,
//     when longer): that is for the leader cut off on the minority side of
//     a partition, which cannot write anything meanwhile.
//
// The campaign timeouts (100 to 800 ms, after a split vote or a leader
// transfer) are nats-server's.
//
// If nats-server renames what is linked here, the build fails (the
// functions) or New reports it (a variable that no longer exists would
// bind to a variable of its own, silently: checkRaftTiming reads the
// values back through nats-server's own functions).

// DefaultElectionTimeout is Options.ElectionTimeout's default: new leaders
// 1.5 to 2.25 s after the death of the node that led a group.
const DefaultElectionTimeout = 1500 * time.Millisecond

// The bounds of Options.ElectionTimeout: below the lower one a loaded
// machine may stall a leader long enough for its followers to elect
// another while it lives, over and over; above the upper one, failover
// is slower than nats-server's own default.
const (
	minElectionTimeoutOption = 500 * time.Millisecond
	maxElectionTimeoutOption = 10 * time.Second
)

// nats-server 2.15 server/raft.go: the timing of its raft groups.
var (
	//go:linkname natsMinElectionTimeout github.com/nats-io/nats-server/v2/server.minElectionTimeout
	natsMinElectionTimeout time.Duration
	//go:linkname natsMaxElectionTimeout github.com/nats-io/nats-server/v2/server.maxElectionTimeout
	natsMaxElectionTimeout time.Duration
	//go:linkname natsHBInterval github.com/nats-io/nats-server/v2/server.hbInterval
	natsHBInterval time.Duration
	//go:linkname natsLostQuorumInterval github.com/nats-io/nats-server/v2/server.lostQuorumInterval
	natsLostQuorumInterval time.Duration
	//go:linkname natsLostQuorumCheck github.com/nats-io/nats-server/v2/server.lostQuorumCheck
	natsLostQuorumCheck time.Duration
)

// nats-server's own readers of those variables: linking them fails the
// build if they are gone, and checkRaftTiming calls them to see that the
// variables written above are the ones nats-server reads.
//
//go:linkname natsRandElectionTimeout github.com/nats-io/nats-server/v2/server.randElectionTimeout
func natsRandElectionTimeout() time.Duration

//go:linkname natsWithinLiveWindow github.com/nats-io/nats-server/v2/server.withinLiveWindow
func natsWithinLiveWindow(ts time.Time) bool

// Keep the package whose symbols are linked above in the build.
var _ = server.RANDOM_PORT

// raftTiming is the timing set for the process: by the first embedded
// server, for all that follow.
var raftTiming struct {
	mu  sync.Mutex
	set time.Duration // the ElectionTimeout applied; 0: none yet
	err error         // what checkRaftTiming found
}

// setRaftTiming applies election timeout e to every raft group of the
// process, before the first embedded server starts. A later call with
// another value is refused: the values are read without a lock by the
// servers already running.
func setRaftTiming(e time.Duration) error {
	raftTiming.mu.Lock()
	defer raftTiming.mu.Unlock()
	if raftTiming.set != 0 {
		if raftTiming.err != nil {
			return raftTiming.err
		}
		if raftTiming.set != e {
			return fmt.Errorf("cluster: election timeout %v: this process already runs a node with %v, and nats-server's raft timing is process-wide", e, raftTiming.set)
		}
		return nil
	}
	hb := e / 4
	lq := max(10*time.Second, 10*hb)
	natsMinElectionTimeout = e
	natsMaxElectionTimeout = e + e/2
	natsHBInterval = hb
	natsLostQuorumInterval = lq
	natsLostQuorumCheck = lq
	raftTiming.set = e
	raftTiming.err = checkRaftTiming(e)
	return raftTiming.err
}

// checkRaftTiming reports whether nats-server reads the values written by
// setRaftTiming: its election timeouts are drawn in [e, 1.5 e), and a peer
// heard from 3 heartbeats ago (3 e/4) or more is no longer live.
func checkRaftTiming(e time.Duration) error {
	const draws = 16
	for range draws {
		if d := natsRandElectionTimeout(); d < e || d >= e+e/2 {
			return fmt.Errorf("cluster: nats-server drew an election timeout of %v, outside the %v to %v set: its raft timing variables (server/raft.go) were renamed; update cluster/election.go", d, e, e+e/2)
		}
	}
	if natsWithinLiveWindow(time.Now().Add(-(3*(e/4) + time.Millisecond))) {
		return fmt.Errorf("cluster: nats-server's heartbeat interval is not the %v set: its raft timing variables (server/raft.go) were renamed; update cluster/election.go", e/4)
	}
	return nil
}
