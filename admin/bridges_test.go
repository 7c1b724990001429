package admin_test

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/gannet-mqtt/gannet/admin"
)

// fakeBridges is an in-memory admin.Bridges.
type fakeBridges struct {
	list      []admin.BridgeInfo
	mu        sync.Mutex
	restarted []string
}

func (f *fakeBridges) restarts() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.restarted...)
}

func (f *fakeBridges) BridgeInfos() []admin.BridgeInfo { return f.list }

func (f *fakeBridges) RestartBridge(name string) error {
	for _, b := range f.list {
		if b.Name == name {
			f.mu.Lock()
			defer f.mu.Unlock()
			f.restarted = append(f.restarted, name)
			return nil
		}
	}
	return fmt.Errorf("%w: %q", admin.ErrNoBridge, name)
}

// GET /api/v1/bridges lists the bridges, POST .../restart restarts one,
// and /metrics carries their state and counters.
func TestAPIBridges(t *testing.T) {
	b := runBroker(t, nil)
	fb := &fakeBridges{list: []admin.BridgeInfo{
		{Name: "cloud", State: "connected", Address: "h:1", Queued: 3, Sent: 10, Received: 4, Dropped: 1, Connects: 2},
		{Name: "lazy", State: "idle"},
	}}
	s := runAdmin(t, b.Server, admin.Options{Token: "tok", Bridges: fb})
	r := s.request("GET", "/api/v1/bridges", nil)
	if r.Status != http.StatusOK {
		t.Fatalf("status %d: %s", r.Status, r.Body)
	}
	var list admin.BridgeList
	r.JSON(t, &list)
	if len(list.Bridges) != 2 || list.Bridges[0] != fb.list[0] {
		t.Fatalf("bridges %+v", list.Bridges)
	}
	if r := s.request("POST", "/api/v1/bridges/cloud/restart", nil); r.Status != http.StatusOK {
		t.Fatalf("restart: %d %s", r.Status, r.Body)
	}
	if r := fb.restarts(); len(r) != 1 || r[0] != "cloud" {
		t.Fatalf("restarted %v", r)
	}
	if r := s.request("POST", "/api/v1/bridges/nope/restart", nil); r.Status != http.StatusNotFound {
		t.Fatalf("restart of an unknown bridge: %d %s", r.Status, r.Body)
	}
	if r := s.request("GET", "/api/v1/bridges/cloud/restart", nil); r.Status != http.StatusMethodNotAllowed {
		t.Fatalf("GET restart: %d", r.Status)
	}
	if r := s.requestAuth("GET", "/api/v1/bridges", nil, ""); r.Status != http.StatusUnauthorized {
		t.Fatalf("without the token: %d", r.Status)
	}
	m := string(s.request("GET", "/metrics", nil).Body)
	for _, want := range []string{
		`gannet_bridge_connected{bridge="cloud"} 1`,
		`gannet_bridge_connected{bridge="lazy"} 0`,
		`gannet_bridge_queued_messages{bridge="cloud"} 3`,
		`gannet_bridge_messages_sent_total{bridge="cloud"} 10`,
		`gannet_bridge_messages_received_total{bridge="cloud"} 4`,
		`gannet_bridge_messages_dropped_total{bridge="cloud"} 1`,
	} {
		if !strings.Contains(m, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	// Without bridges the list is empty, not null.
	s2 := runAdmin(t, b.Server, admin.Options{})
	if r := s2.request("GET", "/api/v1/bridges", nil); !strings.Contains(string(r.Body), `"bridges":[]`) {
		t.Fatalf("no bridges: %s", r.Body)
	}
}

// The dashboard lists the bridges and restarts one from its row.
func TestDashboardBridges(t *testing.T) {
	ctx := newBrowser(t)
	b := runBroker(t, nil)
	fb := &fakeBridges{list: []admin.BridgeInfo{{Name: "cloud", State: "connected", Address: "h:1", Sent: 7}}}
	s := runAdmin(t, b.Server, admin.Options{Bridges: fb})
	if err := chromedp.Do(ctx, chromedp.Navigate(s.URL+"/")); err != nil {
		t.Fatalf("navigate: %v", err)
	}
	waitJS(t, ctx, "the bridges table", `document.querySelector("#bridges-body td") && document.querySelector("#bridges-body td").textContent === "cloud"`, 8*time.Second)
	clickJS(t, ctx, "restart cloud", `button[data-action="restart"][data-bridge="cloud"]`)
	eventually(t, "the restart", func() bool { return len(fb.restarts()) == 1 })
}
