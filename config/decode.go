package config

import (
	"errors"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"
)

// The YAML decoder walks the syntax tree of goccy/go-yaml itself, instead
// of calling yaml.Unmarshal, so that it can go on after the first problem
// and report every one with its line: unknown keys (with a suggestion),
// values of the wrong type, repeated keys.

var (
	durationType = reflect.TypeFor[time.Duration]()
	sizeType     = reflect.TypeFor[Size]()
	modeType     = reflect.TypeFor[Mode]()
	listenerType = reflect.TypeFor[Listener]()
	bridgeType   = reflect.TypeFor[Bridge]()
	topicType    = reflect.TypeFor[BridgeTopic]()
)

// scalarKind is what a scalar was written as.
type scalarKind uint8

const (
	kindAny    scalarKind = iota // untyped text: an environment variable or a flag
	kindString                   // a YAML string, quoted or not
	kindInt
	kindFloat
	kindBool
	kindNull
)

// scalar is one scalar value to set.
type scalar struct {
	text string // the text as written (unquoted for strings)
	kind scalarKind
	num  any // int64 or uint64 for kindInt, float64 for kindFloat, bool for kindBool
}

// yamlDecoder decodes one YAML file into a File.
type yamlDecoder struct {
	f       *File
	file    string
	errs    Errors
	bad     map[string]bool // paths with an error, so Validate does not report them again
	anchors map[string]ast.Node
}

// decodeYAML decodes data over f, recording where each key is.
func decodeYAML(f *File, name string, data []byte) (Errors, map[string]bool) {
	d := &yamlDecoder{f: f, file: name, bad: make(map[string]bool), anchors: make(map[string]ast.Node)}
	src := f.track()
	src.file, src.format = name, "yaml"
	tree, err := parser.ParseBytes(data, 0, parser.AllowDuplicateMapKey())
	if err != nil {
		var se *yaml.SyntaxError
		line, msg := 0, err.Error()
		if errors.As(err, &se) {
			msg = se.Message
			if se.Token != nil && se.Token.Position != nil {
				line = se.Token.Position.Line
			}
		}
		d.errs = append(d.errs, &Error{Pos: Pos{File: name, Line: line}, Msg: "YAML syntax error: " + msg})
		return d.errs, d.bad
	}
	var body ast.Node
	for _, doc := range tree.Docs {
		if doc == nil || doc.Body == nil {
			continue
		}
		if body != nil {
			d.errorf(doc.Body, "", "a second YAML document (after ---); put everything in one")
			break
		}
		body = doc.Body
	}
	if body != nil {
		d.decode(reflect.ValueOf(f).Elem(), body, "")
	}
	return d.errs, d.bad
}

// line returns the line of n, 0 if unknown.
func line(n ast.Node) int {
	if n == nil {
		return 0
	}
	if tk := n.GetToken(); tk != nil && tk.Position != nil {
		return tk.Position.Line
	}
	return 0
}

// errorf reports a value at path that could not be decoded; Validate's
// findings about path and below are then left out, as they would be about
// the default value instead.
func (d *yamlDecoder) errorf(n ast.Node, path, format string, a ...any) {
	d.notef(n, path, format, a...)
	if path != "" {
		d.bad[path] = true
	}
}

// notef reports a problem that leaves the value at path as decoded.
func (d *yamlDecoder) notef(n ast.Node, path, format string, a ...any) {
	d.errs = append(d.errs, &Error{Pos: Pos{File: d.file, Line: line(n)}, Path: path, Msg: fmt.Sprintf(format, a...)})
}

// resolve looks through anchors, aliases and tags.
func (d *yamlDecoder) resolve(n ast.Node) ast.Node {
	for range 64 {
		switch v := n.(type) {
		case *ast.AnchorNode:
			if v.Name != nil {
				d.anchors[anchorName(v.Name)] = v.Value
			}
			n = v.Value
		case *ast.AliasNode:
			target, ok := d.anchors[anchorName(v.Value)]
			if !ok {
				return v
			}
			n = target
		case *ast.TagNode:
			n = v.Value
		default:
			return n
		}
	}
	return n
}

