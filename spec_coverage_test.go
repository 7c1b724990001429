package gannet_test

// Specification coverage: every normative statement of MQTT 3.1.1 and 5.0
// that binds a server, or that a server polices on input, is cited by a
// test. The statement lists live outside the repository, in
// ../shared/spec (or $GANNET_SPEC_DIR); see docs/spec-coverage.md for the
// citation convention this checker applies.
//
// Run it alone, with the uncovered list:
//
//	go test -run TestSpecCoverage -v .
//
// GANNET_SPEC_LIST=1 also lists where each statement is cited.

import (
	"bufio"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
)

// specMinCoverage is the share of server statements, per version, that
// must be cited by at least one test.
const specMinCoverage = 0.95

type specVersion string

const (
	spec311 specVersion = "3.1.1"
	spec5   specVersion = "5.0"
)

// specStatement is one row of a statement list.
type specStatement struct {
	id, binds, requirement, where string
}

// specPolicedClientRules are statements that bind the client but that the
// server checks on every packet it receives: the server's answer to a
// breach (closing the connection, a CONNACK or DISCONNECT reason code) is
// what a test checks. Each entry says how the server polices it. Client
// rules absent from this list (keep-alive timing, ordering of the client's
// own acknowledgements, what a client does with a CONNACK) cannot be
// observed from the server side and are not counted.
var specPolicedClientRules = map[specVersion]map[string]string{
	spec311: {
		"MQTT-3.1.0-1":  "a first packet other than CONNECT closes the connection",
		"MQTT-3.1.2-9":  "Will Flag 1 without Will Topic/Message is malformed: close",
		"MQTT-3.1.2-11": "Will Flag 0 with Will QoS or Will Retain set is malformed: close",
		"MQTT-3.1.2-13": "Will QoS non-zero with Will Flag 0 is malformed: close",
		"MQTT-3.1.2-14": "Will QoS 3 is malformed: close",
		"MQTT-3.1.2-15": "Will Retain with Will Flag 0 is malformed: close",
		"MQTT-3.1.2-18": "User Name Flag 0 with a user name in the payload is malformed: close",
		"MQTT-3.1.2-19": "User Name Flag 1 without a user name is malformed: close",
		"MQTT-3.1.2-20": "Password Flag 0 with a password in the payload is malformed: close",
		"MQTT-3.1.2-21": "Password Flag 1 without a password is malformed: close",
		"MQTT-3.1.2-22": "a password without a user name is malformed: close",
		"MQTT-3.1.3-1":  "payload fields are decoded in the prescribed order",
		"MQTT-3.1.3-3":  "a CONNECT without a ClientId is malformed: close",
		"MQTT-3.1.3-4":  "an ill-formed UTF-8 ClientId closes the connection",
		"MQTT-3.1.3-7":  "an empty ClientId with CleanSession 0 is refused (CONNACK 0x02)",
		"MQTT-3.1.3-10": "an ill-formed UTF-8 Will Topic closes the connection",
		"MQTT-3.1.3-11": "an ill-formed UTF-8 User Name closes the connection",
		"MQTT-3.8.3-1":  "an ill-formed UTF-8 Topic Filter closes the connection",
		"MQTT-3.8.3-3":  "a SUBSCRIBE without filters closes the connection",
		"MQTT-3.10.3-1": "an ill-formed UTF-8 Topic Filter closes the connection",
		"MQTT-3.10.3-2": "an UNSUBSCRIBE without filters closes the connection",
	},
	spec5: {
		"MQTT-3.1.0-1":  "a first packet other than CONNECT closes the connection",
		"MQTT-3.1.2-9":  "Will Flag 1 without will properties, topic and payload is malformed: close",
		"MQTT-3.1.2-11": "Will QoS non-zero with Will Flag 0 is malformed: close",
		"MQTT-3.1.2-12": "Will QoS 3 is malformed: close",
		"MQTT-3.1.2-13": "Will Retain with Will Flag 0 is malformed: close",
		"MQTT-3.1.2-16": "User Name Flag 0 with a user name in the payload is malformed: close",
		"MQTT-3.1.2-17": "User Name Flag 1 without a user name is malformed: close",
		"MQTT-3.1.2-18": "Password Flag 0 with a password in the payload is malformed: close",
		"MQTT-3.1.2-19": "Password Flag 1 without a password is malformed; a password alone is accepted",
		"MQTT-3.1.2-30": "a packet other than AUTH or DISCONNECT before CONNACK is a Protocol Error",
		"MQTT-3.1.3-1":  "payload fields are decoded in the prescribed order",
		"MQTT-3.1.3-3":  "a CONNECT without a ClientID is malformed: close",
		"MQTT-3.1.3-4":  "an ill-formed UTF-8 ClientID closes the connection",
		"MQTT-3.1.3-11": "an ill-formed UTF-8 Will Topic closes the connection",
		"MQTT-3.1.3-12": "an ill-formed UTF-8 User Name closes the connection",
		"MQTT-3.2.2-11": "a PUBLISH above Maximum QoS gets DISCONNECT 0x9B",
		"MQTT-3.2.2-14": "a retained PUBLISH when retain is unavailable gets DISCONNECT 0x9A",
		"MQTT-3.2.2-15": "a packet above the server's Maximum Packet Size gets DISCONNECT 0x95",
		"MQTT-3.2.2-17": "a Topic Alias above the server's maximum gets DISCONNECT 0x94",
		"MQTT-3.2.2-18": "a Topic Alias when the server allows none gets DISCONNECT 0x94",
		"MQTT-3.3.2-9":  "a Topic Alias above the server's maximum gets DISCONNECT 0x94",
		"MQTT-3.3.4-6":  "a PUBLISH carrying a Subscription Identifier is a Protocol Error",
		"MQTT-3.3.4-7":  "a PUBLISH beyond the server's Receive Maximum gets DISCONNECT 0x93",
		"MQTT-3.8.3-1":  "an ill-formed UTF-8 Topic Filter closes the connection",
		"MQTT-3.8.3-2":  "a SUBSCRIBE without filters is a Protocol Error",
		"MQTT-3.8.3-4":  "No Local on a shared subscription is a Protocol Error",
		"MQTT-3.10.3-1": "an ill-formed UTF-8 Topic Filter closes the connection",
		"MQTT-3.10.3-2": "an UNSUBSCRIBE without filters is a Protocol Error",
		"MQTT-4.12.0-3": "a client AUTH during the exchange with a reason other than 0x18 is a Protocol Error",
		"MQTT-4.12.0-7": "an AUTH from a client that gave no Authentication Method is a Protocol Error",
		"MQTT-4.12.1-1": "re-authentication with another method is a Protocol Error",
	},
}

