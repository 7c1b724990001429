package bridge

import (
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/gannet-mqtt/gannet/broker"
)

// ErrUnknownBridge: no bridge has that name.
var ErrUnknownBridge = errors.New("bridge: no such bridge")

// Manager runs the bridges of one broker and applies new configurations
// (on reload) as a diff: bridges added start, removed ones stop, changed
// ones restart, the others and every client connection are untouched.
type Manager struct {
	srv  *broker.Server
	log  *slog.Logger
	pipe *pipeListener

	mu      sync.Mutex // held while applying; guards bridges
	bridges map[string]*Bridge
	closed  bool
}

// NewManager serves an in-process listener on srv for the bridges' local
// clients and returns a manager with no bridge; Apply starts them.
func NewManager(srv *broker.Server, log *slog.Logger) *Manager {
	if log == nil {
		log = slog.Default()
	}
	m := &Manager{srv: srv, log: log, pipe: newPipeListener(), bridges: map[string]*Bridge{}}
	go func() {
		err := srv.ServeListener(m.pipe, broker.ListenerOptions{Name: "bridge", Anonymous: broker.AnonymousAllow,
			MaxInflight: localReceiveMaximum})
		if err != nil && !errors.Is(err, broker.ErrServerClosed) {
			m.mu.Lock()
			closed := m.closed
			m.mu.Unlock()
			if !closed {
				log.Error("bridges: the in-process listener ended", "error", err)
			}
		}
	}()
	return m
}

// Apply makes the running bridges those of cfgs. Every configuration is
// validated first: on any error nothing changes.
func (m *Manager) Apply(cfgs []Config) error {
	var errs []error
	names := map[string]bool{}
	for i := range cfgs {
		if err := cfgs[i].Validate(); err != nil {
			errs = append(errs, err)
		}
		if names[cfgs[i].Name] {
			errs = append(errs, fmt.Errorf("bridge %q: defined twice", cfgs[i].Name))
		}
		names[cfgs[i].Name] = true
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return errors.New("bridge: manager closed")
	}
	for name, b := range m.bridges {
		if !names[name] {
			m.log.Info("bridge removed", "bridge", name)
			b.stop()
			delete(m.bridges, name)
		}
	}
	for _, c := range cfgs {
		if b, ok := m.bridges[c.Name]; ok {
			if reflect.DeepEqual(b.cfg, c.withDefaults()) {
				continue
			}
			m.log.Info("bridge changed, restarting it", "bridge", c.Name)
			b.stop()
			delete(m.bridges, c.Name)
		}
		b, err := start(c, m.srv, m.pipe, m.log)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		m.bridges[c.Name] = b
	}
	return errors.Join(errs...)
}

// Bridges describes every bridge, by name.
func (m *Manager) Bridges() []Info {
	m.mu.Lock()
	list := make([]*Bridge, 0, len(m.bridges))
	for _, b := range m.bridges {
		list = append(list, b)
	}
	m.mu.Unlock()
	out := make([]Info, len(list))
	for i, b := range list {
		out[i] = b.Info()
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Restart drops a bridge's remote connection and connects it again.
func (m *Manager) Restart(name string) error {
	m.mu.Lock()
	b := m.bridges[name]
	m.mu.Unlock()
	if b == nil {
		return fmt.Errorf("%w: %q", ErrUnknownBridge, name)
	}
	b.Restart()
	return nil
}

// PublishSys publishes each bridge's state and counters, retained, under
// $SYS/broker/bridges/<name>/: state, address, queued, sent, received,
// dropped.
func (m *Manager) PublishSys() {
	for _, in := range m.Bridges() {
		p := "$SYS/broker/bridges/" + in.Name + "/"
		for k, v := range map[string]string{
			"state": string(in.State), "address": in.Address, "queued": strconv.Itoa(in.Queued),
			"sent": strconv.FormatUint(in.Sent, 10), "received": strconv.FormatUint(in.Received, 10),
			"dropped": strconv.FormatUint(in.Dropped, 10),
		} {
			m.srv.Publish(p+k, []byte(v), 0, true)
		}
	}
}

// StartSys calls PublishSys every interval until Close (0: never).
func (m *Manager) StartSys(interval time.Duration) {
	if interval <= 0 {
		return
	}
	go func() {
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-m.pipe.done:
				return
			case <-t.C:
				m.PublishSys()
			}
		}
	}()
}

// Close stops every bridge. Call it before closing the broker.
func (m *Manager) Close() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return
	}
	m.closed = true
	for name, b := range m.bridges {
		b.stop()
		delete(m.bridges, name)
	}
	m.pipe.Close()
}