func anchorName(n ast.Node) string {
	if n == nil {
		return ""
	}
	if s, ok := n.(*ast.StringNode); ok {
		return s.Value
	}
	return n.GetToken().Value
}

// describe names the kind of a node for "want X, got Y" messages.
func describe(n ast.Node) string {
	switch v := n.(type) {
	case *ast.MappingNode, *ast.MappingValueNode:
		return "a mapping"
	case *ast.SequenceNode:
		return "a list"
	case *ast.NullNode:
		return "nothing"
	case *ast.AliasNode:
		return "an undefined alias"
	case *ast.StringNode:
		return strconv.Quote(v.Value)
	case *ast.LiteralNode:
		return strconv.Quote(v.Value.Value)
	}
	if tk := n.GetToken(); tk != nil {
		return tk.Value
	}
	return n.Type().String()
}

// scalarOf returns the scalar n holds, if it is one.
func scalarOf(n ast.Node) (scalar, bool) {
	switch v := n.(type) {
	case *ast.StringNode:
		return scalar{text: v.Value, kind: kindString}, true
	case *ast.LiteralNode:
		return scalar{text: v.Value.Value, kind: kindString}, true
	case *ast.IntegerNode:
		return scalar{text: v.Token.Value, kind: kindInt, num: v.Value}, true
	case *ast.FloatNode:
		return scalar{text: v.Token.Value, kind: kindFloat, num: v.Value}, true
	case *ast.BoolNode:
		return scalar{text: v.Token.Value, kind: kindBool, num: v.Value}, true
	case *ast.NullNode:
		return scalar{text: "", kind: kindNull}, true
	case *ast.InfinityNode, *ast.NanNode:
		return scalar{text: n.GetToken().Value, kind: kindFloat, num: n.(ast.ScalarNode).GetValue()}, true
	}
	return scalar{}, false
}

// decode sets v from n; path is v's YAML path.
func (d *yamlDecoder) decode(v reflect.Value, n ast.Node, path string) {
	n = d.resolve(n)
	if a, ok := n.(*ast.AliasNode); ok {
		d.errorf(a, path, "alias *%s is not defined before it is used", anchorName(a.Value))
		return
	}
	t := v.Type()
	switch {
	case t.Kind() == reflect.Struct:
		d.decodeStruct(v, n, path)
	case t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.String:
		d.decodeStrings(v, n, path)
	case t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.Struct:
		d.decodeList(v, n, path)
	case t.Kind() == reflect.Map && t.Key().Kind() == reflect.String && t.Elem().Kind() == reflect.String:
		d.decodeStringMap(v, n, path)
	default:
		s, ok := scalarOf(n)
		if !ok {
			d.errorf(n, path, "want %s, got %s", want(t), describe(n))
			return
		}
		if err := setScalar(v, s); err != nil {
			d.errorf(n, path, "%v", err)
		}
	}
}

// mappingPairs returns the key-value pairs of a mapping node.
func mappingPairs(n ast.Node) ([]*ast.MappingValueNode, bool) {
	switch m := n.(type) {
	case *ast.MappingNode:
		return m.Values, true
	case *ast.MappingValueNode:
		return []*ast.MappingValueNode{m}, true
	}
	return nil, false
}

