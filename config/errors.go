package config

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Pos says where a value came from: a line of a file, an environment
// variable or a command-line flag. The zero Pos is a default, or a value
// set in code.
type Pos struct {
	File string // file name as given to Load
	Line int    // 1-based line in File; 0 when unknown
	Env  string // environment variable, e.g. GANNET_LIMITS_MAX_INFLIGHT
	Flag string // command-line flag, e.g. --max-inflight
}

// String returns "file:line", "file", "$VAR", "--flag" or "".
func (p Pos) String() string {
	switch {
	case p.Flag != "":
		return p.Flag
	case p.Env != "":
		return "$" + p.Env
	case p.File != "" && p.Line > 0:
		return p.File + ":" + strconv.Itoa(p.Line)
	}
	return p.File
}

// Error is one problem with a configuration: where it is, the key it is
// about (a YAML path such as limits.max_inflight or listeners[1].tls), and
// what is wrong.
type Error struct {
	Pos
	Path string
	Msg  string
}

func (e *Error) Error() string {
	var b strings.Builder
	if p := e.Pos.String(); p != "" {
		b.WriteString(p)
		b.WriteString(": ")
	}
	if e.Path != "" {
		b.WriteString(e.Path)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Errors are all the problems found at once, one per line when printed,
// in file order. Load, ApplyEnv, Flags.Apply, Validate and Build return an
// Errors when anything is wrong; errors.As finds it.
type Errors []*Error

func (es Errors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// Unwrap returns the errors, for errors.Is and errors.As.
func (es Errors) Unwrap() []error {
	out := make([]error, len(es))
	for i, e := range es {
		out[i] = e
	}
	return out
}

// err returns es sorted (files by line first, then environment variables,
// then flags, then the rest, each kept in the order found), or nil.
func (es Errors) err() error {
	if len(es) == 0 {
		return nil
	}
	slices.SortStableFunc(es, func(a, b *Error) int {
		return cmp.Or(cmp.Compare(a.rank(), b.rank()), strings.Compare(a.File, b.File), cmp.Compare(a.Line, b.Line))
	})
	return es
}

func (e *Error) rank() int {
	switch {
	case e.File != "":
		return 0
	case e.Env != "":
		return 1
	case e.Flag != "":
		return 2
	}
	return 3
}

// Warning is something Load understood but did not apply, such as a line of
// a Mosquitto configuration that Gannet has no equivalent for.
type Warning struct {
	Pos
	Msg string
}

func (w Warning) String() string {
	if p := w.Pos.String(); p != "" {
		return p + ": " + w.Msg
	}
	return w.Msg
}

// sources remembers where the values of a File came from.
type sources struct {
	file     string         // as given to Load; "" when not loaded
	format   string         // "yaml" or "mosquitto"
	at       map[string]Pos // YAML path -> where it was set
	warnings []Warning
}

// track returns f's sources, creating them.
func (f *File) track() *sources {
	if f.src == nil {
		f.src = &sources{at: make(map[string]Pos)}
	}
	return f.src
}

// setPos records where the value at path came from. A value set again
// replaces its whole subtree's positions, which described the old value.
func (f *File) setPos(path string, p Pos) {
	s := f.track()
	for k := range s.at {
		if strings.HasPrefix(k, path+".") || strings.HasPrefix(k, path+"[") {
			delete(s.at, k)
		}
	}
	s.at[path] = p
}

// pos returns where the value at path came from: its own position, or
// that of the closest enclosing key that has one.
func (f *File) pos(path string) Pos {
	if f.src == nil {
		return Pos{}
	}
	for p := path; p != ""; p = parentPath(p) {
		if at, ok := f.src.at[p]; ok {
			return at
		}
	}
	return Pos{File: f.src.file}
}

// parentPath strips the last element of a path: "a.b[2].c" -> "a.b[2]" ->
// "a.b" -> "a" -> "".
func parentPath(p string) string {
	i := strings.LastIndexAny(p, ".[")
	if i < 0 {
		return ""
	}
	return p[:i]
}

// Warnings returns what Load understood but did not apply, in file order,
// for the caller to print; nil for a YAML file.
func (f *File) Warnings() []Warning {
	if f.src == nil {
		return nil
	}
	w := slices.Clone(f.src.warnings)
	slices.SortStableFunc(w, func(a, b Warning) int {
		return cmp.Or(strings.Compare(a.File, b.File), cmp.Compare(a.Line, b.Line))
	})
	return w
}

// Source returns the file f was loaded from and its format, "yaml" or
// "mosquitto"; "" and "" for a File built in code.
func (f *File) Source() (file, format string) {
	if f.src == nil {
		return "", ""
	}
	return f.src.file, f.src.format
}

// collector gathers Errors for one File.
type collector struct {
	f    *File
	errs Errors
}

// at reports a problem with the value at path, placed where it came from.
func (c *collector) at(path, format string, a ...any) {
	c.errs = append(c.errs, &Error{Pos: c.f.pos(path), Path: path, Msg: fmt.Sprintf(format, a...)})
}

// wrap reports err (each of a joined error separately) about path.
func (c *collector) wrap(path string, err error) {
	for _, e := range leafErrors(err) {
		c.at(path, "%s", e.Error())
	}
}

// leafErrors flattens errors.Join trees.
func leafErrors(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, leafErrors(e)...)
		}
		return out
	}
	return []error{err}
}

var _ error = Errors(nil)
