package main

import (
	"context"
	"fmt"
	"runtime"
	"runtime/debug"
)

// Set at link time:
//
//	go build -ldflags "-X main.version=v1.2.3 -X main.commit=$(git rev-parse HEAD)"
//
// When they are not, buildVersion falls back to what the Go toolchain
// recorded in the binary.
var (
	version = "dev"
	commit  = ""
)

// buildVersion returns the version and commit of this binary.
func buildVersion() (ver, rev string) {
	ver, rev = version, commit
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return ver, rev
	}
	if ver == "dev" && info.Main.Version != "" && info.Main.Version != "(devel)" {
		ver = info.Main.Version // go install github.com/idbroker/idbroker/cmd/idbroker@v1.2.3
	}
	if rev == "" {
		var modified bool
		for _, s := range info.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.modified":
				modified = s.Value == "true"
			}
		}
		if rev != "" && modified {
			rev += "-dirty"
		}
	}
	return ver, rev
}

func runVersion(_ context.Context, c *cli, args []string) error {
	fs := newFlagSet(c, "version", "Print the version, commit and Go version of this binary.")
	if err := parseFlags(c, fs, args); err != nil {
		return err
	}
	ver, rev := buildVersion()
	if rev == "" {
		rev = "unknown"
	}
	fmt.Fprintf(c.stdout, "idbroker %s (commit %s, %s, %s/%s)\n", ver, rev, runtime.Version(), runtime.GOOS, runtime.GOARCH)
	return nil
}