func (d *yamlDecoder) decodeStruct(v reflect.Value, n ast.Node, path string) {
	if _, null := n.(*ast.NullNode); null {
		return // "section:" with nothing under it keeps the defaults
	}
	pairs, ok := mappingPairs(n)
	if !ok {
		if path == "" {
			d.errorf(n, "", "the file must be a YAML mapping of sections (listeners:, limits:, ...), got %s", describe(n))
			return
		}
		d.errorf(n, path, "want a mapping of keys, got %s", describe(n))
		return
	}
	fields := structFields(v.Type())
	seen := make(map[string]int)
	for _, kv := range pairs {
		if _, merge := kv.Key.(*ast.MergeKeyNode); merge {
			d.notef(kv.Key, path, "merge keys (<<) are not supported; write the keys out")
			continue
		}
		key, ok := scalarOf(d.resolve(kv.Key))
		if !ok || key.kind == kindNull {
			d.notef(kv.Key, path, "a key must be a plain name, got %s", describe(kv.Key))
			continue
		}
		name := key.text
		sub := joinPath(path, name)
		if first, dup := seen[name]; dup {
			d.notef(kv.Key, sub, "repeated; first set on line %d", first) // the first value is kept, and checked
			continue
		}
		seen[name] = line(kv.Key)
		i, ok := fields[name]
		if !ok {
			d.notef(kv.Key, sub, "unknown key%s", suggest(v.Type(), path, name))
			continue
		}
		d.f.setPos(sub, Pos{File: d.file, Line: line(kv.Key)})
		d.decode(v.Field(i), kv.Value, sub)
	}
}

func (d *yamlDecoder) decodeStrings(v reflect.Value, n ast.Node, path string) {
	if _, null := n.(*ast.NullNode); null {
		v.SetZero()
		return
	}
	seq, ok := n.(*ast.SequenceNode)
	if !ok {
		d.errorf(n, path, "want a list, got %s", describe(n))
		return
	}
	out := make([]string, 0, len(seq.Values))
	for i, item := range seq.Values {
		item = d.resolve(item)
		s, ok := scalarOf(item)
		if !ok || s.kind == kindNull {
			d.errorf(item, fmt.Sprintf("%s[%d]", path, i), "want a string, got %s", describe(item))
			continue
		}
		out = append(out, s.text)
	}
	v.Set(reflect.ValueOf(out))
}

// decodeStringMap reads a mapping of names to scalars (auth.jwt.required_claims).
func (d *yamlDecoder) decodeStringMap(v reflect.Value, n ast.Node, path string) {
	if _, null := n.(*ast.NullNode); null {
		v.SetZero()
		return
	}
	pairs, ok := mappingPairs(n)
	if !ok {
		d.errorf(n, path, "want a mapping of names to values, got %s", describe(n))
		return
	}
	out := make(map[string]string, len(pairs))
	for _, kv := range pairs {
		key, ok := scalarOf(d.resolve(kv.Key))
		if !ok || key.kind == kindNull {
			d.errorf(kv.Key, path, "a key must be a plain name, got %s", describe(kv.Key))
			continue
		}
		sub := joinPath(path, key.text)
		if _, dup := out[key.text]; dup {
			d.notef(kv.Key, sub, "repeated")
			continue
		}
		val, ok := scalarOf(d.resolve(kv.Value))
		if !ok || val.kind == kindNull {
			d.errorf(kv.Value, sub, "want a value, got %s", describe(kv.Value))
			continue
		}
		out[key.text] = val.text
	}
	if len(out) == 0 {
		v.SetZero()
		return
	}
	v.Set(reflect.ValueOf(out))
}

func (d *yamlDecoder) decodeList(v reflect.Value, n ast.Node, path string) {
	if _, null := n.(*ast.NullNode); null {
		v.SetZero()
		return
	}
	seq, ok := n.(*ast.SequenceNode)
	if !ok {
		d.errorf(n, path, "want a list, got %s", describe(n))
		return
	}
	out := reflect.MakeSlice(v.Type(), 0, len(seq.Values))
	for i, item := range seq.Values {
		sub := fmt.Sprintf("%s[%d]", path, i)
		e := newElem(v.Type().Elem())
		d.f.setPos(sub, Pos{File: d.file, Line: line(item)})
		d.decode(e, item, sub)
		out = reflect.Append(out, e)
	}
	v.Set(out)
}

