package main

import (
	"encoding/json"
	"os"
	"regexp"
	"strings"
	"testing"
)

// readmeSection is the README section whose shell blocks
// TestREADMEFirstTenant runs.
const readmeSection = "## Your first tenant in five calls"

// TestREADMEFirstTenant runs the README's "first tenant" walk-through,
// block by block, against a broker wired as serve --dev wires it, and checks
// every answer against the OpenAPI document: the README cannot drift from
// the API. The blocks are read by a small interpreter of the shell they
// are written in (variables, quoting, $(…), curl, jq -r), so the test needs
// neither curl nor jq; anything else in a block fails the test, so the
// README stays within what it understands.
func TestREADMEFirstTenant(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := shellBlocks(t, string(b), readmeSection)
	if len(blocks) < 6 {
		t.Fatalf("README section %q has %d sh blocks, want the setup and five calls", readmeSection, len(blocks))
	}

	w := startWired(t, true)
	sh := &miniShell{
		t:   t,
		api: &apiClient{t: t, w: w, doc: newLiveDoc(t)},
		// What the setup block gets from the running broker and from
		// "idbroker apikey create".
		vars:     map[string]string{"ISSUER": w.url, "API_KEY": w.apiKey},
		provided: map[string]bool{"ISSUER": true, "API_KEY": true},
	}
	for _, block := range blocks {
		for _, line := range block {
			sh.run(line)
		}
	}
	if n := len(sh.calls); n < 6 {
		t.Errorf("the README made %d API calls, want at least 6 (tenant, domain, connection and its activation, application, portal link)", n)
	}
	for _, v := range []string{"TENANT", "CONNECTION"} {
		if !strings.Contains(sh.vars[v], "_") {
			t.Errorf("$%s = %q after the README's calls, want an id", v, sh.vars[v])
		}
	}
	// The tenant is live: its domain routes to an active connection.
	conn := sh.api.do("GET", "/api/v1/connections/"+sh.vars["CONNECTION"], nil, 200)
	if conn["status"] != "active" || conn["tenant_id"] != sh.vars["TENANT"] {
		t.Errorf("connection after the README = %v, want active, of $TENANT", conn)
	}
	domains := sh.api.do("GET", "/api/v1/tenants/"+sh.vars["TENANT"]+"/domains", nil, 200)
	if d, _ := domains["data"].([]any); len(d) != 1 || d[0].(map[string]any)["verified"] != true {
		t.Errorf("domains after the README = %v, want one, verified", domains)
	}
}

// shellBlocks returns the ```sh blocks of the README section headed
// heading, each as its logical lines (continuations joined).
func shellBlocks(t *testing.T, readme, heading string) [][]string {
	t.Helper()
	i := strings.Index(readme, "\n"+heading+"\n")
	if i < 0 {
		t.Fatalf("README has no section %q", heading)
	}
	section := readme[i+len(heading)+2:]
	if j := strings.Index(section, "\n## "); j >= 0 {
		section = section[:j]
	}
	var blocks [][]string
	for _, m := range regexp.MustCompile("(?s)```sh\n(.*?)```").FindAllStringSubmatch(section, -1) {
		var lines []string
		var cur strings.Builder
		for _, l := range strings.Split(m[1], "\n") {
			if c, ok := strings.CutSuffix(l, "\\"); ok {
				cur.WriteString(c)
				continue
			}
			cur.WriteString(l)
			if s := strings.TrimSpace(cur.String()); s != "" && !strings.HasPrefix(s, "#") {
				lines = append(lines, s)
			}
			cur.Reset()
		}
		blocks = append(blocks, lines)
	}
	return blocks
}

// miniShell runs the subset of sh the README's blocks use.
type miniShell struct {
	t   *testing.T
	api *apiClient
	// vars are the shell's variables; provided are those the test sets
	// instead of running the command that sets them.
	vars     map[string]string
	provided map[string]bool
	calls    []string
}

var assignment = regexp.MustCompile(`^(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)=(.*)$`)

func (sh *miniShell) run(line string) {
	sh.t.Helper()
	if m := assignment.FindStringSubmatch(line); m != nil {
		name, value := m[1], m[2]
		if sh.provided[name] {
			return // the test's own value stands
		}
		if inner, ok := strings.CutPrefix(value, "$("); ok && strings.HasSuffix(inner, ")") {
			sh.vars[name] = strings.TrimSpace(sh.pipeline(strings.TrimSuffix(inner, ")")))
			return
		}
		words := sh.words(value)
		if len(words) != 1 {
			sh.t.Fatalf("README: %s: an assignment takes one word", line)
		}
		sh.vars[name] = words[0]
		return
	}
	sh.pipeline(line)
}

// pipeline runs "curl … [| jq -r FILTER]" and returns its output.
func (sh *miniShell) pipeline(line string) string {
	sh.t.Helper()
	words := sh.words(line)
	var stages [][]string
	cur := []string{}
	for _, w := range words {
		if w == "\x00|" {
			stages = append(stages, cur)
			cur = []string{}
			continue
		}
		cur = append(cur, w)
	}
	stages = append(stages, cur)
	if len(stages[0]) == 0 || stages[0][0] != "curl" {
		sh.t.Fatalf("README: %s: the test runs curl commands only (or set the variable in the test's provided list)", line)
	}
	out := sh.curl(line, stages[0][1:])
	for _, st := range stages[1:] {
		if len(st) != 3 || st[0] != "jq" || st[1] != "-r" {
			sh.t.Fatalf("README: %s: after a pipe, only jq -r FILTER is understood", line)
		}
		out = jqField(sh.t, line, out, st[2])
	}
	return out
}