// specDir finds the statement lists, or skips (fails when CI is set).
func specDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("GANNET_SPEC_DIR")
	if dir == "" {
		dir = filepath.Join("..", "shared", "spec")
	}
	if _, err := os.Stat(filepath.Join(dir, "mqtt-5.0-statements.md")); err != nil {
		msg := fmt.Sprintf("specification statement lists not found in %s (set GANNET_SPEC_DIR): %v", dir, err)
		if os.Getenv("CI") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return dir
}

var specRowRE = regexp.MustCompile(`^\|\s*(MQTT-[0-9.\-]+)\s*\|\s*([^|]*)\|\s*([^|]*)\|\s*([^|]*)\|\s*([^|]*)\|`)

// parseSpecStatements reads the rows of one statement list.
func parseSpecStatements(t *testing.T, path string) []specStatement {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []specStatement
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		m := specRowRE.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		out = append(out, specStatement{
			id:          m[1],
			binds:       strings.TrimSpace(m[3]),
			requirement: strings.TrimSpace(m[4]),
			where:       strings.TrimSpace(m[5]),
		})
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// serverStatements selects what a server must comply with or police.
func serverStatements(t *testing.T, v specVersion, all []specStatement) map[string]specStatement {
	t.Helper()
	sel := map[string]specStatement{}
	clientRows := map[string]bool{}
	for _, s := range all {
		switch s.binds {
		case "server", "both", "receiver":
			sel[s.id] = s
		case "client":
			clientRows[s.id] = true
			if _, ok := specPolicedClientRules[v][s.id]; ok {
				sel[s.id] = s
			}
		default:
			t.Errorf("%s %s: unknown binds column %q", v, s.id, s.binds)
		}
	}
	for id := range specPolicedClientRules[v] {
		if !clientRows[id] {
			t.Errorf("%s %s: listed as a policed client rule but is not a client row of the statement list", v, id)
		}
	}
	return sel
}

var (
	// specCiteRE finds a citation: MQTT-3.1.2-24, MQTT_3_1_2_24 (test
	// names) and the standard's irregular spellings MQTT-3.1.2.7 and
	// MQTT-3-8.3-4. An optional version marker just before it ("5.0 ",
	// "3.1.1 ", "v5 ", "v3.1.1 ") or just after it in parentheses
	// ("[MQTT-3.3.1-6] (v5)") says which version the citation checks.
	specCiteRE = regexp.MustCompile(`(?:\b(v?3\.1\.1|v?5\.0|v5|V5|V311)[ _:]*\[?)?MQTT[-_]([0-9]+)[._-]([0-9]+)[._-]([0-9]+)[._-]?[._-]([0-9]+)(?:\]? ?\((v?3\.1\.1|v?5\.0|v5)\))?`)
	// specCite42RE is 5.0's MQTT-4.2-1, printed so in the body.
	specCite42RE = regexp.MustCompile(`MQTT[-_]4[._-]2[-_]1\b`)
	specFuncRE   = regexp.MustCompile(`^func\s+(?:\([^)]*\)\s*)?([A-Za-z0-9_]+)`)
)

// specCitation is one occurrence of an identifier in a test file.
type specCitation struct {
	id      string
	version specVersion // "" when nothing says
	marked  bool        // version given by a marker right before the identifier
	file    string
	line    int
}

// specContext gives the version that a file or test function name implies,
// or "" when it names none.
func specContext(name string) specVersion {
	switch {
	case strings.HasPrefix(name, "v5_"), strings.Contains(name, "spec5"),
		strings.Contains(name, "V5"), strings.Contains(name, "Spec5"), strings.Contains(name, "MQTT5"):
		return spec5
	case strings.Contains(name, "spec311"), strings.Contains(name, "V311"),
		strings.Contains(name, "Spec311"), strings.Contains(name, "V3_1_1"):
		return spec311
	}
	return ""
}

var (
	line5RE   = regexp.MustCompile(`(^|[^0-9.])5\.0([^0-9.]|$)|\b[Vv]5\b|\bv5[A-Z]`)
	line311RE = regexp.MustCompile(`(^|[^0-9.])3\.1\.1([^0-9.]|$)|\b[Vv]311\b`)
)

// lineContext gives the version a line names when it names exactly one:
// a table row "CONNECT 5.0 ..." or {level: V5}, a comment "(3.1.1)", a
// call of a v5 helper.
func lineContext(line string) specVersion {
	has5, has311 := line5RE.MatchString(line), line311RE.MatchString(line)
	switch {
	case has5 && !has311:
		return spec5
	case has311 && !has5:
		return spec311
	}
	return ""
}

func markerVersion(m string) specVersion {
	switch strings.TrimPrefix(strings.ToLower(m), "v") {
	case "5.0", "5":
		return spec5
	case "3.1.1", "311":
		return spec311
	}
	return ""
}

// scanSpecCitations collects citations from every _test.go file under
// root, except the Go client library (client/), whose tests check the
// client side of a statement, not the server.
func scanSpecCitations(t *testing.T, root string) []specCitation {
	t.Helper()
	var out []specCitation
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			name := d.Name()
			if path != root && (strings.HasPrefix(name, ".") || name == "testdata" || name == "node_modules") {
				return filepath.SkipDir
			}
			if rel, _ := filepath.Rel(root, path); rel == "client" {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, "_test.go") || filepath.Base(path) == "spec_coverage_test.go" {
			return nil
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		fileCtx := specContext(filepath.Base(path))
		lines := strings.Split(string(data), "\n")
		funcCtx := specVersion("")
		for i, line := range lines {
			switch {
			case strings.HasPrefix(line, "func "):
				if m := specFuncRE.FindStringSubmatch(line); m != nil {
					funcCtx = specContext(m[1])
				}
			case strings.HasPrefix(line, "}"):
				funcCtx = ""
			case strings.HasPrefix(line, "//"):
				// A doc comment belongs to the declaration it precedes.
				funcCtx = ""
				for _, next := range lines[i+1:] {
					if !strings.HasPrefix(next, "//") {
						if m := specFuncRE.FindStringSubmatch(next); strings.HasPrefix(next, "func ") && m != nil {
							funcCtx = specContext(m[1])
						}
						break
					}
				}
			}
			if !strings.Contains(line, "MQTT") {
				continue
			}
			ctx := lineContext(line)
			if ctx == "" {
				ctx = funcCtx
			}
			if ctx == "" {
				ctx = fileCtx
			}
			for _, m := range specCiteRE.FindAllStringSubmatch(line, -1) {
				v := markerVersion(m[1])
				if v == "" {
					v = markerVersion(m[6])
				}
				marked := v != ""
				if !marked {
					v = ctx
				}
				id := fmt.Sprintf("MQTT-%s.%s.%s-%s", m[2], m[3], m[4], m[5])
				out = append(out, specCitation{id: id, version: v, marked: marked, file: path, line: i + 1})
			}
			if specCite42RE.MatchString(line) {
				out = append(out, specCitation{id: "MQTT-4.2.0-1", version: spec5, file: path, line: i + 1})
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestSpecCoverage reports, per version, how many server statements are
// cited by a test, and fails below specMinCoverage.
//
// A citation counts for a version when it is marked with it ("5.0
// MQTT-3.1.2-24"), or else when its line names exactly one version ("5.0",
// V5 or a v5 helper; "3.1.1" or V311), or else when the test function's
// name or the file's name implies it (V5, Spec5, v5_*.go, spec5*: 5.0; V311,
// Spec311, spec311*: 3.1.1), or else when its identifier exists in only one
// version. An
// unmarked identifier that both versions define, outside any 5.0 context,
// counts for 3.1.1: tests are 3.1.1 unless they say otherwise.
func TestSpecCoverage(t *testing.T) {
	dir := specDir(t)
	lists := map[specVersion][]specStatement{
		spec311: parseSpecStatements(t, filepath.Join(dir, "mqtt-3.1.1-statements.md")),
		spec5:   parseSpecStatements(t, filepath.Join(dir, "mqtt-5.0-statements.md")),
	}
	if len(lists[spec311]) != 141 || len(lists[spec5]) != 251 {
		t.Fatalf("statement lists: %d (3.1.1) and %d (5.0) rows, want 141 and 251", len(lists[spec311]), len(lists[spec5]))
	}
	defined := map[specVersion]map[string]bool{spec311: {}, spec5: {}}
	for v, l := range lists {
		for _, s := range l {
			defined[v][s.id] = true
		}
	}

	cited := map[specVersion]map[string][]specCitation{spec311: {}, spec5: {}}
	for _, c := range scanSpecCitations(t, ".") {
		v := c.version
		if v == "" {
			switch {
			case defined[spec311][c.id]:
				v = spec311
			case defined[spec5][c.id]:
				v = spec5
			}
		}
		if v == "" || !defined[v][c.id] {
			if c.marked {
				t.Errorf("%s:%d: %s is not a statement of MQTT %s", c.file, c.line, c.id, orVersion(c.version))
			} else {
				t.Logf("%s:%d: %s, cited in a %s context, is not a statement of MQTT %s: not counted", c.file, c.line, c.id, v, v)
			}
			continue
		}
		cited[v][c.id] = append(cited[v][c.id], c)
	}

	for _, v := range []specVersion{spec311, spec5} {
		sel := serverStatements(t, v, lists[v])
		var missing []string
		for id := range sel {
			if len(cited[v][id]) == 0 {
				missing = append(missing, id)
			}
		}
		sort.Slice(missing, func(i, j int) bool { return specLess(missing[i], missing[j]) })
		if os.Getenv("GANNET_SPEC_LIST") != "" {
			ids := make([]string, 0, len(sel))
			for id := range sel {
				ids = append(ids, id)
			}
			sort.Slice(ids, func(i, j int) bool { return specLess(ids[i], ids[j]) })
			for _, id := range ids {
				for _, c := range cited[v][id] {
					t.Logf("  cited %s %s at %s:%d", v, id, c.file, c.line)
				}
			}
		}
		covered := len(sel) - len(missing)
		ratio := float64(covered) / float64(len(sel))
		t.Logf("MQTT %s: %d of %d server statements cited by a test (%.1f%%)", v, covered, len(sel), 100*ratio)
		for _, id := range missing {
			s := sel[id]
			t.Logf("  uncovered %s %s [%s]: %s", v, id, s.binds, s.requirement)
		}
		if ratio < specMinCoverage {
			t.Errorf("MQTT %s: coverage %.1f%% is below %.0f%%", v, 100*ratio, 100*specMinCoverage)
		}
	}
}

func orVersion(v specVersion) string {
	if v == "" {
		return "3.1.1 or 5.0"
	}
	return string(v)
}

// specLess orders identifiers numerically.
func specLess(a, b string) bool {
	na, nb := specNums(a), specNums(b)
	for i := range na {
		if i >= len(nb) {
			return false
		}
		if na[i] != nb[i] {
			return na[i] < nb[i]
		}
	}
	return len(na) < len(nb)
}

func specNums(id string) []int {
	var out []int
	for _, f := range strings.FieldsFunc(strings.TrimPrefix(id, "MQTT-"), func(r rune) bool { return r == '.' || r == '-' }) {
		n := 0
		fmt.Sscanf(f, "%d", &n)
		out = append(out, n)
	}
	return out
}

// TestSpecCitationVersions pins the rules that assign a citation to a
// version (docs/spec-coverage.md).
func TestSpecCitationVersions(t *testing.T) {
	dir := t.TempDir()
	files := map[string]string{
		"a_test.go": `package a
// [MQTT-3.1.2-24] unmarked
// 5.0 [MQTT-3.1.2-24] marked before
// [MQTT-3.3.1-6] (v5) marked after
// {"CONNECT 5.0 row [MQTT-3.1.2-16]", V5},
// {"CONNECT in 3.1.1 and 5.0 alike [MQTT-3.1.2-16]"},

// Doc comment of a 5.0 test [MQTT-3.1.2-7].
func TestThingV5_MQTT_3_1_2_8(t *testing.T) {
	// inside [MQTT-3.1.2-9]
}
// after it [MQTT-3.1.2-10]
// irregular [MQTT-3.1.2.7] [MQTT-3-8.3-4] [MQTT-4.2-1]
`,
		"v5_b_test.go":     "package a\n// [MQTT-3.1.2-11]\n",
		"client/c_test.go": "package c\n// [MQTT-3.1.2-12]\n",
	}
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var got []string
	for _, c := range scanSpecCitations(t, dir) {
		got = append(got, fmt.Sprintf("%s %s:%d %q", filepath.Base(c.file), c.id, c.line, c.version))
	}
	sort.Strings(got)
	want := []string{
		`a_test.go MQTT-3.1.2-10:12 ""`,
		`a_test.go MQTT-3.1.2-16:5 "5.0"`,
		`a_test.go MQTT-3.1.2-16:6 ""`,
		`a_test.go MQTT-3.1.2-24:2 ""`,
		`a_test.go MQTT-3.1.2-24:3 "5.0"`,
		`a_test.go MQTT-3.1.2-7:13 ""`,
		`a_test.go MQTT-3.1.2-7:8 "5.0"`,
		`a_test.go MQTT-3.1.2-8:9 "5.0"`,
		`a_test.go MQTT-3.1.2-9:10 "5.0"`,
		`a_test.go MQTT-3.3.1-6:4 "5.0"`,
		`a_test.go MQTT-3.8.3-4:13 ""`,
		`a_test.go MQTT-4.2.0-1:13 "5.0"`,
		`v5_b_test.go MQTT-3.1.2-11:2 "5.0"`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("citations:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