// newElem returns the value a new list element starts from.
func newElem(t reflect.Type) reflect.Value {
	e := reflect.New(t).Elem()
	switch t {
	case listenerType:
		e.Set(reflect.ValueOf(defaultListener()))
	case bridgeType:
		e.Set(reflect.ValueOf(defaultBridge()))
	case topicType:
		e.Set(reflect.ValueOf(defaultBridgeTopic()))
	case webhookType:
		e.Set(reflect.ValueOf(defaultWebhook()))
	}
	return e
}

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// yamlName returns the key of a struct field, "" if it has none.
func yamlName(sf reflect.StructField) string {
	tag, ok := sf.Tag.Lookup("yaml")
	if !ok || !sf.IsExported() {
		return ""
	}
	name, _, _ := strings.Cut(tag, ",")
	if name == "-" {
		return ""
	}
	return name
}

// structFields maps the keys of a struct type to field indexes.
func structFields(t reflect.Type) map[string]int {
	m := make(map[string]int, t.NumField())
	for i := range t.NumField() {
		if name := yamlName(t.Field(i)); name != "" {
			m[name] = i
		}
	}
	return m
}

// suggest returns " (did you mean X?)" for a mistyped key: a key of the
// same section within two edits, or the same key in another section.
func suggest(t reflect.Type, path, name string) string {
	best, bestD := "", typoDistance(name)+1
	for k := range structFields(t) {
		if dist := editDistance(name, k); dist < bestD {
			best, bestD = k, dist
		}
	}
	if best != "" {
		return fmt.Sprintf(" (did you mean %s?)", best)
	}
	var elsewhere []string
	walkKeys(reflect.TypeFor[File](), "", func(p, k string) {
		if k == name && p != joinPath(path, name) {
			elsewhere = append(elsewhere, p)
		}
	})
	if len(elsewhere) > 0 {
		return fmt.Sprintf(" (did you mean %s?)", strings.Join(elsewhere, " or "))
	}
	var keys []string
	for k := range structFields(t) {
		keys = append(keys, k)
	}
	if len(keys) > 0 && len(keys) <= 24 {
		slices.Sort(keys)
		return "; known keys here: " + strings.Join(keys, ", ")
	}
	return ""
}

// walkKeys calls fn with the path and key of every key of t, lists of
// structs written with [] (listeners[].tls.cert_file).
func walkKeys(t reflect.Type, path string, fn func(path, key string)) {
	for i := range t.NumField() {
		sf := t.Field(i)
		name := yamlName(sf)
		if name == "" {
			continue
		}
		p := joinPath(path, name)
		fn(p, name)
		ft := sf.Type
		switch {
		case ft.Kind() == reflect.Struct:
			walkKeys(ft, p, fn)
		case ft.Kind() == reflect.Slice && ft.Elem().Kind() == reflect.Struct:
			walkKeys(ft.Elem(), p+"[]", fn)
		}
	}
}

