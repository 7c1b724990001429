package broker

import (
	"math"
	"strconv"
	"time"
)

// The $SYS topics, under the names Mosquitto uses, published as retained
// messages every Options.SysInterval. Filters starting with a wildcard do
// not see them [MQTT-4.7.2-1]; subscribe to "$SYS/#".

// load is an exponentially weighted moving average of a per-minute rate,
// as Mosquitto's $SYS/broker/load/... topics report.
type load struct {
	avg  [3]float64 // 1, 5 and 15 minutes
	last uint64
}

var loadWindows = [3]float64{60, 300, 900}

func (l *load) update(total uint64, interval time.Duration) {
	perMin := float64(total-l.last) * 60 / interval.Seconds()
	l.last = total
	for i, w := range loadWindows {
		k := math.Exp(-interval.Seconds() / w)
		l.avg[i] = l.avg[i]*k + perMin*(1-k)
	}
}

// sysLoop publishes $SYS topics until stop is closed.
func (s *Server) sysLoop(version string, stop <-chan struct{}) {
	interval := s.opt().SysInterval
	t := time.NewTicker(interval)
	defer t.Stop()
	var recv, sent, bin, bout, conns load
	s.publishSys("$SYS/broker/version", "gannet "+version)
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		st := s.Stats()
		recv.update(st.Received, interval)
		sent.update(st.Sent, interval)
		bin.update(st.BytesReceived, interval)
		bout.update(st.BytesSent, interval)
		conns.update(st.Accepted, interval)
		u := func(v uint64) string { return strconv.FormatUint(v, 10) }
		i := func(v int64) string { return strconv.FormatInt(v, 10) }
		s.publishSys("$SYS/broker/uptime", i(int64(st.Uptime/time.Second))+" seconds")
		s.publishSys("$SYS/broker/clients/connected", i(st.Connections))
		s.publishSys("$SYS/broker/clients/active", i(st.Connections))
		s.publishSys("$SYS/broker/clients/total", i(int64(st.Sessions)))
		s.publishSys("$SYS/broker/clients/disconnected", i(int64(st.Sessions)-st.Connections))
		s.publishSys("$SYS/broker/clients/maximum", i(st.MaxConnections))
		s.publishSys("$SYS/broker/messages/received", u(st.Received))
		s.publishSys("$SYS/broker/messages/sent", u(st.Sent))
		s.publishSys("$SYS/broker/publish/messages/dropped", u(st.DroppedQueue+st.DroppedSlow+st.DroppedTooLarge))
		s.publishSys("$SYS/broker/subscriptions/count", i(int64(st.Subscriptions)))
		s.publishSys("$SYS/broker/retained messages/count", i(int64(st.Retained)))
		s.publishSys("$SYS/broker/bytes/received", u(st.BytesReceived))
		s.publishSys("$SYS/broker/bytes/sent", u(st.BytesSent))
		// As Mosquitto names it; here the memory the Go runtime holds in
		// use (heap objects, stacks, runtime structures), not what it has
		// freed: "gannet bench conn --memory-topic" reads it.
		s.publishSys("$SYS/broker/heap/current", u(memInUse()))
		s.publishClusterSys() // clusterops.go
		for k, name := range []string{"1min", "5min", "15min"} {
			f := func(v float64) string { return strconv.FormatFloat(v, 'f', 2, 64) }
			s.publishSys("$SYS/broker/load/messages/received/"+name, f(recv.avg[k]))
			s.publishSys("$SYS/broker/load/messages/sent/"+name, f(sent.avg[k]))
			s.publishSys("$SYS/broker/load/bytes/received/"+name, f(bin.avg[k]))
			s.publishSys("$SYS/broker/load/bytes/sent/"+name, f(bout.avg[k]))
			s.publishSys("$SYS/broker/load/connections/"+name, f(conns.avg[k]))
		}
	}
}

// publishSys publishes one retained $SYS value, like Mosquitto.
func (s *Server) publishSys(topic, value string) {
	s.Publish(topic, []byte(value), 0, true)
}