// curl interprets the curl options the README uses.
func (sh *miniShell) curl(line string, args []string) string {
	sh.t.Helper()
	var method, url, body string
	failWithBody := false
	headers := map[string]string{}
	for i := 0; i < len(args); i++ {
		next := func() string {
			if i+1 >= len(args) {
				sh.t.Fatalf("README: %s: %s needs a value", line, args[i])
			}
			i++
			return args[i]
		}
		switch a := args[i]; a {
		case "-s", "-S", "-sS":
		case "--fail-with-body":
			failWithBody = true
		case "-X":
			method = next()
		case "-H":
			k, v, ok := strings.Cut(next(), ":")
			if !ok {
				sh.t.Fatalf("README: %s: header %q has no colon", line, args[i])
			}
			headers[strings.TrimSpace(k)] = strings.TrimSpace(v)
		case "-d", "--data":
			body = next()
			if method == "" {
				method = "POST"
			}
		default:
			if strings.HasPrefix(a, "-") || url != "" {
				sh.t.Fatalf("README: %s: curl option %q is not understood by the test", line, a)
			}
			url = a
		}
	}
	if method == "" {
		method = "GET"
	}
	if !json.Valid([]byte(body)) && body != "" {
		sh.t.Fatalf("README: %s: the body is not JSON: %s", line, body)
	}
	var raw []byte
	if body != "" {
		raw = []byte(body)
	}
	a, err := httpDo(method, url, headers, raw)
	if err != nil {
		sh.t.Fatalf("README: %s: %v", line, err)
	}
	sh.calls = append(sh.calls, method+" "+url)
	sh.api.doc.check(sh.t, method, url, a)
	if a.status >= 400 {
		if failWithBody {
			sh.t.Fatalf("README: %s\nanswered %d: %s", line, a.status, a.body)
		}
		sh.t.Errorf("README: %s\nanswered %d: %s", line, a.status, a.body)
	}
	return string(a.body)
}

// jqField applies a jq path filter (.a.b) to a JSON document, as jq -r.
func jqField(t *testing.T, line, doc, filter string) string {
	t.Helper()
	var v any
	if err := json.Unmarshal([]byte(doc), &v); err != nil {
		t.Fatalf("README: %s: jq input is not JSON: %v", line, err)
	}
	for _, k := range strings.Split(strings.TrimPrefix(filter, "."), ".") {
		m, ok := v.(map[string]any)
		if !ok {
			t.Fatalf("README: %s: jq %s: not an object", line, filter)
		}
		v = m[k]
	}
	switch x := v.(type) {
	case string:
		return x
	case nil:
		return "null"
	}
	b, _ := json.Marshal(v)
	return string(b)
}

// words splits a line as sh does: blanks separate words, single quotes
// keep everything, double quotes expand $VAR, adjacent parts join, and an
// unquoted | is a word of its own ("\x00|").
func (sh *miniShell) words(line string) []string {
	sh.t.Helper()
	var (
		out   []string
		cur   strings.Builder
		inArg bool
	)
	flush := func() {
		if inArg {
			out = append(out, cur.String())
		}
		cur.Reset()
		inArg = false
	}
	for i := 0; i < len(line); i++ {
		switch c := line[i]; {
		case c == ' ' || c == '\t':
			flush()
		case c == '|':
			flush()
			out = append(out, "\x00|")
		case c == '\'':
			j := strings.IndexByte(line[i+1:], '\'')
			if j < 0 {
				sh.t.Fatalf("README: %s: unterminated '", line)
			}
			cur.WriteString(line[i+1 : i+1+j])
			inArg = true
			i += j + 1
		case c == '"':
			inArg = true
			for i++; i < len(line) && line[i] != '"'; i++ {
				switch {
				case line[i] == '\\' && i+1 < len(line) && strings.IndexByte(`"\$`, line[i+1]) >= 0:
					i++
					cur.WriteByte(line[i])
				case line[i] == '$':
					i = sh.expand(line, i, &cur)
				default:
					cur.WriteByte(line[i])
				}
			}
			if i >= len(line) {
				sh.t.Fatalf(`README: %s: unterminated "`, line)
			}
		case c == '$':
			inArg = true
			i = sh.expand(line, i, &cur)
		case c == '\\' || c == '`' || c == ';' || c == '&' || c == '>' || c == '<' || c == '(' || c == ')':
			sh.t.Fatalf("README: %s: %q is beyond what the test's shell understands", line, c)
		default:
			inArg = true
			cur.WriteByte(c)
		}
	}
	flush()
	return out
}

// expand writes the value of the variable at line[i] ($NAME or ${NAME})
// and returns the index of its last byte.
func (sh *miniShell) expand(line string, i int, w *strings.Builder) int {
	sh.t.Helper()
	m := regexp.MustCompile(`^\$(?:\{([A-Za-z_][A-Za-z0-9_]*)\}|([A-Za-z_][A-Za-z0-9_]*))`).FindStringSubmatch(line[i:])
	if m == nil {
		sh.t.Fatalf("README: %s: a $ the test's shell does not understand at byte %d", line, i)
	}
	name := m[1] + m[2]
	v, ok := sh.vars[name]
	if !ok {
		sh.t.Fatalf("README: %s: $%s is not set by an earlier block", line, name)
	}
	w.WriteString(v)
	return i + len(m[0]) - 1
}
