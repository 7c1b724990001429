package admin_test

import (
	"context"
	"fmt"
	"math"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/gannet-mqtt/gannet/admin"
	"github.com/gannet-mqtt/gannet/internal/gannettest"
	"github.com/gannet-mqtt/gannet/packet"
)

// chromiumPath is Debian's chromium, which CI installs.
const chromiumPath = "/usr/bin/chromium"

// browserTimeout bounds the whole browser session of a test.
const browserTimeout = 40 * time.Second

// newBrowser starts headless Chromium with a fresh profile. It skips the
// test when Chromium is missing, except in CI, where that is a failure.
// extra adds allocator options (flags) to the defaults.
//
// The browser is started here, not by the test's first action: chromedp
// allocates again on a context whose first allocation failed, and that
// second allocation panics inside chromedp (close of a closed channel),
// killing the whole test binary. A start that fails is retried with a new
// profile, then reported with what Chromium printed.
func newBrowser(t *testing.T, extra ...chromedp.ExecAllocatorOption) context.Context {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s missing in CI: %v", chromiumPath, err)
		}
		t.Skipf("%s missing (apt-get install chromium): %v", chromiumPath, err)
	}
	var errs []string
	for attempt := 1; attempt <= 3; attempt++ {
		out := &lockedBuffer{}
		ctx, cancelTimeout := context.WithTimeout(context.Background(), browserTimeout)
		actx, cancelAlloc := chromedp.NewExecAllocator(ctx, append([]chromedp.ExecAllocatorOption{
			chromedp.ExecPath(chromiumPath),
			chromedp.Flag("headless", true),
			chromedp.Flag("no-sandbox", true),
			chromedp.Flag("disable-gpu", true),
			chromedp.Flag("disable-dev-shm-usage", true),
			chromedp.Flag("disable-background-networking", true),
			chromedp.Flag("disable-component-update", true),
			chromedp.Flag("disable-sync", true),
			chromedp.Flag("no-first-run", true),
			chromedp.Flag("hide-scrollbars", true),
			chromedp.UserDataDir(t.TempDir()),
			chromedp.WindowSize(1440, 1000),
			chromedp.CombinedOutput(out),
		}, extra...)...)
		bctx, cancelBrowser := chromedp.NewContext(actx)
		stop := func() {
			cancelBrowser() // closes the browser and waits for it
			cancelAlloc()
			cancelTimeout()
		}
		if _, err := chromedp.Run(bctx, chromedp.Sleep(0)); err != nil {
			stop()
			errs = append(errs, fmt.Sprintf("attempt %d: %v\nChromium printed:\n%s", attempt, err, out.String()))
			continue
		}
		t.Cleanup(stop)
		return bctx
	}
	t.Fatalf("headless Chromium (%s) would not start:\n%s", chromiumPath, strings.Join(errs, "\n"))
	return nil
}

// lockedBuffer lets Chromium's output goroutine and the test share a buffer.
type lockedBuffer = gannettest.SyncBuffer

// consoleLog collects the page's console messages and exceptions.
type consoleLog struct {
	mu   sync.Mutex
	msgs []chromedp.ConsoleMessage
}

func watchConsole(ctx context.Context) *consoleLog {
	cl := &consoleLog{}
	msgs := chromedp.Console(ctx)
	go func() {
		for m, err := range msgs {
			if err != nil {
				return
			}
			cl.mu.Lock()
			cl.msgs = append(cl.msgs, m)
			cl.mu.Unlock()
		}
	}()
	return cl
}

// errors returns the console errors and uncaught exceptions seen so far.
func (cl *consoleLog) errors() []string {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	var out []string
	for _, m := range cl.msgs {
		if m.Type == chromedp.ConsoleError || m.IsException() {
			out = append(out, fmt.Sprintf("%s (%s:%d)", m, m.URL, m.Line))
		}
	}
	return out
}

