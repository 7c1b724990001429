package main

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/gannet-mqtt/gannet/client"
	"github.com/gannet-mqtt/gannet/packet"
)

// Exit codes of gannet pub and gannet sub.
const (
	exitOK       = 0   // done
	exitUsage    = 1   // bad flags or arguments
	exitConnect  = 2   // no connection: refused, unreachable, DNS, TLS
	exitRefused  = 3   // the broker refused the connection (CONNACK)
	exitTimeout  = 4   // -W expired, or the broker did not answer in time
	exitRejected = 5   // the broker refused a publish or a subscription (reason code 0x80 and above)
	exitLost     = 6   // the connection broke or the broker disconnected the client
	exitInput    = 7   // the message could not be read (-f, -s, -l)
	exitSignal   = 130 // interrupted by SIGINT or SIGTERM (gannet pub; gannet sub exits 0)
)

// exitCodesHelp documents the exit codes in --help.
const exitCodesHelp = `Exit codes:
  0    success
  1    usage error: bad flags or arguments
  2    connection failed: refused, unreachable, name or TLS error
  3    connection refused by the broker (CONNACK with a failure code)
  4    timeout: -W expired, or the broker did not answer in time
  5    publish or subscription refused by the broker (reason code >= 0x80)
  6    connection lost, or disconnected by the broker
  7    input error: the message could not be read (-f, -s, -l)
  130  gannet pub interrupted (SIGINT, SIGTERM); gannet sub exits 0 then`

// clientFlags are the connection flags shared by gannet pub and gannet sub,
// named as in mosquitto_pub and mosquitto_sub.
type clientFlags struct {
	host, url          string
	port               int
	id, idPrefix       string
	username, password string
	keepAlive          int
	version            string
	cafile             string
	cert, key          string
	insecure, osCerts  bool
	qos                int
	topics             []string
	props              []string
	willTopic          string
	willPayload        string
	willQoS            int
	willRetain         bool
	persistent         bool
	sessionExpiry      int64
	timeout            int
	debug              bool
	reconnect          bool
}

// register adds the shared flags to fs; the help flag is defined here so
// that cobra does not claim -h, which is the host.
func (f *clientFlags) register(fs *pflag.FlagSet, prog string) {
	fs.Bool("help", false, "show this help")
	fs.StringVarP(&f.host, "host", "h", "localhost", "broker host")
	fs.IntVarP(&f.port, "port", "p", 0, "broker port (default 1883, 8883 with TLS)")
	fs.StringVarP(&f.url, "url", "L", "", "broker URL: mqtt://[user[:password]@]host[:port]/topic, mqtts://..., ws://host:port/path, wss://...\n(for ws and wss the path is the WebSocket endpoint, default /mqtt, and the topic is given with -t)")
	fs.StringArrayVarP(&f.topics, "topic", "t", nil, "topic")
	fs.IntVarP(&f.qos, "qos", "q", 0, "quality of service: 0, 1 or 2")
	fs.StringVarP(&f.id, "id", "i", "", "client identifier (default "+prog+"- and random hex digits)")
	fs.StringVarP(&f.idPrefix, "id-prefix", "I", "", "client identifier prefix; the process ID is appended")
	fs.StringVarP(&f.username, "username", "u", "", "user name")
	fs.StringVarP(&f.password, "pw", "P", "", "password")
	fs.IntVarP(&f.keepAlive, "keepalive", "k", 60, "keep-alive in seconds (0: none)")
	fs.StringVarP(&f.version, "protocol-version", "V", "mqttv311", "MQTT version: mqttv31, mqttv311 or mqttv5")
	fs.StringVar(&f.cafile, "cafile", "", "PEM file of the certificate authorities to trust; turns on TLS")
	fs.BoolVar(&f.osCerts, "tls-use-os-certs", false, "turn on TLS, trusting the system's certificate authorities")
	fs.StringVar(&f.cert, "cert", "", "PEM client certificate for TLS (with --key)")
	fs.StringVar(&f.key, "key", "", "PEM private key of --cert")
	fs.BoolVar(&f.insecure, "insecure", false, "do not check that the server certificate's host name matches the host\n(the certificate chain is still verified)")
	fs.StringArrayVarP(&f.props, "property", "D", nil, "MQTT 5.0 property: -D command identifier value (user-property takes a name and a value),\ncommand one of connect, publish, subscribe, unsubscribe, disconnect, will")
	fs.StringVar(&f.willTopic, "will-topic", "", "topic of the will message")
	fs.StringVar(&f.willPayload, "will-payload", "", "payload of the will message")
	fs.IntVar(&f.willQoS, "will-qos", 0, "QoS of the will message")
	fs.BoolVar(&f.willRetain, "will-retain", false, "retain the will message")
	fs.BoolVarP(&f.persistent, "disable-clean-session", "c", false, "keep the session when disconnected (needs -i or -I)")
	fs.Int64VarP(&f.sessionExpiry, "session-expiry-interval", "x", 0, "MQTT 5.0 session expiry interval in seconds (-1: never)")
	fs.IntVarP(&f.timeout, "timeout", "W", 0, "give up after this many seconds (exit code 4)")
	fs.BoolVarP(&f.debug, "debug", "d", false, "log the client's progress to stderr")
	fs.BoolVar(&f.reconnect, "reconnect", false, "reconnect when the connection is lost")
}

