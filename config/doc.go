// Package config turns a configuration file, the environment and the
// command line into the options of the broker and its listeners.
//
// The core types:
//
//   - File mirrors gannet.yaml, one field per key (listeners, store,
//     limits, mqtt, auth, logging, admin, sys). Default returns the
//     configuration Gannet runs with when nothing is configured; Load reads
//     a file over it (YAML, or a mosquitto.conf, which is translated).
//   - Runtime, from (*File).Build, holds broker.Options (with the
//     authenticator, authoriser and SCRAM users loaded from the auth
//     files), the listener.Config and broker.ListenerOptions of each
//     listener, the store and admin settings and the logger.
//   - Errors: every problem at once, each an *Error naming where the value
//     came from (file and line, environment variable or flag), the key and
//     what is wrong.
//
// Errors print one per line:
//
//	gannet.yaml:12: limits.max_inflight: must be between 1 and 65535
//	gannet.yaml:15: limits.max_infligt: unknown key (did you mean max_inflight?)
//	$GANNET_STORE_FSYNC: store.fsync: "sometimes" is not always, interval or never
//
// Precedence is Default < file < environment (ApplyEnv, GANNET_ variables
// named after the keys: GANNET_LIMITS_MAX_INFLIGHT) < flags (AddFlags,
// Flags.Apply). Resolve does the four steps.
//
// Use:
//
//	fl := config.AddFlags(cmd.Flags())
//	// after the flags are parsed:
//	f, err := config.Resolve(fl.Config, os.Environ(), fl)
//	for _, w := range f.Warnings() { log.Warn(w.String()) }
//	if err != nil { return err }
//	rt, err := f.Build()
//	if err != nil { return err }
//	// open the store rt.Store describes, set rt.BrokerOptions.Store,
//	// broker.New(rt.BrokerOptions), then for each rt.Listeners:
//	// listener.Listen(l.Config) and srv.ServeListener(ln, l.ListenerOptions)
//
// The YAML decoder is strict: unknown keys, repeated keys, a string where
// a number belongs are errors. Durations are Go durations ("10s", "1m30s");
// sizes are bytes or a number with a unit ("4MiB", "1.5GB"). The package
// holds no global state; a File is not safe for concurrent mutation.
package config
