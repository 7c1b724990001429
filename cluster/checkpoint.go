package cluster

import (
	"encoding/json"
	"strconv"
)

// A node's checkpoint record (n.ORIGIN in the sessions bucket).
//
// The node-wide part says how far the node has applied the messages
// stream to all its sessions. What holds one session back (its replay
// running, the replay start it inherited from a claim it could not load,
// its writes not stored yet or dropped) is that session's alone: it is
// recorded per session, so that a node taking over any other session of
// the node (after its death) does not replay from there. Replaying too
// far back is not only slow: a session holds at most max_queued messages,
// and a replay of more drops the rest. Past maxHolds sessions held, the
// holds are folded into the node-wide part (a longer replay, never a
// shorter one).
//
// Stored as a plain number when nothing is held (as before), else as
// JSON {"c": N, "h": {"CLIENT": N, ...}}.

const maxHolds = 1000

type checkpointRecord struct {
	C uint64            `json:"c"`
	H map[string]uint64 `json:"h,omitempty"`
}

func encodeCheckpoint(global uint64, holds map[string]uint64) []byte {
	for id, h := range holds {
		if h >= global {
			delete(holds, id)
		}
	}
	if len(holds) > maxHolds {
		for _, h := range holds {
			global = min(global, h)
		}
		holds = nil
	}
	if len(holds) == 0 {
		return []byte(strconv.FormatUint(global, 10))
	}
	b, err := json.Marshal(&checkpointRecord{C: global, H: holds})
	if err != nil { // not with these types
		for _, h := range holds {
			global = min(global, h)
		}
		return []byte(strconv.FormatUint(global, 10))
	}
	return b
}

func decodeCheckpoint(b []byte) (checkpointRecord, bool) {
	if n, err := strconv.ParseUint(string(b), 10, 64); err == nil {
		return checkpointRecord{C: n}, true
	}
	var r checkpointRecord
	if err := json.Unmarshal(b, &r); err != nil {
		return r, false
	}
	return r, true
}

// of returns where a replay to session id must start.
func (r checkpointRecord) of(id string) uint64 {
	if h, ok := r.H[id]; ok {
		return min(r.C, h)
	}
	return r.C
}

// checkpointRecordOf reads a node instance's last checkpoint record.
func (c *Cluster) checkpointRecordOf(origin string) (checkpointRecord, bool) {
	ctx, cancel := opCtx()
	defer cancel()
	// A consumer first, a direct get of a current replica when the meta
	// leader cannot make one (directget.go): a lagging replica could
	// miss a checkpoint written a moment ago.
	es, err := c.readKeys(ctx, c.sessions, checkpointKey(origin))
	if err != nil || len(es) == 0 {
		return checkpointRecord{}, false
	}
	return decodeCheckpoint(es[len(es)-1].Value())
}

// checkpointOf returns where a replay to session id, taken from the node
// instance origin, must start.
func (c *Cluster) checkpointOf(origin, id string) (uint64, bool) {
	r, ok := c.checkpointRecordOf(origin)
	if !ok {
		return 0, false
	}
	return r.of(id), true
}

// checkpointNow computes this node's checkpoint record. The writes of
// what applied covers were queued before it advanced: read it first.
func (c *Cluster) checkpointNow() (global uint64, holds map[string]uint64) {
	global = c.localApplied(c.applied.Load()) // audit.go
	holds = make(map[string]uint64)
	hold := func(id string, seq uint64) {
		if h, ok := holds[id]; !ok || seq < h {
			holds[id] = seq
		}
	}
	if c.shared != nil {
		for id, b := range c.shared.w.boundsBySession() {
			hold(id, b)
		}
	}
	c.mu.Lock()
	for _, h := range c.replays {
		if h.ids == nil {
			global = min(global, h.from) // an adoption: any session
			continue
		}
		for id := range h.ids {
			hold(id, h.from)
		}
	}
	for id, from := range c.prevCheckpoint { // claimed, not loaded yet
		hold(id, from)
	}
	c.mu.Unlock()
	return global, holds
}
