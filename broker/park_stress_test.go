package broker_test

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"
)

// Disconnects and takeovers landing around the moment a connection parks
// (parkAfter, 100 ms): each must end the connection.
func TestParkWakeStress(t *testing.T) {
	b := runBroker(t, testOptions())
	const n = 120
	var wg sync.WaitGroup
	errs := make(chan string, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := fmt.Sprintf("pws-%d", i)
			var c *rawClient
			if i%2 == 0 {
				c, _ = v5ConnectOK(t, b.Addr, v5Connect(id))
			} else {
				c, _ = connectOK(t, b.Addr, connectPacket(id))
			}
			time.Sleep(time.Duration(60+rand.IntN(120)) * time.Millisecond)
			if i%3 == 0 {
				c2, _ := connectOK(t, b.Addr, connectPacket(id)) // takeover (3.1.1 CONNECT for either)
				_ = c2
			} else if !b.Disconnect(id, false) {
				errs <- id + ": not found"
				return
			}
			start := time.Now()
			for {
				if _, err := c.read(3 * time.Second); err != nil {
					if time.Since(start) > 2500*time.Millisecond {
						errs <- fmt.Sprintf("%s: not closed within %v (%v)", id, time.Since(start), err)
					}
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}
