package config

import (
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"
)

// Overrides from the environment and the command line set one key each,
// named by its YAML path. Precedence: Default < file < environment <
// flags; Resolve applies them in that order.

// EnvPrefix starts the name of every environment variable ApplyEnv reads.
const EnvPrefix = "GANNET_"

// leaf is one settable key: its path and the field indexes that reach it.
type leaf struct {
	path  string
	index []int
}

var (
	fileLeaves     = collectLeaves(reflect.TypeFor[File](), "", nil)
	listenerLeaves = collectLeaves(listenerType, "", nil)
	envLeaves      = envNames(fileLeaves)
	envListener    = envNames(listenerLeaves)
)

// collectLeaves lists the keys of t that hold a value (not a section),
// leaving out lists of sections (listeners).
func collectLeaves(t reflect.Type, path string, index []int) []leaf {
	var out []leaf
	for i := range t.NumField() {
		sf := t.Field(i)
		name := yamlName(sf)
		if name == "" {
			continue
		}
		p := joinPath(path, name)
		idx := append(slices.Clone(index), i)
		switch {
		case sf.Type.Kind() == reflect.Struct:
			out = append(out, collectLeaves(sf.Type, p, idx)...)
		case sf.Type.Kind() == reflect.Slice && sf.Type.Elem().Kind() == reflect.Struct:
			// listeners: addressed by index, see ApplyEnv
		default:
			out = append(out, leaf{path: p, index: idx})
		}
	}
	return out
}

// envName turns a path into the name of its variable, without the prefix:
// limits.max_inflight -> LIMITS_MAX_INFLIGHT.
func envName(path string) string {
	return strings.ToUpper(strings.NewReplacer(".", "_", "[", "_", "]", "").Replace(path))
}

func envNames(ls []leaf) map[string]leaf {
	m := make(map[string]leaf, len(ls))
	for _, l := range ls {
		m[envName(l.path)] = l
	}
	return m
}

// setLeaf parses text into the key l of root (a File or a Listener).
// Lists take comma-separated values.
func setLeaf(root reflect.Value, l leaf, text string) error {
	v := root.FieldByIndex(l.index)
	if v.Kind() == reflect.Slice && v.Type().Elem().Kind() == reflect.String {
		var list []string
		for _, s := range strings.Split(text, ",") {
			if s = strings.TrimSpace(s); s != "" {
				list = append(list, s)
			}
		}
		v.Set(reflect.ValueOf(list))
		return nil
	}
	if v.Kind() == reflect.Map && v.Type().Elem().Kind() == reflect.String {
		// name=value pairs, comma-separated: iss=https://idp,aud=mqtt
		m := make(map[string]string)
		for _, s := range strings.Split(text, ",") {
			if s = strings.TrimSpace(s); s == "" {
				continue
			}
			k, val, ok := strings.Cut(s, "=")
			if !ok || strings.TrimSpace(k) == "" {
				return fmt.Errorf("%q is not name=value", s)
			}
			m[strings.TrimSpace(k)] = strings.TrimSpace(val)
		}
		v.Set(reflect.ValueOf(m))
		return nil
	}
	return setScalar(v, scalar{text: text, kind: kindAny})
}

