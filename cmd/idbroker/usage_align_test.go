package main

import (
	"strings"
	"testing"
)

// TestTopLevelHelpListsCommandsInOneColumn: every command's summary in
// `idbroker --help` starts in the same column, whatever the longest name
// ("restore-check" once ran into its summary).
func TestTopLevelHelpListsCommandsInOneColumn(t *testing.T) {
	t.Parallel()
	var b strings.Builder
	usage(&b)
	col := -1
	for _, cmd := range commands() {
		prefix := "\t" + cmd.name + " "
		var line string
		for _, l := range strings.Split(b.String(), "\n") {
			if strings.HasPrefix(l, prefix) {
				line = l
			}
		}
		if line == "" {
			t.Fatalf("--help does not list %s:\n%s", cmd.name, b.String())
		}
		at := strings.Index(line, cmd.summary)
		if col == -1 {
			col = at
		}
		if at != col || line[at-2:at] != "  " {
			t.Errorf("the summary of %s starts at column %d, want %d after two spaces: %q", cmd.name, at, col, line)
		}
	}
}