// usageError is a mistake in the command line: exit code 1.
type usageError struct{ err error }

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

func usagef(format string, a ...any) error { return &usageError{fmt.Errorf(format, a...)} }

// inputError is a failure to read the message: exit code 7.
type inputError struct{ err error }

func (e *inputError) Error() string { return e.err.Error() }
func (e *inputError) Unwrap() error { return e.err }

// props holds the -D properties by command.
type props map[string]*packet.Properties

func (p props) get(command string) *packet.Properties {
	if pr := p[command]; pr != nil {
		return pr
	}
	return &packet.Properties{}
}

// propKinds are the value types of the properties -D accepts.
const (
	propByte = iota
	propUint16
	propUint32
	propVarint
	propString
	propBinary
	propPair
)

// propSpecs names the properties -D can set, as mosquitto does, with the
// commands (packets) each is allowed in.
var propSpecs = map[string]struct {
	id       packet.PropID
	kind     int
	commands string
}{
	"payload-format-indicator":     {packet.PropPayloadFormat, propByte, "publish will"},
	"message-expiry-interval":      {packet.PropMessageExpiry, propUint32, "publish will"},
	"content-type":                 {packet.PropContentType, propString, "publish will"},
	"response-topic":               {packet.PropResponseTopic, propString, "publish will"},
	"correlation-data":             {packet.PropCorrelationData, propBinary, "publish will"},
	"subscription-identifier":      {packet.PropSubscriptionID, propVarint, "subscribe"},
	"session-expiry-interval":      {packet.PropSessionExpiry, propUint32, "connect disconnect"},
	"request-problem-information":  {packet.PropRequestProblemInfo, propByte, "connect"},
	"request-response-information": {packet.PropRequestResponseInfo, propByte, "connect"},
	"will-delay-interval":          {packet.PropWillDelay, propUint32, "will"},
	"receive-maximum":              {packet.PropReceiveMaximum, propUint16, "connect"},
	"topic-alias-maximum":          {packet.PropTopicAliasMaximum, propUint16, "connect"},
	"maximum-packet-size":          {packet.PropMaximumPacketSize, propUint32, "connect"},
	"user-property":                {packet.PropUser, propPair, "connect publish subscribe unsubscribe disconnect will"},
}