// waitJS waits for a JavaScript expression to be truthy, at most d.
func waitJS(t *testing.T, ctx context.Context, what, expr string, d time.Duration) {
	t.Helper()
	_, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](expr,
		chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(d)))
	if err != nil {
		text, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.getElementById("app").innerText.slice(0, 2000)`))
		t.Fatalf("waiting for %s (%s): %v\npage text:\n%s", what, expr, err, text)
	}
}

// clickJS clicks the element matching sel from inside the page, retrying
// until it exists: the clients table is re-rendered every second, so a node
// found by one protocol call may be gone by the next.
func clickJS(t *testing.T, ctx context.Context, what, sel string) {
	t.Helper()
	waitJS(t, ctx, "a click on "+what, `(() => { const e = document.querySelector(`+"`"+sel+"`"+`); if (!e) return false; e.click(); return true; })()`, 5*time.Second)
}

func TestDashboardInBrowser(t *testing.T) {
	ctx := newBrowser(t)
	b := runBroker(t, nil)
	s := runAdmin(t, b.Server, admin.Options{Token: "dash-token"})

	// Clients of a small home: sensors publishing, a dashboard reading.
	type client struct {
		id, user string
		subs     []string
	}
	clients := []client{
		{"thermostat-hall", "house", []string{"home/+/setpoint", "home/mode"}},
		{"sensor-kitchen", "house", nil},
		{"sensor-garden", "house", nil},
		{"grafana-bridge", "metrics", []string{"home/#", "$SYS/#"}},
		{"phone-anna", "anna", []string{"home/+/temperature", "home/alarm", "home/mode"}},
	}
	conns := map[string]*mqttClient{}
	for _, c := range clients {
		m := dialMQTT(t, b.Addr, &packet.Connect{CleanStart: true, ClientID: c.id, KeepAlive: 60, UsernameFlag: true, Username: c.user})
		for _, f := range c.subs {
			m.subscribe(f, 1)
		}
		conns[c.id] = m
	}
	b.Publish("home/mode", []byte("away"), 1, true)
	b.Publish("home/hall/setpoint", []byte("20.5"), 1, true)

	// Traffic for the charts: the garden sensor publishes QoS 0 at a
	// varying rate until the test ends. Raw writes, no reads needed.
	stop := make(chan struct{})
	done := make(chan struct{})
	go publishLoop(conns["sensor-garden"].nc, stop, done)
	t.Cleanup(func() { close(stop); <-done })

	console := watchConsole(ctx)
	if err := chromedp.Do(ctx, chromedp.Navigate(s.URL+"/")); err != nil {
		t.Fatalf("navigate: %v", err)
	}

	// Sign in with the token.
	waitJS(t, ctx, "the sign-in form", `!document.getElementById("login").hidden`, 5*time.Second)
	if err := chromedp.Do(ctx,
		chromedp.SendKeys(chromedp.ID("token"), "dash-token"),
		chromedp.Click(chromedp.ID("login-submit")),
	); err != nil {
		t.Fatalf("sign in: %v", err)
	}
	waitJS(t, ctx, "the dashboard", `!document.getElementById("app").hidden`, 5*time.Second)
	if tok, err := chromedp.Run(ctx, chromedp.Evaluate[string](`sessionStorage.getItem("gannet.admin.token")`)); err != nil || tok != "dash-token" {
		t.Errorf("token in sessionStorage: %q, %v", tok, err)
	}

	// The connection count is the clients opened.
	want := fmt.Sprint(len(clients))
	waitJS(t, ctx, "connections = "+want, `document.getElementById("stat-connections").textContent === "`+want+`"`, 5*time.Second)
	waitJS(t, ctx, "the clients table", `document.querySelectorAll("#clients-body tr[data-client]").length === `+want, 5*time.Second)
	waitJS(t, ctx, "the busiest topics", `document.querySelector("#topics-body td") && document.querySelector("#topics-body td").textContent === "home/mode"`, 8*time.Second)

	// Search narrows the table.
	if err := chromedp.Do(ctx, chromedp.SendKeys(chromedp.ID("client-search"), "sensor")); err != nil {
		t.Fatalf("search: %v", err)
	}
	waitJS(t, ctx, "search results", `[...document.querySelectorAll("#clients-body tr[data-client]")].map(r => r.dataset.client).join() === "sensor-garden,sensor-kitchen"`, 5*time.Second)

	// Disconnect a client from its row.
	clickJS(t, ctx, "disconnect sensor-kitchen", `button[data-action="disconnect"][data-client="sensor-kitchen"]`)
	conns["sensor-kitchen"].waitClosed()
	eventually(t, "sensor-kitchen disconnected", func() bool {
		for _, ci := range b.Clients() {
			if ci.ClientID == "sensor-kitchen" && ci.Connected {
				return false
			}
		}
		return true
	})
	want = fmt.Sprint(len(clients) - 1)
	waitJS(t, ctx, "connections = "+want, `document.getElementById("stat-connections").textContent === "`+want+`"`, 5*time.Second)

	// Publish from the form, retained.
	if err := chromedp.Do(ctx,
		chromedp.Evaluate[chromedp.Void](clearSearch),
		chromedp.SendKeys(chromedp.ID("pub-topic"), "home/alarm"),
		chromedp.SendKeys(chromedp.ID("pub-payload"), "armed"),
		chromedp.Click(chromedp.ID("pub-retain")),
		chromedp.Click(chromedp.ID("pub-submit")),
	); err != nil {
		t.Fatalf("publish form: %v", err)
	}
	waitJS(t, ctx, "the publish result", `document.getElementById("pub-result").textContent.startsWith("Published 5 bytes to home/alarm")`, 5*time.Second)
	if m, err := b.Retained("home/alarm"); err != nil || len(m) != 1 || string(m[0].Payload) != "armed" {
		t.Errorf("retained home/alarm after the form: %+v, %v", m, err)
	}
	if p := conns["phone-anna"].receiveTopic("home/alarm"); p.Topic != "home/alarm" || string(p.Payload) != "armed" {
		t.Errorf("phone-anna received %s %q, want home/alarm armed", p.Topic, p.Payload)
	}

	// The charts have drawn something.
	waitJS(t, ctx, "a drawn chart", `(() => {
		const c = document.getElementById("chart-messages");
		const d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
		for (let i = 3; i < d.length; i += 4) if (d[i] !== 0) return true;
		return false;
	})()`, 5*time.Second)

	// A screenshot: always into the test's directory, and into
	// docs/dashboard.png with GANNET_SCREENSHOT=1, after some history.
	shot := os.Getenv("GANNET_SCREENSHOT") != ""
	if shot {
		time.Sleep(18 * time.Second) // chart history
	}
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	path := filepath.Join(t.TempDir(), "dashboard.png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	if shot {
		docs := filepath.Join("..", "docs", "dashboard.png")
		if err := os.WriteFile(docs, png, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("screenshot written to %s", docs)
	}

	// A client's details list its subscriptions.
	clickJS(t, ctx, "thermostat-hall's id", `tr[data-client="thermostat-hall"] button.link`)
	waitJS(t, ctx, "the client's details", `!document.getElementById("client-detail").hidden &&
		document.getElementById("detail-subs").textContent.includes("home/+/setpoint")`, 5*time.Second)

	// Ending a session takes a second click.
	const endSession = `button[data-action="discard"][data-client="grafana-bridge"]`
	clickJS(t, ctx, "end session", endSession)
	waitJS(t, ctx, "the confirmation", `document.querySelector('button[data-action="discard"][data-client="grafana-bridge"]').textContent === "Confirm?"`, 5*time.Second)
	if _, _, ok := b.Client("grafana-bridge"); !ok {
		t.Fatal("one click on End session ended the session")
	}
	clickJS(t, ctx, "confirm end session", endSession)
	conns["grafana-bridge"].waitClosed()
	eventually(t, "grafana-bridge's session to end", func() bool { _, _, ok := b.Client("grafana-bridge"); return !ok })
	waitJS(t, ctx, "grafana-bridge gone from the table", `!document.querySelector('tr[data-client="grafana-bridge"]')`, 5*time.Second)

	if errs := console.errors(); len(errs) > 0 {
		t.Errorf("console errors:\n%s", strings.Join(errs, "\n"))
	}
}

// TestDashboardSignInRefused checks that a wrong token leaves the page on
// the sign-in form with a message, and that nothing but that 401 reaches
// the console.
func TestDashboardSignInRefused(t *testing.T) {
	ctx := newBrowser(t)
	b := runBroker(t, nil)
	s := runAdmin(t, b.Server, admin.Options{Token: "right"})
	console := watchConsole(ctx)
	if err := chromedp.Do(ctx, chromedp.Navigate(s.URL+"/")); err != nil {
		t.Fatalf("navigate: %v", err)
	}
	waitJS(t, ctx, "the sign-in form", `!document.getElementById("login").hidden`, 5*time.Second)
	if err := chromedp.Do(ctx,
		chromedp.SendKeys(chromedp.ID("token"), "wrong"),
		chromedp.Click(chromedp.ID("login-submit")),
	); err != nil {
		t.Fatalf("sign in: %v", err)
	}
	waitJS(t, ctx, "the refusal", `document.getElementById("login-error").textContent.includes("refused")`, 5*time.Second)
	if hidden, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.getElementById("app").hidden`)); err != nil || !hidden {
		t.Errorf("dashboard shown after a refused token (hidden=%v, %v)", hidden, err)
	}
	for _, e := range console.errors() {
		// The browser logs the refused request itself; nothing else.
		if !strings.Contains(e, "401") {
			t.Errorf("console error: %s", e)
		}
	}
}

