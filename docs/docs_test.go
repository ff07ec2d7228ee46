// Package docs holds the user documentation; its test keeps the reference
// pages complete: every event type, configuration variable and metric the
// code defines must appear in docs/reference, so none ships undocumented.
package docs_test

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/idbroker/idbroker/events"
	"github.com/idbroker/idbroker/internal/metrics"
)

// reference is the text of every page under docs/reference.
func reference(t *testing.T) string {
	t.Helper()
	var b strings.Builder
	err := filepath.WalkDir("reference", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".md") {
			return err
		}
		text, err := os.ReadFile(path)
		b.Write(text)
		return err
	})
	if err != nil {
		t.Fatalf("read docs/reference: %v", err)
	}
	return b.String()
}

// missing reports the names absent from text, each looked for as a
// whole word (IDBROKER_RATE_LIMIT_LOGIN must not pass for
// IDBROKER_RATE_LIMIT_LOGIN_TENANT).
func missing(text string, names []string) []string {
	var out []string
	for _, n := range names {
		re := regexp.MustCompile(`(^|[^A-Za-z0-9_.])` + regexp.QuoteMeta(n) + `($|[^A-Za-z0-9_])`)
		if !re.MatchString(text) {
			out = append(out, n)
		}
	}
	return out
}

func TestEventTypesDocumented(t *testing.T) {
	if m := missing(reference(t), events.Types()); len(m) > 0 {
		t.Errorf("event types not documented in docs/reference (events.md): %v", m)
	}
}

func TestMetricsDocumented(t *testing.T) {
	names := metrics.New().Names()
	if len(names) == 0 {
		t.Fatal("metrics.Registry.Names returned nothing: the test would prove nothing")
	}
	if m := missing(reference(t), names); len(m) > 0 {
		t.Errorf("metrics not documented in docs/reference (operations.md): %v", m)
	}
}

// envVar is a configuration variable as the code names it: a string
// literal, so a variable read anywhere (cmd/idbroker's config, a package
// reading its own) is found.
var envVar = regexp.MustCompile(`"(IDBROKER_[A-Z0-9_]*[A-Z0-9])"`)

// testOnly reports the variables that configure the test suite, not the
// broker (IDBROKER_TEST_…); CONTRIBUTING.md documents them.
func testOnly(name string) bool { return strings.HasPrefix(name, "IDBROKER_TEST_") }

// codeVariables are the configuration variables the code reads, sorted:
// those of non-test files, or with tests those the test suite and its
// tools read too (IDBROKER_DOC_SCREENSHOTS); the test suite's own
// (IDBROKER_TEST_…) only with testVars.
func codeVariables(t *testing.T, tests, testVars bool) []string {
	t.Helper()
	var names []string
	err := filepath.WalkDir("..", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == ".git" || d.Name() == "testdata" || d.Name() == "node_modules") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || (!tests && strings.HasSuffix(path, "_test.go")) {
			return nil
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, m := range envVar.FindAllSubmatch(src, -1) {
			names = append(names, string(m[1]))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(names)
	names = slices.Compact(names)
	if !testVars {
		names = slices.DeleteFunc(names, testOnly)
	}
	if len(names) < 5 {
		t.Fatalf("found only %v in the sources: the scan is broken", names)
	}
	return names
}

func TestConfigurationDocumented(t *testing.T) {
	if m := missing(reference(t), codeVariables(t, false, false)); len(m) > 0 {
		t.Errorf("configuration variables not documented in docs/reference (operations.md): %v", m)
	}
}

// TestTestVariablesDocumented keeps CONTRIBUTING.md's table of the test
// suite's services complete: every IDBROKER_TEST_* variable that the
// shared test helpers read (non-test files such as internal/testdb,
// internal/browsertest) is one a contributor may set, so it is named
// there. Variables a single test reads are that test's business.
func TestTestVariablesDocumented(t *testing.T) {
	contributing, err := os.ReadFile("../CONTRIBUTING.md")
	if err != nil {
		t.Fatal(err)
	}
	var helpers []string
	for _, name := range codeVariables(t, false, true) {
		if testOnly(name) {
			helpers = append(helpers, name)
		}
	}
	if len(helpers) < 2 {
		t.Fatalf("found only %v in the test helpers: the scan is broken", helpers)
	}
	if m := missing(string(contributing), helpers); len(m) > 0 {
		t.Errorf("test variables not documented in CONTRIBUTING.md: %v", m)
	}
}

// TestDocumentedVariablesExist is the converse: every IDBROKER_* variable
// the README, the guides and the reference name is one the code reads, so
// a renamed or mistyped variable in the docs, which the broker would
// silently ignore, fails here. A name ending in "_*" or "_{" stands for a
// family (IDBROKER_RATE_LIMIT_*, IDBROKER_RATE_LIMIT_{SCIM,API}) and needs
// one member.
func TestDocumentedVariablesExist(t *testing.T) {
	code := codeVariables(t, true, true)
	named := regexp.MustCompile(`IDBROKER_[A-Z0-9_]*[A-Z0-9](_\*|_\{)?`)
	pages := []string{"../README.md", "../CONTRIBUTING.md", "../TESTING.md", "../SECURITY.md", "../BENCHMARKS.md"}
	for _, dir := range []string{"guides", "reference"} {
		more, err := filepath.Glob(filepath.Join(dir, "*.md"))
		if err != nil {
			t.Fatal(err)
		}
		pages = append(pages, more...)
	}
	for _, page := range pages {
		text, err := os.ReadFile(page)
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range named.FindAllString(string(text), -1) {
			prefix, family := strings.CutSuffix(name, "_*")
			if !family {
				prefix, family = strings.CutSuffix(name, "_{")
			}
			if family {
				if !slices.ContainsFunc(code, func(c string) bool { return strings.HasPrefix(c, prefix+"_") }) {
					t.Errorf("%s names %s, but the code reads no variable of that family", page, name)
				}
				continue
			}
			if !slices.Contains(code, name) {
				t.Errorf("%s names %s, which the code never reads", page, name)
			}
		}
	}
}

// TestExampleRequestIDs keeps the request ids of the examples in the shape
// the broker makes them (32 hex digits, internal/httpserver), so that a
// reader matching the reference id a user was shown against the
// audit rows, events and logs does not look for a prefix that is not there.
func TestExampleRequestIDs(t *testing.T) {
	example := regexp.MustCompile(`"request_id":\s*"([^"]*)"`)
	shape := regexp.MustCompile(`^[0-9a-f]*…?$`)
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	text := reference(t) + string(readme)
	matches := example.FindAllStringSubmatch(text, -1)
	if len(matches) < 3 {
		t.Fatalf("found %d request_id examples: the scan is broken", len(matches))
	}
	for _, m := range matches {
		if !shape.MatchString(m[1]) {
			t.Errorf("example request_id %q: the broker's are hex (e.g. \"7d1e0c2a…\")", m[1])
		}
	}
}
