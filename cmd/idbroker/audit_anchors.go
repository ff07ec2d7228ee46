package main

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/idbroker/idbroker/audit"
)

// operatorsChain names the operators' trail in an anchor file, beside the
// tenants' ids.
const operatorsChain = "operators"

// anchorLine is one chain's anchor: its row count and newest hash, or, for
// an erased tenant, the hash of its erase report.
type anchorLine struct {
	audit.Anchor
	erased bool
}

func (a anchorLine) String() string {
	if a.erased {
		return "erased"
	}
	return fmt.Sprintf("%d rows", a.Rows)
}

// anchorFile is the anchors of every chain, by tenant id (or
// operatorsChain). On disk, one line a chain:
//
//	<tnt_… | operators> <rows | erased> <hash>
//
// with # comments; an empty chain's hash is "-".
type anchorFile map[string]anchorLine

func readAnchors(path string) (anchorFile, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read anchors: %w", err)
	}
	defer f.Close()
	out := anchorFile{}
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fields := strings.Fields(line)
		if len(fields) != 3 {
			return nil, fmt.Errorf("read anchors: %s:%d: want <chain> <rows|erased> <hash>", path, n)
		}
		a := anchorLine{Anchor: audit.Anchor{Hash: fields[2]}}
		if a.Hash == "-" {
			a.Hash = ""
		}
		if fields[1] == "erased" {
			a.erased = true
		} else if a.Rows, err = strconv.Atoi(fields[1]); err != nil || a.Rows < 0 {
			return nil, fmt.Errorf("read anchors: %s:%d: %q is not a row count", path, n, fields[1])
		}
		if _, dup := out[fields[0]]; dup {
			return nil, fmt.Errorf("read anchors: %s:%d: %s is anchored twice", path, n, fields[0])
		}
		out[fields[0]] = a
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read anchors: %w", err)
	}
	return out, nil
}

// take removes chain's anchor from the file and returns it for a verify
// of a chain that is still there (nil when it was not anchored). A chain
// anchored as erased and back in service is refused: ids are not reused.
func (f anchorFile) take(chain string) (*audit.Anchor, error) {
	a, ok := f[chain]
	if !ok {
		return nil, nil
	}
	delete(f, chain)
	if a.erased {
		return nil, fmt.Errorf("%s is anchored as erased but its chain is in the log: is this the anchor file of another database?", chain)
	}
	return &a.Anchor, nil
}

// left is the tenants still anchored after every chain there is took its
// anchor, sorted; with only set, just that one if it is left.
func (f anchorFile) left(only string) []string {
	var out []string
	for id := range f {
		if only == "" || id == only {
			out = append(out, id)
		}
	}
	slices.Sort(out)
	return out
}

// write replaces path with f, whole or not at all.
func (f anchorFile) write(path string) error {
	var b strings.Builder
	fmt.Fprintf(&b, "# idbroker audit anchors, %s: <chain> <rows|erased> <newest hash>\n", time.Now().UTC().Format(time.RFC3339))
	ids := make([]string, 0, len(f))
	for id := range f {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		a, rows, hash := f[id], "erased", f[id].Hash
		if !a.erased {
			rows = strconv.Itoa(a.Rows)
		}
		if hash == "" {
			hash = "-"
		}
		fmt.Fprintf(&b, "%s %s %s\n", id, rows, hash)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".anchors-*")
	if err != nil {
		return fmt.Errorf("write anchors: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.WriteString(b.String()); err != nil {
		tmp.Close()
		return fmt.Errorf("write anchors: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write anchors: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write anchors: %w", err)
	}
	return nil
}