// parseProps reads the -D flags. pflag gives each -D its first word (the
// command); the identifier and the value(s) are the positional arguments,
// taken in order.
func parseProps(ds, args []string) (props, error) {
	out := make(props)
	for _, command := range ds {
		switch command {
		case "connect", "publish", "subscribe", "unsubscribe", "disconnect", "will":
		default:
			return nil, usagef("-D %s: the command must be connect, publish, subscribe, unsubscribe, disconnect or will", command)
		}
		if len(args) < 2 {
			return nil, usagef("-D %s: expected an identifier and a value", command)
		}
		name := args[0]
		spec, ok := propSpecs[name]
		if !ok {
			return nil, usagef("-D %s %s: unknown property", command, name)
		}
		if !strings.Contains(" "+spec.commands+" ", " "+command+" ") {
			return nil, usagef("-D %s %s: the property is not allowed in %s (only in %s)", command, name, command, spec.commands)
		}
		pr := out[command]
		if pr == nil {
			pr = &packet.Properties{}
			out[command] = pr
		}
		if spec.kind == propPair {
			if len(args) < 3 {
				return nil, usagef("-D %s user-property: expected a name and a value", command)
			}
			pr.User = append(pr.User, packet.UserProperty{Key: args[1], Value: args[2]})
			args = args[3:]
			continue
		}
		value := args[1]
		args = args[2:]
		switch spec.kind {
		case propString:
			pr.SetString(spec.id, value)
		case propBinary:
			pr.SetBinary(spec.id, []byte(value))
		default:
			bits := map[int]int{propByte: 1, propUint16: 16, propUint32: 32, propVarint: 28}[spec.kind]
			n, err := strconv.ParseUint(value, 10, bits)
			if err != nil || (spec.kind == propVarint && n == 0) || (spec.kind == propUint16 && n == 0) {
				return nil, usagef("-D %s %s %s: not a valid value", command, name, value)
			}
			if spec.kind == propVarint {
				pr.SubscriptionIDs = []uint32{uint32(n)}
			} else {
				pr.SetUint(spec.id, uint32(n))
			}
		}
	}
	if len(args) > 0 {
		return nil, usagef("unexpected arguments %q (the values of -D follow it: -D command identifier value)", args)
	}
	return out, nil
}

// connection is what the shared flags resolve to.
type connection struct {
	opts  client.Options
	topic string // from -L
	props props
}

