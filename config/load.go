package config

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strings"
)

// Load reads the configuration file at path over Default, and validates
// it: every problem (a YAML syntax error, an unknown key, a value of the
// wrong type, a value out of range) comes back at once in an Errors, each
// with the file and line, for example
//
//	gannet.yaml:12: limits.max_inflight: must be between 1 and 65535
//
// A Mosquitto configuration (mosquitto.conf) is recognised and translated;
// the lines Gannet has no equivalent for are in the File's Warnings, which
// callers should print.
//
// On an Errors, the File is returned too, as far as it could be read, so
// that its Warnings can be printed; do not run a broker with it. Other
// errors (the file cannot be read) return a nil File.
func Load(path string) (*File, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return Parse(path, data)
}

// Parse is Load for a file already read; name is used in errors.
func Parse(name string, data []byte) (*File, error) {
	f := Default()
	var errs Errors
	var bad map[string]bool
	if isMosquitto(data) {
		errs, bad = translateMosquitto(f, name, data)
	} else {
		errs, bad = decodeYAML(f, name, data)
	}
	if !hasSyntaxError(errs) {
		c := &collector{f: f}
		f.validate(c)
		for _, e := range c.errs {
			if !coveredBy(e.Path, bad) {
				errs = append(errs, e)
			}
		}
	}
	return f, errs.err()
}

// hasSyntaxError reports whether the file could not be parsed at all, in
// which case checking the defaults would only add noise.
func hasSyntaxError(errs Errors) bool {
	for _, e := range errs {
		if e.Path == "" && strings.HasPrefix(e.Msg, "YAML syntax error") {
			return true
		}
	}
	return false
}

// coveredBy reports whether path, or a key around it, already has an error.
func coveredBy(path string, bad map[string]bool) bool {
	for p := path; p != ""; p = parentPath(p) {
		if bad[p] {
			return true
		}
	}
	return false
}

// Resolve is the configuration of a run, in order of precedence: Default,
// then the file at path (none when path is ""), then the GANNET_ variables
// of environ, then the flags set on the command line (fl may be nil). It
// returns the File validated; on an Errors the File is returned too, for
// its Warnings.
func Resolve(path string, environ []string, fl *Flags) (*File, error) {
	f := Default()
	if path != "" {
		var err error
		if f, err = Load(path); err != nil {
			return f, err
		}
	}
	if err := f.ApplyEnv(environ); err != nil {
		return f, err
	}
	if fl != nil {
		if err := fl.Apply(f); err != nil {
			return f, err
		}
	}
	return f, f.Validate()
}

// isMosquitto reports whether data looks like a Mosquitto configuration:
// its first line that is not blank or a comment starts with a word that is
// not a YAML key, and one of its lines starts with a Mosquitto option.
func isMosquitto(data []byte) bool {
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 1<<20)
	first := true
	for sc.Scan() {
		word, _ := mosquittoWords(sc.Text())
		if word == "" {
			continue
		}
		if first {
			if strings.ContainsAny(word, ":{[-") || strings.HasPrefix(word, "%") {
				return false
			}
			first = false
		}
		if mosquittoKnown(word) {
			return true
		}
	}
	return false
}
