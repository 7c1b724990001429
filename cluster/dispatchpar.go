package cluster

import (
	"hash/maphash"
	"runtime"
	"sync/atomic"

	"github.com/gannet-mqtt/gannet/broker"
	"github.com/gannet-mqtt/gannet/packet"
)

// Live workers: the dispatch goroutine hands the frames of QoS 0 messages
// (frame.go) to a few workers, each frame to the worker its subject hashes
// to, so that a node delivers what other nodes publish on all its CPUs.
// A topic's frames all go to one worker, in the order they arrived, so
// the order per publisher and topic [MQTT-4.6.0-5] holds. Everything else
// stays on the dispatch goroutine: the dedup of frames that arrive through
// several filters (before the hand-over), QoS 1/2 messages (the audit's
// ledger, audit.go, is the dispatch goroutine's), `$share` deliveries, and
// the audit's records; a frame of those for a topic whose worker still
// has frames waits until the worker has delivered them (a barrier), so a
// QoS 1/2 message never passes a QoS 0 one published before it on its
// topic. With one CPU there are no workers.
type liveWorker struct {
	frames chan workFrame
	queued atomic.Int64 // frames handed over and not delivered yet
}

// workFrame is a frame for a worker, or a barrier (done != nil).
type workFrame struct {
	subject string
	rest    []byte
	shed    bool
	done    chan struct{}
}

// liveWorkerQueue is each worker's queue of frames.
const liveWorkerQueue = 256

// maxLiveWorkers bounds the workers whatever the CPUs.
const maxLiveWorkers = 4

var subjectSeed = maphash.MakeSeed()

// startWorkers starts the live workers. Start.
func (c *Cluster) startWorkers() {
	n := min(runtime.GOMAXPROCS(0), maxLiveWorkers)
	if n < 2 {
		return
	}
	for range n {
		w := &liveWorker{frames: make(chan workFrame, liveWorkerQueue)}
		c.fwd.workers = append(c.fwd.workers, w)
		c.wg.Add(1)
		go c.runWorker(w)
	}
}

// runWorker delivers the frames handed to w, writing to each subscriber
// once its queue is empty.
func (c *Cluster) runWorker(w *liveWorker) {
	defer c.wg.Done()
	dec := &packet.Decoder{Version: packet.V5, Reuse: true}
	var ib broker.InboundBatch = unbatched{c.in}
	if b, ok := c.in.(broker.InboundBatcher); ok {
		ib = b.NewBatch()
	}
	for {
		var f workFrame
		select {
		case <-c.stop:
			return
		case f = <-w.frames:
		}
		if g := c.fwd.workGate.Load(); g != nil {
			select {
			case <-*g:
			case <-c.stop:
				return
			}
		}
	burst:
		for {
			if f.done != nil {
				ib.Flush()
				close(f.done)
			} else {
				c.dispatchFrame(f.subject, f.rest, "", "", f.shed, dec, nil, ib)
				w.queued.Add(-1)
			}
			select {
			case f = <-w.frames:
			default:
				break burst
			}
		}
		ib.Flush()
	}
}

// handFrame delivers a live frame, or hands it to its worker. Dispatch
// goroutine.
func (c *Cluster) handFrame(subject string, rest []byte, share, filter string, dec *packet.Decoder, l *ledger, ib broker.InboundBatch) {
	ws := c.fwd.workers
	n, qos0, other, ok := frameScan(rest)
	queued := 0
	for _, w := range ws {
		queued += len(w.frames)
	}
	shed := c.shedding(queued, n)
	if len(ws) == 0 || !ok {
		c.dispatchFrame(subject, rest, share, filter, shed, dec, l, ib)
		return
	}
	w := ws[maphash.String(subjectSeed, subject)%uint64(len(ws))]
	if !qos0 || other || share != "" {
		// Here, after what the topic's worker holds.
		if w.queued.Load() > 0 {
			c.fwd.barriers.Add(1)
			done := make(chan struct{})
			select {
			case w.frames <- workFrame{done: done}:
			case <-c.stop:
				return
			}
			select {
			case <-done:
			case <-c.stop:
				return
			}
		}
		c.dispatchFrame(subject, rest, share, filter, shed, dec, l, ib)
		return
	}
	w.queued.Add(1)
	select {
	case w.frames <- workFrame{subject: subject, rest: rest, shed: shed}:
	case <-c.stop:
	}
}