// resolve turns the shared flags into client options. prog names the
// command for the default client identifier.
func (f *clientFlags) resolve(fs *pflag.FlagSet, prog string, args []string) (*connection, error) {
	var version byte
	switch f.version {
	case "mqttv31", "31":
		version = packet.V31
	case "mqttv311", "311":
		version = packet.V311
	case "mqttv5", "5":
		version = packet.V5
	default:
		return nil, usagef("-V %q: use mqttv31, mqttv311 or mqttv5", f.version)
	}
	pr, err := parseProps(f.props, args)
	if err != nil {
		return nil, err
	}
	if len(pr) > 0 && version < packet.V5 {
		return nil, usagef("-D needs -V mqttv5")
	}
	if f.qos < 0 || f.qos > 2 {
		return nil, usagef("-q %d: QoS must be 0, 1 or 2", f.qos)
	}
	if f.keepAlive < 0 || f.keepAlive > 65535 {
		return nil, usagef("-k %d: keep-alive must be between 0 and 65535 seconds", f.keepAlive)
	}
	if f.timeout < 0 {
		return nil, usagef("-W %d: the timeout must not be negative", f.timeout)
	}
	conn := &connection{props: pr}
	o := client.DefaultOptions()
	o.Version = version
	o.KeepAlive = time.Duration(f.keepAlive) * time.Second
	o.ConnectTimeout = 30 * time.Second
	o.Username = f.username
	if fs.Changed("pw") {
		o.Password = []byte(f.password)
	}

	scheme := "mqtt"
	useTLS := f.cafile != "" || f.cert != "" || f.insecure || f.osCerts
	host, port := f.host, f.port
	var path string
	if f.url != "" {
		if fs.Changed("host") || fs.Changed("port") {
			return nil, usagef("-L and -h/-p both name the broker: give one")
		}
		u, topic, err := parseURL(f.url)
		if err != nil {
			return nil, err
		}
		scheme, host, path = u.Scheme, u.Hostname(), u.Path
		if u.Port() != "" {
			port, _ = strconv.Atoi(u.Port())
		}
		if u.User != nil && !fs.Changed("username") {
			o.Username = u.User.Username()
			if pw, ok := u.User.Password(); ok && !fs.Changed("pw") {
				o.Password = []byte(pw)
			}
		}
		conn.topic = topic
		useTLS = useTLS || scheme == "mqtts" || scheme == "wss"
		if useTLS && scheme == "mqtt" {
			scheme = "mqtts"
		}
		if useTLS && scheme == "ws" {
			scheme = "wss"
		}
	} else if useTLS {
		scheme = "mqtts"
	}
	if o.Password != nil && o.Username == "" && version < packet.V5 {
		return nil, usagef("-P needs -u before MQTT 5.0")
	}
	server := url.URL{Scheme: scheme, Host: host, Path: path}
	if port != 0 {
		if port < 0 || port > 65535 {
			return nil, usagef("-p %d: not a port", port)
		}
		server.Host = net.JoinHostPort(host, strconv.Itoa(port))
	}
	o.Server = server.String()
	if useTLS {
		if o.TLSConfig, err = f.tlsConfig(); err != nil {
			return nil, err
		}
	}

	switch {
	case f.id != "" && f.idPrefix != "":
		return nil, usagef("-i and -I both set the client identifier: give one")
	case f.id != "":
		o.ClientID = f.id
	case f.idPrefix != "":
		o.ClientID = f.idPrefix + strconv.Itoa(os.Getpid())
	case f.persistent:
		return nil, usagef("-c needs a client identifier: give -i or -I")
	default:
		var b [4]byte
		rand.Read(b[:])
		o.ClientID = prog + "-" + hex.EncodeToString(b[:])
	}
	o.ResumeSession = f.persistent

	if c := pr["connect"]; c != nil {
		o.Properties = *c
		o.ReceiveMaximum = c.ReceiveMaximum
		o.TopicAliasMaximum = c.TopicAliasMaximum
		o.MaxPacketSize = c.MaximumPacketSize
		for _, id := range []packet.PropID{packet.PropReceiveMaximum, packet.PropTopicAliasMaximum, packet.PropMaximumPacketSize} {
			o.Properties.Present.Remove(id)
		}
	}
	if fs.Changed("session-expiry-interval") {
		if version < packet.V5 {
			return nil, usagef("-x needs -V mqttv5")
		}
		secs := f.sessionExpiry
		if secs < -1 || secs > 0xFFFFFFFF {
			return nil, usagef("-x %d: between -1 and 4294967295 seconds", secs)
		}
		if secs == -1 {
			secs = 0xFFFFFFFF
		}
		o.Properties.SetUint(packet.PropSessionExpiry, uint32(secs))
	}

	willSet := fs.Changed("will-payload") || fs.Changed("will-qos") || fs.Changed("will-retain") || pr["will"] != nil
	if f.willTopic == "" && willSet {
		return nil, usagef("--will-payload, --will-qos, --will-retain and -D will need --will-topic")
	}
	if f.willTopic != "" {
		if f.willQoS < 0 || f.willQoS > 2 {
			return nil, usagef("--will-qos %d: QoS must be 0, 1 or 2", f.willQoS)
		}
		o.Will = &client.Will{Topic: f.willTopic, Payload: []byte(f.willPayload), QoS: byte(f.willQoS), Retain: f.willRetain}
		if w := pr["will"]; w != nil {
			o.Will.Properties = *w
		}
	}
	o.AutoReconnect = f.reconnect
	level := slog.LevelWarn
	if f.debug {
		level = slog.LevelDebug
	}
	o.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	if err := o.Validate(); err != nil {
		return nil, &usageError{err}
	}
	conn.opts = o
	return conn, nil
}

