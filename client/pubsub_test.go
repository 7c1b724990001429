package client_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/gannet-mqtt/gannet/broker"
	"github.com/gannet-mqtt/gannet/client"
	"github.com/gannet-mqtt/gannet/packet"
)

var versions = []struct {
	name string
	v    byte
}{{"3.1.1", packet.V311}, {"5.0", packet.V5}}

func TestConnect(t *testing.T) {
	forEachBroker(t, func(t *testing.T, b target) {
		for _, v := range []struct {
			name string
			v    byte
		}{{"3.1", packet.V31}, {"3.1.1", packet.V311}, {"5.0", packet.V5}} {
			t.Run(v.name, func(t *testing.T) {
				o := options(b.url, v.v)
				o.ClientID = "connect-" + strings.ReplaceAll(v.name, ".", "")
				c := dial(t, o)
				if !c.IsConnected() {
					t.Fatal("not connected after Dial")
				}
				if ack := c.Connack(); ack == nil || ack.ReasonCode != packet.Success {
					t.Fatalf("CONNACK %+v", ack)
				}
				if err := c.Disconnect(testCtx(t), packet.Success); err != nil {
					t.Fatalf("disconnect: %v", err)
				}
				select {
				case <-c.Done():
				default:
					t.Fatal("Done not closed after Disconnect")
				}
				if !errors.Is(c.Err(), client.ErrClosed) {
					t.Fatalf("Err after Disconnect = %v, want ErrClosed", c.Err())
				}
				if err := c.Publish(testCtx(t), "a", nil, client.PublishOptions{}); !errors.Is(err, client.ErrClosed) {
					t.Fatalf("publish after Disconnect: %v, want ErrClosed", err)
				}
			})
		}
	})
}

func TestAssignedClientID(t *testing.T) {
	forEachBroker(t, func(t *testing.T, b target) {
		c := dial(t, options(b.url, packet.V5))
		if c.ClientID() == "" {
			t.Fatal("no client identifier assigned by the server")
		}
	})
}

// TestPubSub round-trips messages at every QoS and protocol level,
// publisher and subscriber each at each QoS.
func TestPubSub(t *testing.T) {
	forEachBroker(t, func(t *testing.T, b target) {
		for _, v := range versions {
			t.Run(v.name, func(t *testing.T) {
				sub := dial(t, options(b.url, v.v))
				pub := dial(t, options(b.url, v.v))
				for subQoS := byte(0); subQoS <= 2; subQoS++ {
					in := newInbox()
					filter := topicFor(t, fmt.Sprintf("sub%d/+", subQoS))
					subscribe(t, sub, in, filter, subQoS)
					for pubQoS := byte(0); pubQoS <= 2; pubQoS++ {
						name := strings.TrimSuffix(filter, "+") + fmt.Sprint(pubQoS)
						payload := fmt.Sprintf("qos %d to %d", pubQoS, subQoS)
						publish(t, pub, name, payload, client.PublishOptions{QoS: pubQoS})
						m := in.expect(t, name, payload)
						if want := min(pubQoS, subQoS); m.QoS != want {
							t.Errorf("%s: received at QoS %d, want %d", payload, m.QoS, want)
						}
						if m.Retain || m.Dup {
							t.Errorf("%s: retain %v dup %v, want neither", payload, m.Retain, m.Dup)
						}
					}
				}
			})
		}
	})
}

func TestRetained(t *testing.T) {
	forEachBroker(t, func(t *testing.T, b target) {
		for _, v := range versions {
			t.Run(v.name, func(t *testing.T) {
				pub := dial(t, options(b.url, v.v))
				name := topicFor(t, "r")
				publish(t, pub, name, "kept", client.PublishOptions{QoS: 1, Retain: true})

				sub := dial(t, options(b.url, v.v))
				in := newInbox()
				subscribe(t, sub, in, name, 1)
				if m := in.expect(t, name, "kept"); !m.Retain {
					t.Error("retained message delivered without RETAIN")
				}
				// On an established subscription RETAIN is 0 [MQTT-3.3.1-9].
				publish(t, pub, name, "live", client.PublishOptions{QoS: 1, Retain: true})
				if m := in.expect(t, name, "live"); m.Retain {
					t.Error("live message delivered with RETAIN")
				}
				// An empty retained message clears it.
				publish(t, pub, name, "", client.PublishOptions{QoS: 1, Retain: true})
				in.expect(t, name, "")
				sub2 := dial(t, options(b.url, v.v))
				in2 := newInbox()
				subscribe(t, sub2, in2, name, 1)
				marker := name + "/marker"
				subscribe(t, sub2, in2, marker, 1)
				publish(t, pub, marker, "barrier", client.PublishOptions{QoS: 1})
				in2.expect(t, marker, "barrier") // nothing retained came first
			})
		}
	})
}

