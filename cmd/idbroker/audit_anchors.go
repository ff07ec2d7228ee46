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
	"github.com/idbroker/idbroker/signing"
)

// operatorsChain names the operators' trail in an anchor file, beside the
// tenants' ids.
const operatorsChain = audit.OperatorsChain

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
	if err := writeWhole(path, b.String()); err != nil {
		return fmt.Errorf("write anchors: %w", err)
	}
	return nil
}

// writeWhole replaces path with content, whole or not at all.
func writeWhole(path, content string) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".anchors-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.WriteString(content); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// checkpoint is f as a checkpoint issued at.
func (f anchorFile) checkpoint(at time.Time) audit.Checkpoint {
	cp := audit.Checkpoint{IssuedAt: at, Chains: make(map[string]audit.Head, len(f))}
	for id, a := range f {
		cp.Chains[id] = audit.Head{Rows: a.Rows, Hash: a.Hash, Erased: a.erased}
	}
	return cp
}

// anchorsOf is a checkpoint's heads as anchors.
func anchorsOf(cp audit.Checkpoint) anchorFile {
	out := make(anchorFile, len(cp.Chains))
	for id, h := range cp.Chains {
		out[id] = anchorLine{Anchor: audit.Anchor{Rows: h.Rows, Hash: h.Hash}, erased: h.Erased}
	}
	return out
}

// writeCheckpoint signs cp with the broker's signing key and replaces path
// with it: one line, the compact JWS.
func writeCheckpoint(path string, cp audit.Checkpoint, s *signing.Manager) error {
	jws, err := cp.Sign(s)
	if err != nil {
		return err
	}
	if err := writeWhole(path, jws+"\n"); err != nil {
		return fmt.Errorf("write checkpoint: %w", err)
	}
	return nil
}

// readCheckpoint reads the last checkpoint in path and verifies its
// signature against the broker's keys. A line that is not a checkpoint is
// skipped, so the file may be a log the broker's checkpoint lines were
// kept in; in a line the checkpoint is the field after "checkpoint=". A
// checkpoint serve logged in parts (one line each, past
// audit.PartChains chains) is read whole: every part of the last one,
// wherever its lines are among other nodes' lines.
func readCheckpoint(path string, s *signing.Manager) (audit.Checkpoint, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return audit.Checkpoint{}, fmt.Errorf("read checkpoint: %w", err)
	}
	var found []string
	for _, line := range strings.Split(string(b), "\n") {
		if jws := checkpointIn(line); jws != "" {
			found = append(found, jws)
		}
	}
	if len(found) == 0 {
		return audit.Checkpoint{}, fmt.Errorf("read checkpoint: %s holds no checkpoint", path)
	}
	keys := s.JWKS()
	last := found[len(found)-1]
	cp, part, err := audit.OpenCheckpointPart(last, keys)
	if err == nil && part.Parts > 1 {
		parts := []string{last}
		for i := len(found) - 2; i >= 0 && len(parts) < part.Parts; i-- {
			// Lines of other checkpoints (another node's, an earlier
			// one) are passed over, whatever they are.
			if _, p, err := audit.OpenCheckpointPart(found[i], keys); err == nil && p.ID == part.ID {
				parts = append(parts, found[i])
			}
		}
		cp, err = audit.OpenCheckpoints(parts, keys)
	}
	if err != nil {
		return audit.Checkpoint{}, fmt.Errorf("read checkpoint %s: %w", path, err)
	}
	return cp, nil
}

// checkpointIn finds a compact JWS in line: the whole line, or the value
// of a checkpoint= field (serve's log line, text or JSON).
func checkpointIn(line string) string {
	line = strings.TrimSpace(line)
	if i := strings.Index(line, "checkpoint="); i >= 0 {
		line = line[i+len("checkpoint="):]
	} else if i := strings.Index(line, `"checkpoint":"`); i >= 0 {
		line = line[i+len(`"checkpoint":"`):]
	}
	if i := strings.IndexAny(line, " \t\""); i >= 0 {
		line = line[:i]
	}
	if strings.Count(line, ".") != 2 || strings.HasPrefix(line, "#") {
		return ""
	}
	return line
}
