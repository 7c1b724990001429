package cluster

import (
	"strconv"
	"testing"
	"time"
)

// A resume told while a survivor claims a will (between its read and its
// delete) cancels it, as one told after [MQTT-3.1.3-9]; a resume of
// another will (another revision: an older connection) does not, nor does
// one forgotten after resumeMemory.
func TestWillResumeRace(t *testing.T) {
	const key, rev = "cx", 7
	fired := make(chan string, 4)
	var r willResumes

	// Told before the claim's delete: arm refuses.
	p := r.register(key, rev)
	r.resume(key, rev)
	if r.arm(key, p, time.Millisecond, func() { fired <- "before" }) {
		t.Error("a will whose resume was told during its claim was armed")
	}

	// Told after the timer started: cancelled.
	r = willResumes{}
	p = r.register(key, rev)
	if !r.arm(key, p, 200*time.Millisecond, func() { fired <- "after" }) {
		t.Fatal("a will nobody resumed was not armed")
	}
	if !r.resume(key, 0) {
		t.Error("a pending will was not cancelled by its client's resume")
	}

	// Told about another revision, or long ago: published.
	r = willResumes{}
	r.resume(key, rev-1)
	r.resumed["cy"] = toldResume{rev: rev, at: time.Now().Add(-2 * resumeMemory)}
	p = r.register(key, rev)
	if !r.arm(key, p, time.Millisecond, func() { fired <- key }) {
		t.Error("a will was cancelled by the resume of an older connection")
	}
	p2 := r.register("cy", rev)
	if !r.arm("cy", p2, time.Millisecond, func() { fired <- "cy" }) {
		t.Error("a will was cancelled by a resume told longer ago than resumeMemory")
	}
	got := map[string]bool{}
	for range 2 {
		select {
		case s := <-fired:
			got[s] = true
		case <-time.After(5 * time.Second):
			t.Fatal("a will nobody resumed was not published")
		}
	}
	if !got[key] || !got["cy"] {
		t.Errorf("published: %v", got)
	}
	time.Sleep(300 * time.Millisecond)
	if len(fired) > 0 {
		t.Errorf("a cancelled will was published: %q", <-fired)
	}
	if len(r.pending) != 0 {
		t.Errorf("%d pending wills left after they were published", len(r.pending))
	}
}

// The resumes remembered are bounded.
func TestWillResumeMemoryBounded(t *testing.T) {
	var r willResumes
	for i := range resumeMemoryMax + 100 {
		r.resume("c"+strconv.Itoa(i), 1)
	}
	if n := len(r.resumed); n > resumeMemoryMax {
		t.Errorf("%d resumes remembered, more than %d", n, resumeMemoryMax)
	}
}