func TestWill(t *testing.T) {
	forEachBroker(t, func(t *testing.T, b target) {
		for _, v := range versions {
			t.Run(v.name, func(t *testing.T) {
				name := topicFor(t, "will")
				watcher := dial(t, options(b.url, v.v))
				in := newInbox()
				subscribe(t, watcher, in, name, 1)

				o := options(b.url, v.v)
				o.Will = &client.Will{Topic: name, Payload: []byte("gone"), QoS: 1}
				c := dial(t, o)
				c.Close() // a network failure to the server
				m := in.expect(t, name, "gone")
				if m.QoS != 1 {
					t.Errorf("will QoS %d, want 1", m.QoS)
				}

				// A normal DISCONNECT discards the will [MQTT-3.14.4-3].
				c = dial(t, o)
				if err := c.Disconnect(testCtx(t), packet.Success); err != nil {
					t.Fatal(err)
				}
				marker := name + "/marker"
				subscribe(t, watcher, in, marker, 1)
				publish(t, watcher, marker, "barrier", client.PublishOptions{QoS: 1})
				in.expect(t, marker, "barrier")
				in.none(t)
			})
		}
	})
}

func TestUnsubscribe(t *testing.T) {
	forEachBroker(t, func(t *testing.T, b target) {
		for _, v := range versions {
			t.Run(v.name, func(t *testing.T) {
				c := dial(t, options(b.url, v.v))
				in := newInbox()
				gone, kept := topicFor(t, "gone"), topicFor(t, "kept")
				subscribe(t, c, in, gone, 1)
				subscribe(t, c, in, kept, 1)
				publish(t, c, gone, "1", client.PublishOptions{QoS: 1})
				in.expect(t, gone, "1")
				codes, err := c.Unsubscribe(testCtx(t), gone)
				if err != nil || len(codes) != 1 || codes[0] != packet.Success {
					t.Fatalf("unsubscribe: %v %v", codes, err)
				}
				publish(t, c, gone, "2", client.PublishOptions{QoS: 1})
				publish(t, c, kept, "barrier", client.PublishOptions{QoS: 1})
				in.expect(t, kept, "barrier")
				if v.v >= packet.V5 {
					codes, err := c.Unsubscribe(testCtx(t), gone)
					if err != nil || len(codes) != 1 || codes[0] != packet.NoSubscriptionExisted {
						t.Fatalf("second unsubscribe: %v %v, want 0x11", codes, err)
					}
				}
			})
		}
	})
}

// TestOrder checks that messages reach the handler in the order they were
// published, across QoS levels and overlapping subscriptions.
func TestOrder(t *testing.T) {
	forEachBroker(t, func(t *testing.T, b target) {
		c := dial(t, options(b.url, packet.V5))
		in := newInbox()
		name := topicFor(t, "seq")
		subscribe(t, c, in, name, 1)
		const n = 300
		errs := make(chan error, 1)
		go func() {
			for i := range n {
				if err := c.Publish(testCtx(t), name, []byte(fmt.Sprint(i)), client.PublishOptions{QoS: 1}); err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
		for i := range n {
			in.expect(t, name, fmt.Sprint(i))
		}
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	})
}

func TestOverlappingHandlers(t *testing.T) {
	g := runGannet(t, nil)
	c := dial(t, options(g.url(), packet.V5))
	a, b := newInbox(), newInbox()
	subscribe(t, c, a, "o/+", 0)
	subscribe(t, c, b, "o/#", 0)
	publish(t, c, "o/x", "both", client.PublishOptions{})
	a.expect(t, "o/x", "both")
	b.expect(t, "o/x", "both")
}

func TestChanAndDefaultHandler(t *testing.T) {
	g := runGannet(t, nil)
	fallback := newInbox()
	o := options(g.url(), packet.V311)
	o.OnMessage = fallback.handler
	c := dial(t, o)
	ch := make(chan *client.Message, 4)
	if _, err := c.Subscribe(testCtx(t), client.Subscription{Filter: "ch/a", QoS: 1, Chan: ch}, client.Subscription{Filter: "ch/b", QoS: 1}); err != nil {
		t.Fatal(err)
	}
	publish(t, c, "ch/a", "to chan", client.PublishOptions{QoS: 1})
	publish(t, c, "ch/b", "to fallback", client.PublishOptions{QoS: 1})
	select {
	case m := <-ch:
		if m.Topic != "ch/a" || string(m.Payload) != "to chan" {
			t.Fatalf("chan got %q %q", m.Topic, m.Payload)
		}
	case <-time.After(waitFor):
		t.Fatal("nothing on the channel")
	}
	fallback.expect(t, "ch/b", "to fallback")
}

// TestHandlerAckAfterReturn checks that a QoS 1 message is acknowledged
// only after its handler returns, and that a handler may publish and
// disconnect.
func TestHandlerCallsClient(t *testing.T) {
	g := runGannet(t, nil)
	c := dial(t, options(g.url(), packet.V5))
	in := newInbox()
	subscribe(t, c, in, "echo/out", 1)
	if _, err := c.Subscribe(testCtx(t), client.Subscription{Filter: "echo/in", QoS: 1, Handler: func(m *client.Message) {
		if err := c.Publish(testCtx(t), "echo/out", m.Payload, client.PublishOptions{QoS: 1}); err != nil {
			t.Errorf("publish from handler: %v", err)
		}
	}}); err != nil {
		t.Fatal(err)
	}
	publish(t, c, "echo/in", "ping", client.PublishOptions{QoS: 1})
	in.expect(t, "echo/out", "ping")

	done := make(chan error, 1)
	if _, err := c.Subscribe(testCtx(t), client.Subscription{Filter: "bye", Handler: func(*client.Message) {
		done <- c.Disconnect(testCtx(t), packet.Success)
	}}); err != nil {
		t.Fatal(err)
	}
	publish(t, c, "bye", "", client.PublishOptions{})
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("disconnect from handler: %v", err)
		}
	case <-time.After(waitFor):
		t.Fatal("Disconnect from a handler did not return")
	}
}

