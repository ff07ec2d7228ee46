package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestServeHelpNamesEveryVariable keeps "idbroker serve --help" complete:
// every IDBROKER_* variable this command reads is listed there, so an
// operator reading the help on a server without the docs sees them all.
// Files built only with a tag (pprof) are left out, as their variables are
// not in a release binary.
func TestServeHelpNamesEveryVariable(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	literal := regexp.MustCompile(`"(IDBROKER_[A-Z0-9_]*[A-Z0-9])"`)
	seen := map[string]bool{}
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasPrefix(string(src), "//go:build") {
			continue
		}
		for _, m := range literal.FindAllSubmatch(src, -1) {
			seen[string(m[1])] = true
		}
	}
	if len(seen) < 10 {
		t.Fatalf("found only %d variables in cmd/idbroker: the scan is broken", len(seen))
	}
	help, _, code := runInProcess("serve", "--help")
	if code != exitOK {
		t.Fatalf("serve --help exited %d", code)
	}
	for name := range seen {
		if !regexp.MustCompile(`(?m)^\t` + name + `\s`).MatchString(help) {
			t.Errorf("serve --help does not list %s", name)
		}
	}
}

// TestCommandsDocumented keeps the command summaries of "idbroker --help"
// and README's "Command line" section true to the commands: every verb a
// command's own usage names ("Usage: idbroker keys rotate|rewrap") is in
// its summary and has a line in the README.
func TestCommandsDocumented(t *testing.T) {
	t.Parallel()
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(readme), "\n## Command line\n")
	if !ok {
		t.Fatal(`README.md has no "## Command line" section`)
	}
	section, _, _ = strings.Cut(section, "\n## ")
	usage := regexp.MustCompile(`Usage: idbroker (\S+)(?: ([a-z|-]+))? \[flags\]`)
	for _, cmd := range commands() {
		if !strings.Contains(section, "idbroker "+cmd.name) {
			t.Errorf("README's Command line section has no line for %q", "idbroker "+cmd.name)
		}
		if cmd.name == "serve" || cmd.name == "version" {
			continue // no verbs, and serve's own help is checked above
		}
		out, _, _ := runInProcess(cmd.name, "--help")
		m := usage.FindStringSubmatch(out)
		if m == nil {
			t.Errorf("%s --help has no usage line:\n%s", cmd.name, out)
			continue
		}
		if m[2] == "" {
			continue // a command without verbs (healthcheck)
		}
		for _, verb := range strings.Split(m[2], "|") {
			if !regexp.MustCompile(`\b` + verb + `\b`).MatchString(cmd.summary) {
				t.Errorf("idbroker --help summary of %s, %q, does not name %q", cmd.name, cmd.summary, verb)
			}
			if !strings.Contains(section, "idbroker "+cmd.name+" "+verb) {
				t.Errorf("README's Command line section has no line for %q", "idbroker "+cmd.name+" "+verb)
			}
		}
	}
}

// TestDocsCommandLinesUseRealFlags keeps the command lines the documents
// show runnable as written: every "idbroker <command> [verb] --flag" in
// README.md, CONTRIBUTING.md, TESTING.md and docs/ names a command and verb
// that exist and flags that "idbroker <command> [verb] --help" lists, so a
// renamed flag cannot leave a copy-pasted line failing with "flag provided
// but not defined".
func TestDocsCommandLinesUseRealFlags(t *testing.T) {
	t.Parallel()
	pages := []string{"../../README.md", "../../CONTRIBUTING.md", "../../TESTING.md"}
	err := filepath.WalkDir("../../docs", func(path string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(path, ".md") {
			pages = append(pages, path)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	known := map[string]bool{}
	for _, cmd := range commands() {
		known[cmd.name] = true
	}
	// A command line runs to the end of its line, or of its code span.
	line := regexp.MustCompile("(?m)(?:^|[\\s`(/])idbroker ([a-z][a-z-]*)((?: [a-z][a-z-]*)?)([^`\\n|#;&]*)")
	flagWord := regexp.MustCompile(`(?:^|[\s\[])--?([a-z][a-z0-9-]*)`)
	helps := map[string]string{}
	checked := 0
	for _, page := range pages {
		text, err := os.ReadFile(page)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range line.FindAllStringSubmatch(string(text), -1) {
			name, verb, rest := m[1], strings.TrimSpace(m[2]), m[3]
			if !known[name] {
				continue // prose ("idbroker is …", "idbroker reads …")
			}
			args := []string{name}
			if verb != "" {
				args = append(args, verb)
			}
			key := strings.Join(args, " ")
			help, ok := helps[key]
			if !ok {
				out, errOut, code := runInProcess(append(args, "--help")...)
				if code != exitOK {
					t.Errorf("%s shows %q, but %q --help exits %d:\n%s", page, "idbroker "+key, key, code, errOut)
				}
				help, helps[key] = out, out
			}
			for _, f := range flagWord.FindAllStringSubmatch(rest, -1) {
				if f[1] == "help" || f[1] == "h" {
					continue
				}
				checked++
				if !regexp.MustCompile(`(?m)^  -` + regexp.QuoteMeta(f[1]) + `\b`).MatchString(help) {
					t.Errorf("%s shows %q with --%s, which %q --help does not list", page, strings.TrimSpace(m[0]), f[1], "idbroker "+key)
				}
			}
		}
	}
	if checked < 10 {
		t.Fatalf("checked only %d flags in the documents: the scan is broken", checked)
	}
}