// clearSearch empties the clients' search field as typing would.
const clearSearch = `(() => {
	const e = document.getElementById("client-search");
	e.value = "";
	e.dispatchEvent(new Event("input"));
})()`

// publishLoop writes QoS 0 PUBLISH packets to nc at a rate that rises and
// falls, until stop is closed.
func publishLoop(nc net.Conn, stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	start := time.Now()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for n := 0; ; n++ {
		select {
		case <-stop:
			return
		case <-tick.C:
		}
		// 1 to 6 messages per tick (50 to 300/s) in waves of 10 s, and a
		// burst now and then.
		k := 1 + int(2.5+2.5*math.Sin(time.Since(start).Seconds()*2*math.Pi/10))
		if n%97 == 0 {
			k += 4
		}
		var buf []byte
		for i := range k {
			p := &packet.Publish{Topic: fmt.Sprintf("home/garden/%s", [...]string{"temperature", "humidity", "soil"}[(n+i)%3]), Payload: []byte(fmt.Sprint(18 + n%7))}
			buf, _ = p.Append(buf, packet.V311)
		}
		if len(buf) == 0 {
			continue
		}
		nc.SetWriteDeadline(time.Now().Add(time.Second))
		if _, err := nc.Write(buf); err != nil {
			return
		}
	}
}
