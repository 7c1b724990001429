package main

import (
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"strconv"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/gannet-mqtt/gannet/bench"
)

func newBenchCmd() *cobra.Command {
	cfg := bench.DefaultConfig()
	var (
		host, protocol, shape string
		idPrefix              string
		port, subPort         int
		subHost               string
		qos                   int
		keepAlive             int
		asJSON, quiet         bool
		transport, cafile     string
		insecure              bool
	)
	cmd := &cobra.Command{
		Use:   "bench [conn|pub|sub|pubsub]",
		Short: "Generate load against an MQTT broker and report throughput and latency",
		Long: `Generate load against an MQTT broker (Gannet or any other) and report
messages per second, connection rate, errors and end-to-end latency
percentiles. The scenario is one of:

  conn    open --clients connections at --conn-rate and hold them for --duration
  pub     --clients publishers publish to --topic; nothing subscribes
  sub     --clients subscribers subscribe to --filter and count what arrives
          (from a "bench pub" elsewhere: latency needs payloads of 8+ bytes)
  pubsub  (the default) publishers and subscribers together, in a --shape:
            pairs    --clients publishers, each with its own subscriber
            fan-in   --clients publishers, one subscriber on a wildcard
            fan-out  one publisher, --clients subscribers
  pingpong one publisher and one subscriber; each message is sent only once
          the previous one arrived and its acknowledgements are done: the
          latency of a broker at rest (--count or --duration)

A conn run can end with a reconnect storm (--reconnect: every connection cut
at once, then all connect again) and report the broker's memory per idle
connection from its own figure (--memory-topic '$SYS/broker/heap/current';
the broker must publish $SYS every second or so).

Every scenario dials over --transport: tcp (the default), tls, ws or wss;
--cafile and --insecure set up TLS as for gannet pub and sub.

In topic templates %i is the client's index. Payloads start with the send
time, so publishers and subscribers must share a clock (same machine).

While running on a terminal a progress line is shown on stderr; the report
goes to stdout, as JSON with --json.`,
		Example: `  gannet bench pubsub -c 8 -q 1 --duration 10s
  gannet bench pubsub --shape fan-out -c 100 --rate 1000 -V 5
  gannet bench conn -c 100000 --conn-rate 5000 --duration 1m --bind 127.0.0.2,127.0.0.3,127.0.0.4,127.0.0.5
  gannet bench pubsub -c 2 -C 1000 --json
  gannet bench pingpong -q 1 -C 20000
  gannet bench conn -c 10000 --persistent --reconnect --memory-topic '$SYS/broker/heap/current' --duration 3s
  gannet bench conn -c 5000 --transport tls -p 8883 --cafile ca.pem --memory-topic '$SYS/broker/heap/current'
  gannet bench conn -c 5000 --transport ws -p 8080 --ws-path /mqtt --memory-topic '$SYS/broker/heap/current'`,
		Args:          cobra.MatchAll(cobra.MaximumNArgs(1), cobra.OnlyValidArgs),
		ValidArgs:     []string{"conn", "pub", "sub", "pubsub", "pingpong"},
		SilenceUsage:  true,
		SilenceErrors: false,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				cfg.Scenario = bench.Scenario(args[0])
			}
			v, err := bench.ParseVersion(protocol)
			if err != nil {
				return err
			}
			cfg.Shape = bench.Shape(shape)
			// As for pub and sub, --cafile and --insecure turn on TLS.
			cfg.Transport = bench.Transport(transport)
			if cafile != "" || insecure {
				switch cfg.Transport {
				case bench.TCP:
					cfg.Transport = bench.TLS
				case bench.WS:
					cfg.Transport = bench.WSS
				}
			}
			if port == 0 {
				port = defaultPort(cfg.Transport)
			}
			cfg.Addr = net.JoinHostPort(host, strconv.Itoa(port))
			if subPort != 0 || subHost != "" {
				if subHost == "" {
					subHost = host
				}
				if subPort == 0 {
					subPort = port
				}
				cfg.SubAddr = net.JoinHostPort(subHost, strconv.Itoa(subPort))
			}
			if cfg.Transport == bench.TLS || cfg.Transport == bench.WSS {
				tf := clientFlags{cafile: cafile, insecure: insecure}
				if cfg.TLSConfig, err = tf.tlsConfig(); err != nil {
					return err
				}
			}
			cfg.Version = v
			if qos < 0 || qos > 2 {
				return fmt.Errorf("--qos %d: use 0, 1 or 2", qos)
			}
			cfg.QoS = byte(qos)
			if keepAlive < 0 || keepAlive > 65535 {
				return fmt.Errorf("--keepalive %d: between 0 and 65535 seconds", keepAlive)
			}
			cfg.KeepAlive = uint16(keepAlive)
			if idPrefix != "" {
				cfg.ClientIDPrefix = idPrefix
			}
			if cfg.Count > 0 && !cmd.Flags().Changed("duration") {
				cfg.Duration = 0 // a count alone runs until it is reached
			}
			if err := cfg.Validate(); err != nil {
				return err
			}

			var progress io.Writer
			if !quiet && isTerminal(os.Stderr) {
				progress = os.Stderr
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			report, err := bench.Run(ctx, cfg, progress)
			if report != nil {
				out := cmd.OutOrStdout()
				var werr error
				if asJSON {
					werr = report.WriteJSON(out)
				} else {
					werr = report.WriteText(out)
				}
				if err == nil {
					err = werr
				}
			}
			return err
		},
	}
	f := cmd.Flags()
	// -h is the host, as for mosquitto_pub; help stays --help.
	f.Bool("help", false, "help for bench")
	f.StringVarP(&host, "host", "h", "127.0.0.1", "broker host")
	f.IntVarP(&port, "port", "p", 0, "broker port (default by transport: 1883 tcp, 8883 tls, 80 ws, 443 wss)")
	f.StringVar(&subHost, "sub-host", "", "subscribers connect to this host instead (another node of a cluster; default: --host)")
	f.IntVar(&subPort, "sub-port", 0, "subscribers connect to this port instead (another node of a cluster; default: --port)")
	f.StringVar(&transport, "transport", "tcp", "how to reach the broker: tcp, tls, ws (WebSocket) or wss (WebSocket over TLS)")
	f.StringVar(&cfg.WSPath, "ws-path", "/mqtt", "ws and wss: the HTTP path of the WebSocket endpoint")
	f.StringVar(&cafile, "cafile", "", "PEM file of the certificate authorities to trust; turns on TLS (tcp becomes tls, ws becomes wss)")
	f.BoolVar(&insecure, "insecure", false, "do not check that the server certificate's host name matches the host\n(the certificate chain is still verified); turns on TLS")
	f.StringSliceVar(&cfg.Bind, "bind", nil, "local IP addresses to connect from, in turn (comma-separated); each adds a range of ~28,000 ephemeral ports")
	f.StringVarP(&protocol, "protocol-version", "V", "3.1.1", "MQTT version: 3.1.1 (mqttv311) or 5 (mqttv5)")
	f.StringVar(&shape, "shape", string(cfg.Shape), "pubsub shape: pairs, fan-in, fan-out")
	f.IntVarP(&cfg.Clients, "clients", "c", cfg.Clients, "clients: connections (conn), publishers (pub, fan-in), subscribers (sub, fan-out), pairs")
	f.IntVar(&cfg.Publishers, "pubs", 0, "publishers of a fan-in or fan-out, overriding what --clients gives")
	f.IntVar(&cfg.Subscribers, "subs", 0, "subscribers of a fan-in or fan-out, overriding what --clients gives")
	f.IntVarP(&qos, "qos", "q", 0, "QoS of publishes and subscriptions: 0, 1 or 2")
	f.StringVarP(&cfg.Topic, "topic", "t", cfg.Topic, "topic template; %i is the publisher's index")
	f.StringVar(&cfg.Filter, "filter", "", "subscription template; %i is the subscriber's index (default: the topic for pairs, the topic with %i as + otherwise)")
	f.IntVarP(&cfg.PayloadSize, "size", "s", cfg.PayloadSize, "payload size in bytes (8 or more to measure latency)")
	f.Float64Var(&cfg.Rate, "rate", 0, "messages per second of each publisher (0: as fast as possible)")
	f.Float64Var(&cfg.TotalRate, "total-rate", 0, "messages per second of all publishers together (instead of --rate)")
	f.IntVarP(&cfg.Count, "count", "C", 0, "messages each publisher sends (sub: each subscriber waits for); 0: until --duration")
	f.DurationVar(&cfg.Duration, "duration", cfg.Duration, "how long to publish, listen or hold connections (with --count: an upper bound)")
	f.IntVar(&cfg.Window, "window", cfg.Window, "unacknowledged QoS 1/2 publishes per publisher")
	f.DurationVar(&cfg.Drain, "drain", cfg.Drain, "longest wait, after publishing, for messages and acknowledgements in flight")
	f.Float64Var(&cfg.ConnRate, "conn-rate", 0, "connections opened per second (0: as fast as possible)")
	f.IntVar(&cfg.ConnConcurrency, "conn-concurrency", cfg.ConnConcurrency, "handshakes in progress at once")
	f.DurationVar(&cfg.ConnectTimeout, "connect-timeout", cfg.ConnectTimeout, "limit on each dial, CONNECT and SUBSCRIBE")
	f.IntVarP(&keepAlive, "keepalive", "k", int(cfg.KeepAlive), "keep-alive in seconds (0: none)")
	f.BoolVar(&cfg.Persistent, "persistent", false, "persistent sessions (clean session 0): a durable broker stores each QoS 1/2 delivery")
	f.BoolVar(&cfg.Reconnect, "reconnect", false, "conn: after the hold, cut every connection at once and reconnect them all (a reconnect storm)")
	f.StringVar(&cfg.MemoryTopic, "memory-topic", "", "conn: topic where the broker publishes its memory in use, in bytes (e.g. $SYS/broker/heap/current)")
	f.StringVarP(&idPrefix, "id-prefix", "i", "", "client identifier prefix, followed by the role (c, p, s) and index (default gannet-bench-PID-)")
	f.StringVarP(&cfg.Username, "username", "u", "", "user name")
	f.StringVarP(&cfg.Password, "pw", "P", "", "password")
	f.BoolVar(&asJSON, "json", false, "print the report as JSON")
	f.BoolVar(&quiet, "quiet", false, "no progress line, even on a terminal")
	return cmd
}

// defaultPort is the broker port a transport uses when -p is not given.
func defaultPort(t bench.Transport) int {
	switch t {
	case bench.TLS:
		return 8883
	case bench.WS:
		return 80
	case bench.WSS:
		return 443
	}
	return 1883
}

// isTerminal reports whether f is a character device (a terminal).
func isTerminal(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
