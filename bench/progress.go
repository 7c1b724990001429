package bench

import (
	"fmt"
	"io"
	"strings"
	"time"
)

// startProgress writes a status line to w every second until the returned
// function is called, which clears the line. Each line starts with a
// carriage return and ends by erasing the rest of the terminal line, so
// they overwrite one another.
func (e *engine) startProgress(w io.Writer) (stop func()) {
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(time.Second)
		defer t.Stop()
		begin := time.Now()
		var prev msgTotals
		for {
			select {
			case <-done:
				io.WriteString(w, "\r\x1b[K")
				return
			case <-t.C:
			}
			m := e.messages()
			io.WriteString(w, e.progressLine(time.Since(begin), m, prev))
			prev = m
		}
	}()
	return func() {
		close(done)
		<-finished
	}
}

// progressLine formats one status line from the totals now and a second
// ago.
func (e *engine) progressLine(elapsed time.Duration, m, prev msgTotals) string {
	var b strings.Builder
	fmt.Fprintf(&b, "\r%5.0fs  conns %s/%s", elapsed.Seconds(), count(uint64(e.open.Load())), count(uint64(len(e.clients))))
	if len(e.pubs) > 0 {
		fmt.Fprintf(&b, "  sent %s/s", count(m.Sent-prev.Sent))
		if e.cfg.QoS > 0 {
			fmt.Fprintf(&b, "  acked %s/s", count(m.Acked-prev.Acked))
		}
	}
	if len(e.subs) > 0 {
		fmt.Fprintf(&b, "  received %s/s (%s total)", count(m.Received-prev.Received), count(m.Received))
	}
	fmt.Fprintf(&b, "  errors %s\x1b[K", count(e.errs.total()))
	return b.String()
}
