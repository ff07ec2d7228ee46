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
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(readme), "\n## Command line\n")
	if !ok {
		t.Fatal(`README.md has no "## Command line" section`)
	}
	section, _, _ = strings.Cut(section, "\n## ")
	usage := regexp.MustCompile(`Usage: idbroker (\S+)(?: ([a-z|]+))? \[flags\]`)
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