// typoDistance is how many edits a mistyped key of this length may have.
func typoDistance(name string) int {
	switch {
	case len(name) >= 8:
		return 3
	case len(name) >= 5:
		return 2
	}
	return 1
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// want names what a field of type t takes.
func want(t reflect.Type) string {
	switch {
	case t == durationType:
		return "a duration such as 10s"
	case t == sizeType:
		return "a size such as 1048576 or 4MiB"
	case t == modeType:
		return "an octal permission such as 0660"
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int64:
		return "an integer"
	case reflect.Float64:
		return "a number"
	case reflect.Slice:
		return "a list"
	case reflect.Struct:
		return "a mapping of keys"
	}
	return t.String()
}

// setScalar parses s into v, by v's type. A YAML value must already have
// the right YAML type (a quoted "10" is not an integer); text from the
// environment or a flag (kindAny) is parsed.
func setScalar(v reflect.Value, s scalar) error {
	t := v.Type()
	bad := func() error { return fmt.Errorf("want %s, got %s", want(t), s.quoted()) }
	switch {
	case t == durationType:
		switch s.kind {
		case kindString, kindAny:
			dur, err := time.ParseDuration(strings.TrimSpace(s.text))
			if err != nil {
				if n, err := strconv.ParseInt(strings.TrimSpace(s.text), 10, 64); err == nil && n != 0 {
					return fmt.Errorf("%s has no unit: write it as %ds, %dms, ...", s.quoted(), n, n)
				}
				return bad()
			}
			v.SetInt(int64(dur))
		case kindInt:
			if n, ok := intOf(s.num); ok && n == 0 {
				v.SetInt(0)
				return nil
			}
			return fmt.Errorf("%s has no unit: write it as %ss, %sms, ...", s.text, s.text, s.text)
		default:
			return bad()
		}
		return nil
	case t == sizeType:
		switch s.kind {
		case kindInt:
			n, ok := intOf(s.num)
			if !ok || n < 0 {
				return fmt.Errorf("%s is out of range", s.text)
			}
			v.SetInt(n)
		case kindString, kindAny, kindFloat:
			n, err := ParseSize(s.text)
			if err != nil {
				return err
			}
			v.SetInt(int64(n))
		default:
			return bad()
		}
		return nil
	case t == modeType:
		if s.kind == kindNull || s.kind == kindBool || s.kind == kindFloat {
			return bad()
		}
		m, err := ParseMode(s.text)
		if err != nil {
			return fmt.Errorf("%s: %v", s.quoted(), err)
		}
		v.SetUint(uint64(m))
		return nil
	}
	switch t.Kind() {
	case reflect.String:
		if s.kind == kindNull {
			v.SetString("")
		} else {
			v.SetString(s.text)
		}
	case reflect.Bool:
		switch s.kind {
		case kindBool:
			v.SetBool(s.num.(bool))
		case kindAny:
			b, err := strconv.ParseBool(strings.TrimSpace(s.text))
			if err != nil {
				return bad()
			}
			v.SetBool(b)
		default:
			return bad()
		}
	case reflect.Int, reflect.Int64:
		var n int64
		switch s.kind {
		case kindInt:
			i, ok := intOf(s.num)
			if !ok {
				return fmt.Errorf("%s is out of range", s.text)
			}
			n = i
		case kindAny:
			i, err := strconv.ParseInt(strings.ReplaceAll(strings.TrimSpace(s.text), "_", ""), 10, 64)
			if err != nil {
				return bad()
			}
			n = i
		default:
			return bad()
		}
		if v.OverflowInt(n) {
			return fmt.Errorf("%s is out of range", s.text)
		}
		v.SetInt(n)
	case reflect.Float64:
		var f float64
		switch s.kind {
		case kindInt:
			switch i := s.num.(type) {
			case int64:
				f = float64(i)
			case uint64:
				f = float64(i)
			}
		case kindFloat:
			f, _ = s.num.(float64)
		case kindAny:
			x, err := strconv.ParseFloat(strings.TrimSpace(s.text), 64)
			if err != nil {
				return bad()
			}
			f = x
		default:
			return bad()
		}
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return fmt.Errorf("%s is not a finite number", s.text)
		}
		v.SetFloat(f)
	default:
		return fmt.Errorf("cannot set a %s", t)
	}
	return nil
}

// intOf returns the value of an integer node (int64, or uint64 for some
// positive numbers) if it fits an int64.
func intOf(num any) (int64, bool) {
	switch n := num.(type) {
	case int64:
		return n, true
	case uint64:
		if n <= math.MaxInt64 {
			return int64(n), true
		}
	}
	return 0, false
}

func (s scalar) quoted() string {
	switch s.kind {
	case kindNull:
		return "nothing"
	case kindString, kindAny:
		return strconv.Quote(s.text)
	}
	return s.text
}