// parseURL reads -L. A '#' in the topic would start the URL's fragment,
// so everything from the first '#' on is put back into the topic.
func parseURL(s string) (*url.URL, string, error) {
	raw, frag, hasHash := strings.Cut(s, "#")
	u, err := url.Parse(raw)
	if err != nil {
		return nil, "", usagef("-L %q: %v", s, err)
	}
	switch u.Scheme {
	case "mqtt", "mqtts", "ws", "wss":
	default:
		return nil, "", usagef("-L %q: the scheme must be mqtt, mqtts, ws or wss", s)
	}
	if u.Hostname() == "" {
		return nil, "", usagef("-L %q: no host", s)
	}
	if u.Scheme == "ws" || u.Scheme == "wss" {
		if hasHash {
			return nil, "", usagef("-L %q: for ws and wss give the topic with -t", s)
		}
		return u, "", nil
	}
	topic := strings.TrimPrefix(u.Path, "/")
	if hasHash {
		topic += "#" + frag
	}
	u.Path = ""
	return u, topic, nil
}

// tlsConfig builds the TLS configuration from --cafile, --cert, --key and
// --insecure.
func (f *clientFlags) tlsConfig() (*tls.Config, error) {
	cfg := &tls.Config{}
	if f.cafile != "" {
		pem, err := os.ReadFile(f.cafile)
		if err != nil {
			return nil, usagef("--cafile: %v", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, usagef("--cafile %s: no PEM certificate found", f.cafile)
		}
		cfg.RootCAs = pool
	}
	if (f.cert == "") != (f.key == "") {
		return nil, usagef("--cert and --key go together")
	}
	if f.cert != "" {
		pair, err := tls.LoadX509KeyPair(f.cert, f.key)
		if err != nil {
			return nil, usagef("--cert/--key: %v", err)
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	if f.insecure {
		// Verify the chain, not the host name.
		roots := cfg.RootCAs
		cfg.InsecureSkipVerify = true
		cfg.VerifyConnection = func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return errors.New("the server sent no certificate")
			}
			opts := x509.VerifyOptions{Roots: roots, Intermediates: x509.NewCertPool()}
			for _, c := range cs.PeerCertificates[1:] {
				opts.Intermediates.AddCert(c)
			}
			_, err := cs.PeerCertificates[0].Verify(opts)
			return err
		}
	}
	return cfg, nil
}

// exitCode maps an error to the exit code that says what went wrong.
func exitCode(err error) int {
	var (
		ue *usageError
		ie *inputError
		ce *client.ConnackError
		re *client.ReasonError
	)
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &ue):
		return exitUsage
	case errors.As(err, &ie):
		return exitInput
	case errors.As(err, &ce):
		return exitRefused
	case errors.As(err, &re):
		return exitRejected
	case errors.Is(err, context.DeadlineExceeded):
		return exitTimeout
	case errors.Is(err, context.Canceled):
		return exitSignal
	case errors.Is(err, client.ErrConnectionLost), errors.Is(err, client.ErrClosed):
		return exitLost
	case errors.Is(err, client.ErrInvalidTopic):
		return exitUsage
	}
	return exitConnect
}

// finish reports err and exits with its code; usage errors go back to
// cobra, which prints them and exits with 1.
func finish(cmd *cobra.Command, err error) error {
	code := exitCode(err)
	if code == exitOK {
		return nil
	}
	if code == exitUsage {
		return fmt.Errorf("%w\nRun '%s --help' for usage.", err, cmd.CommandPath())
	}
	fmt.Fprintf(cmd.ErrOrStderr(), "%s: %v\n", cmd.CommandPath(), err)
	os.Exit(code)
	return nil
}

// runContext returns the context of a run: ended by SIGINT or SIGTERM,
// and by -W.
func (f *clientFlags) runContext(parent context.Context) (context.Context, context.CancelFunc) {
	ctx, stop := signalContext(parent)
	if f.timeout == 0 {
		return ctx, stop
	}
	ctx, cancel := context.WithTimeout(ctx, time.Duration(f.timeout)*time.Second)
	return ctx, func() { cancel(); stop() }
}

// disconnect ends the session politely, with the -D disconnect properties.
func disconnect(c *client.Client, pr props) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c.DisconnectWith(ctx, &packet.Disconnect{Properties: *pr.get("disconnect")})
}

// signalContext returns a context ended by SIGINT or SIGTERM.
func signalContext(parent context.Context) (context.Context, context.CancelFunc) {
	return signal.NotifyContext(parent, os.Interrupt, syscall.SIGTERM)
}
