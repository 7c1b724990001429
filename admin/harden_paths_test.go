package admin_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/gannet-mqtt/gannet/admin"
)

// Issue 16 point 8: a path with an empty, "." or ".." segment is refused
// with 400, not redirected to its cleaned form: a client following the
// redirect would delete retained a/b for a//b, x for //x, t/u for t/./u.
// Topics with such levels are reached percent-encoded or with ?topic=.
func TestNonCanonicalPathsRefused(t *testing.T) {
	b := runBroker(t, nil)
	s := runAdmin(t, b.Server, admin.Options{Token: "tok"})
	for _, topic := range []string{"a/b", "x", "t/u", "a//b"} {
		b.Publish(topic, []byte("keep"), 0, true)
	}
	for _, path := range []string{
		"/api/v1/retained/a//b",
		"/api/v1/retained//x",
		"/api/v1/retained/t/./u",
		"/api/v1/retained/t/v/../u",
	} {
		r := s.request("DELETE", path, nil)
		expect(t, r, http.StatusBadRequest, "DELETE "+path)
	}
	for _, path := range []string{"//api/v1/stats", "/api/v1/./stats", "/api//v1/clients"} {
		expect(t, s.request("GET", path, nil), http.StatusBadRequest, "GET "+path)
	}
	for _, topic := range []string{"a/b", "x", "t/u"} {
		if m, err := b.Retained(topic); err != nil || len(m) != 1 {
			t.Errorf("retained %s after the refused deletes: %v, %v", topic, m, err)
		}
	}
	// The topic a//b itself, percent-encoded or in the query.
	expect(t, s.request("DELETE", "/api/v1/retained/a%2F%2Fb", nil), http.StatusOK, "DELETE a%2F%2Fb")
	expect(t, s.request("DELETE", "/api/v1/retained?topic=x", nil), http.StatusOK, "DELETE ?topic=x")
	if m, _ := b.Retained("a//b"); len(m) != 0 {
		t.Errorf("a//b still retained after its encoded delete")
	}
	if m, _ := b.Retained("a/b"); len(m) != 1 {
		t.Errorf("a/b deleted by the delete of a//b")
	}
}

// Issue 16 point 8: clients whose identifiers are "." and ".." can be
// shown and disconnected, through the API (?id=) and from the dashboard in
// a real browser, whose URL parser drops such path segments.
func TestDotClientIDsDisconnect(t *testing.T) {
	b := runBroker(t, nil)
	s := runAdmin(t, b.Server, admin.Options{Token: "tok"})
	dot := connect(t, b.Addr, ".")
	expect(t, s.request("GET", "/api/v1/clients?id=.", nil), http.StatusOK, "GET ?id=.")
	expect(t, s.request("GET", "/api/v1/clients/%2E", nil), http.StatusOK, "GET /clients/%2E")
	expect(t, s.request("DELETE", "/api/v1/clients?id=.", nil), http.StatusOK, "DELETE ?id=.")
	dot.waitClosed()
	expect(t, s.request("DELETE", "/api/v1/clients?id=nobody", nil), http.StatusNotFound, "DELETE ?id=nobody")
	expect(t, s.request("DELETE", "/api/v1/clients", nil), http.StatusBadRequest, "DELETE without id")
}

func TestDashboardDisconnectsDotClients(t *testing.T) {
	ctx := newBrowser(t)
	b := runBroker(t, nil)
	s := runAdmin(t, b.Server, admin.Options{})
	conns := map[string]*mqttClient{}
	for _, id := range []string{".", "..", "plain"} {
		conns[id] = connect(t, b.Addr, id)
	}
	console := watchConsole(ctx)
	if err := chromedp.Do(ctx, chromedp.Navigate(s.URL+"/")); err != nil {
		t.Fatalf("navigate: %v", err)
	}
	waitJS(t, ctx, "the clients table", `document.querySelectorAll("#clients-body tr[data-client]").length === 3`, 5*time.Second)
	for _, id := range []string{".", ".."} {
		clickJS(t, ctx, "disconnect "+id, `button[data-action="disconnect"][data-client="`+id+`"]`)
		conns[id].waitClosed()
		// The details of a client named ".." open too.
	}
	eventually(t, "both dot clients offline", func() bool {
		for _, ci := range b.Clients() {
			if (ci.ClientID == "." || ci.ClientID == "..") && ci.Connected {
				return false
			}
		}
		return true
	})
	for _, ci := range b.Clients() {
		if ci.ClientID == "plain" && !ci.Connected {
			t.Error("client plain disconnected too")
		}
	}
	if errs := console.errors(); len(errs) > 0 {
		t.Errorf("console errors: %v", errs)
	}
}