func TestSubscribeRefused(t *testing.T) {
	o := broker.DefaultOptions()
	o.MaxTopicLevels = 2
	g := runGannet(t, &o)
	for _, v := range versions {
		t.Run(v.name, func(t *testing.T) {
			c := dial(t, options(g.url(), v.v))
			codes, err := c.Subscribe(testCtx(t), client.Subscription{Filter: "ok/x", QoS: 1}, client.Subscription{Filter: "too/many/levels", QoS: 1})
			var re *client.ReasonError
			if !errors.As(err, &re) || !re.Code.IsError() {
				t.Fatalf("err = %v, want a *ReasonError", err)
			}
			if !strings.Contains(err.Error(), "too/many/levels") {
				t.Errorf("error %q does not name the filter", err)
			}
			if len(codes) != 2 || codes[0] != packet.GrantedQoS1 || !codes[1].IsError() {
				t.Fatalf("codes %v", codes)
			}
		})
	}
}

func TestConnackRefused(t *testing.T) {
	g := runGannet(t, nil)
	o := options(g.url(), packet.V31)
	o.ClientID = strings.Repeat("x", 24) // over 3.1's 23
	_, err := client.Dial(testCtx(t), o)
	var ce *client.ConnackError
	if !errors.As(err, &ce) || ce.Code != packet.ClientIdentifierNotValid {
		t.Fatalf("err = %v, want *ConnackError with client identifier not valid", err)
	}
	if !strings.Contains(err.Error(), g.Addr) {
		t.Errorf("error %q does not name the server", err)
	}
}

func TestDialRefused(t *testing.T) {
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	_, err := client.Dial(testCtx(t), options("mqtt://"+addr, packet.V5))
	if err == nil || !isConnRefused(err) {
		t.Fatalf("err = %v, want a network error", err)
	}
	var ce *client.ConnackError
	if errors.As(err, &ce) {
		t.Fatalf("a refused dial is not a CONNACK refusal: %v", err)
	}
}

func TestConnectTimeout(t *testing.T) {
	fs := newFakeServer(t) // accepts, never answers CONNECT
	o := options(fs.url(), packet.V5)
	o.ConnectTimeout = 300 * time.Millisecond
	start := time.Now()
	_, err := client.Dial(context.Background(), o)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want deadline exceeded", err)
	}
	if d := time.Since(start); d > waitFor {
		t.Fatalf("took %v", d)
	}
}

func TestOptionsValidate(t *testing.T) {
	o := client.Options{
		Server:    "http://x",
		Version:   7,
		KeepAlive: -1,
		Will:      &client.Will{Topic: "a/#", QoS: 3},
	}
	err := o.Validate()
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{"scheme", "protocol version", "keep alive", "will topic", "will QoS"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}

func TestPublishInvalid(t *testing.T) {
	g := runGannet(t, nil)
	c := dial(t, options(g.url(), packet.V311))
	for _, name := range []string{"", "a/+", "a/#"} {
		if err := c.Publish(testCtx(t), name, nil, client.PublishOptions{}); !errors.Is(err, client.ErrInvalidTopic) {
			t.Errorf("publish to %q: %v, want ErrInvalidTopic", name, err)
		}
	}
	if _, err := c.Subscribe(testCtx(t), client.Subscription{Filter: "a/#/b"}); !errors.Is(err, client.ErrInvalidTopic) {
		t.Errorf("subscribe a/#/b: %v", err)
	}
	if _, err := c.Subscribe(testCtx(t), client.Subscription{Filter: "a", NoLocal: true}); err == nil {
		t.Error("no local accepted at 3.1.1")
	}
}