// ApplyEnv sets the keys named by the GANNET_ variables of environ
// ("NAME=value" strings, as os.Environ returns). A variable's name is its
// key's path in upper case with _ for the dots: GANNET_LIMITS_MAX_INFLIGHT,
// GANNET_STORE_DATA_DIR, GANNET_ADMIN_TOKEN. Listeners go by their index:
// GANNET_LISTENERS_0_ADDRESS sets the first listener's address, and the
// index one past the last adds a listener (tcp unless
// GANNET_LISTENERS_<n>_TYPE says otherwise). Lists take comma-separated
// values (GANNET_LISTENERS_0_PROXY_FROM=10.0.0.0/8,192.168.0.0/16).
// Webhooks go by index the same way: GANNET_WEBHOOKS_0_URL,
// GANNET_WEBHOOKS_0_SECRET, GANNET_WEBHOOKS_0_EVENTS=client.connected,...
//
// A GANNET_ variable of a configuration section (LISTENERS, STORE, LIMITS,
// MQTT, AUTH, LOGGING, ADMIN, SYS) that names no key is an error; other
// GANNET_ variables are left alone. Every problem is reported at once, as
// an Errors; the values that parsed are set.
func (f *File) ApplyEnv(environ []string) error {
	var errs Errors
	bad := func(name, path, format string, a ...any) {
		errs = append(errs, &Error{Pos: Pos{Env: name}, Path: path, Msg: fmt.Sprintf(format, a...)})
	}
	type listenerVar struct {
		name, value string
		index       int
		l           leaf
	}
	var lvars, wvars []listenerVar
	root := reflect.ValueOf(f).Elem()
	for _, kv := range environ {
		name, value, ok := strings.Cut(kv, "=")
		if !ok || !strings.HasPrefix(name, EnvPrefix) {
			continue
		}
		rest := strings.TrimPrefix(name, EnvPrefix)
		if l, ok := envLeaves[rest]; ok {
			if err := setLeaf(root, l, value); err != nil {
				bad(name, l.path, "%v", err)
				continue
			}
			f.setPos(l.path, Pos{Env: name})
			continue
		}
		if after, ok := strings.CutPrefix(rest, "WEBHOOKS_"); ok {
			num, field, _ := strings.Cut(after, "_")
			i, err := strconv.Atoi(num)
			l, known := envWebhook[field]
			if err != nil || i < 0 || !known {
				bad(name, "webhooks", "unknown variable: want %sWEBHOOKS_<index>_<KEY>, KEY one of %s", EnvPrefix, strings.Join(sortedKeys(envWebhook), ", "))
				continue
			}
			wvars = append(wvars, listenerVar{name: name, value: value, index: i, l: l})
			continue
		}
		if after, ok := strings.CutPrefix(rest, "LISTENERS_"); ok {
			num, field, _ := strings.Cut(after, "_")
			i, err := strconv.Atoi(num)
			l, known := envListener[field]
			if err != nil || i < 0 || !known {
				bad(name, "listeners", "unknown variable: want %sLISTENERS_<index>_<KEY>, KEY one of %s", EnvPrefix, strings.Join(sortedKeys(envListener), ", "))
				continue
			}
			lvars = append(lvars, listenerVar{name: name, value: value, index: i, l: l})
			continue
		}
		section, _, _ := strings.Cut(rest, "_")
		if section == "LISTENERS" || slices.ContainsFunc(fileLeaves, func(l leaf) bool { return strings.HasPrefix(envName(l.path), section+"_") }) {
			hint := ""
			best, bestD := "", 4
			for k := range envLeaves {
				if d := editDistance(rest, k); d < bestD {
					best, bestD = k, d
				}
			}
			if best != "" {
				hint = " (did you mean " + EnvPrefix + best + "?)"
			}
			bad(name, "", "unknown variable%s", hint)
		}
	}
	// Listener variables in index order, so that new listeners are added
	// one after the other.
	slices.SortStableFunc(lvars, func(a, b listenerVar) int { return a.index - b.index })
	for _, lv := range lvars {
		path := fmt.Sprintf("listeners[%d]", lv.index)
		switch {
		case lv.index == len(f.Listeners):
			f.Listeners = append(f.Listeners, defaultListener())
			f.setPos(path, Pos{Env: lv.name})
		case lv.index > len(f.Listeners):
			bad(lv.name, path, "there are %d listeners; add new ones with the next index, %d", len(f.Listeners), len(f.Listeners))
			continue
		}
		sub := path + "." + lv.l.path
		if err := setLeaf(reflect.ValueOf(&f.Listeners[lv.index]).Elem(), lv.l, lv.value); err != nil {
			bad(lv.name, sub, "%v", err)
			continue
		}
		f.setPos(sub, Pos{Env: lv.name})
	}
	slices.SortStableFunc(wvars, func(a, b listenerVar) int { return a.index - b.index })
	for _, wv := range wvars {
		path := fmt.Sprintf("webhooks[%d]", wv.index)
		switch {
		case wv.index == len(f.Webhooks):
			f.Webhooks = append(f.Webhooks, defaultWebhook())
			f.setPos(path, Pos{Env: wv.name})
		case wv.index > len(f.Webhooks):
			bad(wv.name, path, "there are %d webhooks; add new ones with the next index, %d", len(f.Webhooks), len(f.Webhooks))
			continue
		}
		sub := path + "." + wv.l.path
		if err := setLeaf(reflect.ValueOf(&f.Webhooks[wv.index]).Elem(), wv.l, wv.value); err != nil {
			bad(wv.name, sub, "%v", err)
			continue
		}
		f.setPos(sub, Pos{Env: wv.name})
	}
	return errs.err()
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// Flags are the command-line flags for the common options, registered on
// a pflag.FlagSet by AddFlags. The command line is parsed before the
// configuration file is read, so the flags hold what was given and Apply
// sets it on the File once the file and the environment are in: flags
// win over both. Only the flags given on the command line are applied.
type Flags struct {
	// Config is the value of --config: the configuration file to load.
	Config string

	values []*flagValue
	listen *listenFlag
}

// The flags and the keys they set.
var flagKeys = []struct{ name, path, usage string }{
	{"log-level", "logging.level", "log level: debug, info, warn, error"},
	{"log-format", "logging.format", "log format: text or json"},
	{"store", "store.type", "store: pebble (on disk) or memory"},
	{"data-dir", "store.data_dir", "directory of the pebble store"},
	{"fsync", "store.fsync", "when the store syncs to disk: always, interval or never"},
	{"fsync-interval", "store.fsync_interval", "time between syncs with --fsync interval"},
	{"password-file", "auth.password_file", "password file (gannet passwd, mosquitto_passwd)"},
	{"acl-file", "auth.acl_file", "ACL file (Mosquitto acl_file syntax)"},
	{"admin-address", "admin.address", "address of the admin HTTP listener (empty: off); set its token with GANNET_ADMIN_TOKEN"},
	{"sys-interval", "sys.interval", "how often $SYS topics are published (0: never)"},
	{"connect-timeout", "limits.connect_timeout", "time a new connection has to send CONNECT"},
	{"max-packet-size", "limits.max_packet_size", "largest packet accepted (bytes, or with a unit: 1MiB)"},
	{"max-inflight", "limits.max_inflight", "unacknowledged QoS 1/2 messages per client"},
	{"max-queued", "limits.max_queued", "QoS 1/2 messages queued per session beyond the inflight window"},
	{"max-connections", "limits.max_connections", "concurrent connections (0: no limit)"},
	{"max-topic-length", "limits.max_topic_length", "longest topic name or filter, in bytes"},
	{"max-topic-levels", "limits.max_topic_levels", "most levels in a topic name, filter or will topic (0: no limit)"},
	{"cluster-name", "cluster.name", "join the cluster of this name (its nodes share it; empty: a single node)"},
	{"node-name", "cluster.node", "this node's name in the cluster (default: the host name)"},
	{"cluster-listen", "cluster.listen", "address of the cluster's route listener (default 0.0.0.0:6222)"},
	{"cluster-routes", "cluster.routes", "the other nodes' route listeners, nats://host:port (comma-separated, repeatable)"},
	{"cluster-replicas", "cluster.replicas", "JetStream replicas of the cluster's shared state, 1 to 5 (default 3)"},
	{"cluster-election-timeout", "cluster.election_timeout", "time without the leader of a JetStream raft group before its followers elect another, 500ms to 10s (default 1.5s)"},
	{"nats-url", "cluster.nats_url", "use this existing NATS cluster instead of embedding one"},
	{"cluster-advertise", "cluster.advertise", "the MQTT address (host:port) other nodes send clients to when they shut down (default: the first listener)"},
}

// AddFlags registers --config, --listen and the flags of the common
// options on fs.
func AddFlags(fs *pflag.FlagSet) *Flags {
	fl := &Flags{}
	def := Default()
	root := reflect.ValueOf(def).Elem()
	fs.StringVar(&fl.Config, "config", "", "configuration file: YAML, or a mosquitto.conf to translate")
	fl.listen = &listenFlag{}
	fs.Var(fl.listen, "listen", "TCP address to listen on, replacing the configured listeners (repeat for several; default "+DefaultAddress+")")
	for _, k := range flagKeys {
		l := leafAt(k.path)
		v := &flagValue{name: k.name, leaf: l}
		v.def = formatValue(root.FieldByIndex(l.index))
		v.typ = typeName(root.FieldByIndex(l.index).Type())
		fl.values = append(fl.values, v)
		fs.Var(v, k.name, k.usage)
	}
	return fl
}

// Apply sets on f the flags given on the command line, recording them as
// where those values came from.
func (fl *Flags) Apply(f *File) error {
	var errs Errors
	root := reflect.ValueOf(f).Elem()
	if fl.listen != nil && len(fl.listen.addrs) > 0 {
		f.Listeners = f.Listeners[:0:0]
		for _, a := range fl.listen.addrs {
			l := defaultListener()
			l.Address = a
			f.Listeners = append(f.Listeners, l)
		}
		f.setPos("listeners", Pos{Flag: "--listen"})
	}
	for _, v := range fl.values {
		if !v.set {
			continue
		}
		if err := setLeaf(root, v.leaf, v.text); err != nil {
			errs = append(errs, &Error{Pos: Pos{Flag: "--" + v.name}, Path: v.leaf.path, Msg: err.Error()})
			continue
		}
		f.setPos(v.leaf.path, Pos{Flag: "--" + v.name})
	}
	return errs.err()
}

// leafAt returns the key at path; it panics on a path that is not one,
// which is a bug in flagKeys.
func leafAt(path string) leaf {
	for _, l := range fileLeaves {
		if l.path == path {
			return l
		}
	}
	panic("config: no key " + path)
}

// flagValue is a flag that sets one key.
type flagValue struct {
	name, def, typ, text string
	leaf                 leaf
	set                  bool
}

func (v *flagValue) String() string {
	if v.set {
		return v.text
	}
	return v.def
}

// Set checks that s parses, so that a bad value is reported by the flag
// parser with the flag's name, and keeps it for Apply.
func (v *flagValue) Set(s string) error {
	if v.set && v.typ == "strings" {
		s = v.text + "," + s // a repeated list flag adds to it
	}
	if err := setLeaf(reflect.ValueOf(Default()).Elem(), v.leaf, s); err != nil {
		return err
	}
	v.text, v.set = s, true
	return nil
}

func (v *flagValue) Type() string { return v.typ }

// listenFlag collects --listen addresses.
type listenFlag struct{ addrs []string }

func (l *listenFlag) String() string { return strings.Join(l.addrs, ",") }
func (l *listenFlag) Set(s string) error {
	l.addrs = append(l.addrs, s)
	return nil
}
func (l *listenFlag) Type() string { return "address" }

// formatValue writes v as a flag default.
func formatValue(v reflect.Value) string {
	switch x := v.Interface().(type) {
	case time.Duration:
		return x.String()
	case Size:
		return x.String()
	case Mode:
		return x.String()
	}
	return fmt.Sprint(v.Interface())
}

func typeName(t reflect.Type) string {
	switch t {
	case durationType:
		return "duration"
	case sizeType:
		return "size"
	case modeType:
		return "mode"
	}
	if t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.String {
		return "strings"
	}
	return t.Kind().String()
}
