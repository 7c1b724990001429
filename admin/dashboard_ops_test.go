package admin_test

import (
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/gannet-mqtt/gannet/admin"
	"github.com/gannet-mqtt/gannet/broker"
)

// With per-topic metrics configured, the dashboard's busiest topics are
// the metric filters ranked by message rate: a filter with traffic comes
// before one without, whatever their subscribers.
func TestDashboardBusiestTopicsByRate(t *testing.T) {
	ctx := newBrowser(t)
	b := runBroker(t, func(o *broker.Options) { o.TopicMetrics = []string{"idle/#", "busy/#"} })
	s := runAdmin(t, b.Server, admin.Options{})
	sub := connect(t, b.Addr, "watcher")
	sub.subscribe("idle/#", 0) // the idle filter has the subscribers
	sub.subscribe("idle/+", 0)
	pub := connect(t, b.Addr, "busy-pub")
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() { // steady traffic on busy/x, nobody subscribed
		defer close(done)
		for {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
				pub.publish("busy/x", "1", 0, false)
			}
		}
	}()
	defer func() { close(stop); <-done }()
	console := watchConsole(ctx)
	if err := chromedp.Do(ctx, chromedp.Navigate(s.URL+"/")); err != nil {
		t.Fatalf("navigate: %v", err)
	}
	waitJS(t, ctx, "the dashboard", `!document.getElementById("app").hidden`, 5*time.Second)
	waitJS(t, ctx, "busy/# first, by message rate",
		`document.querySelector("#topics-body td") && document.querySelector("#topics-body td").textContent === "busy/#" && document.getElementById("topics-basis").textContent.startsWith("by message rate") && document.querySelector("#topics-head").textContent.includes("Messages/s in")`,
		15*time.Second)
	if errs := console.errors(); len(errs) > 0 {
		t.Errorf("console errors: %v", errs)
	}
}
