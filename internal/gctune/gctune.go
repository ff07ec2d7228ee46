// Package gctune chooses the Go collector's settings for a broker process:
// a higher GC percent than Go's default, because sign-ins are CPU-bound and
// a less eager collector costs memory rather than CPU, and a soft memory
// limit below the container's, so that the extra memory never gets the
// process killed. An operator's GOGC or GOMEMLIMIT always wins.
package gctune

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"path"
	"runtime/debug"
	"strconv"
	"strings"
)

// DefaultGCPercent is the GC percent used when GOGC is not set: in
// BENCHMARKS.md's measurements it cut a SAML sign-in's CPU by 10–15 % for
// about 1.7× the peak resident memory of Go's default of 100.
const DefaultGCPercent = 400

// limitShare is the part of a cgroup memory limit given to the Go runtime
// as its soft limit; the rest is for what the runtime does not count
// (SQLite's page cache outside the Go heap is counted only as mapped
// memory, thread stacks, the kernel's own accounting).
const limitShare = 0.9

// unlimited is the threshold above which a cgroup v1 limit means "none":
// v1 reports no limit as the largest page-aligned int64.
const unlimited = int64(1) << 62

// Choice is what Choose decided, and why, for the start-up log.
type Choice struct {
	// GCPercent is the percent to set, or 0 when GOGC is set and left to
	// the runtime (which has applied it already).
	GCPercent int
	// GOGC is the operator's value, when set.
	GOGC string
	// MemoryLimit is the soft limit to set in bytes, or 0 for none.
	MemoryLimit int64
	// GOMEMLIMIT is the operator's value, when set.
	GOMEMLIMIT string
	// Cgroup is the file the memory limit was derived from, and
	// CgroupLimit its value in bytes.
	Cgroup      string
	CgroupLimit int64
}

// Choose decides the collector's settings from the environment and the
// process's cgroup memory limit (limit 0: none found).
func Choose(getenv func(string) string, cgroupFile string, cgroupLimit int64) Choice {
	c := Choice{GOGC: getenv("GOGC"), GOMEMLIMIT: getenv("GOMEMLIMIT")}
	if c.GOGC == "" {
		c.GCPercent = DefaultGCPercent
	}
	if c.GOMEMLIMIT == "" && cgroupLimit > 0 {
		c.Cgroup, c.CgroupLimit = cgroupFile, cgroupLimit
		c.MemoryLimit = int64(float64(cgroupLimit) * limitShare)
	}
	return c
}

// Apply sets what c chose in the running process.
func Apply(c Choice) {
	if c.GCPercent > 0 {
		debug.SetGCPercent(c.GCPercent)
	}
	if c.MemoryLimit > 0 {
		debug.SetMemoryLimit(c.MemoryLimit)
	}
}

// LogAttrs describes c as key-value pairs for slog.
func (c Choice) LogAttrs() []any {
	attrs := []any{}
	if c.GOGC != "" {
		attrs = append(attrs, "gc_percent", "GOGC="+c.GOGC)
	} else {
		attrs = append(attrs, "gc_percent", c.GCPercent)
	}
	switch {
	case c.GOMEMLIMIT != "":
		attrs = append(attrs, "memory_limit", "GOMEMLIMIT="+c.GOMEMLIMIT)
	case c.MemoryLimit > 0:
		attrs = append(attrs, "memory_limit", c.MemoryLimit, "cgroup_limit", c.CgroupLimit, "cgroup_file", c.Cgroup)
	default:
		attrs = append(attrs, "memory_limit", "none")
	}
	return attrs
}

// CgroupMemoryLimit finds the memory limit of the process's cgroup in fsys,
// a file system rooted at "/" (os.DirFS("/") in production): cgroup v2's
// memory.max, else cgroup v1's memory.limit_in_bytes, the smallest along
// the path from the process's cgroup up to the hierarchy's mount point,
// since a parent's limit binds its children. It returns the file the limit
// was read from, and limit 0 when there is none (no cgroup, no memory
// controller, or "max").
func CgroupMemoryLimit(fsys fs.FS) (file string, limit int64, err error) {
	self, err := fs.ReadFile(fsys, "proc/self/cgroup")
	if errors.Is(err, fs.ErrNotExist) {
		return "", 0, nil // not Linux, or no /proc
	}
	if err != nil {
		return "", 0, fmt.Errorf("gctune: read cgroup membership: %w", err)
	}
	mounts, err := fs.ReadFile(fsys, "proc/self/mountinfo")
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return "", 0, fmt.Errorf("gctune: read mounts: %w", err)
	}
	v2Path, v1Path := parseSelfCgroup(self)
	v2Mount, v1Mount := parseMountinfo(mounts)
	if v2Path != "" && v2Mount.point != "" {
		file, limit, err := smallestLimit(fsys, v2Mount.dir(v2Path), v2Mount.point, "memory.max")
		if err != nil || limit > 0 {
			return file, limit, err
		}
	}
	if v1Path != "" && v1Mount.point != "" {
		return smallestLimit(fsys, v1Mount.dir(v1Path), v1Mount.point, "memory.limit_in_bytes")
	}
	return "", 0, nil
}

// parseSelfCgroup reads /proc/self/cgroup: the v2 line is "0::/path", a v1
// line "N:controller,…:/path".
func parseSelfCgroup(b []byte) (v2, v1Memory string) {
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		id, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		controllers, p, ok := strings.Cut(rest, ":")
		if !ok {
			continue
		}
		switch {
		case id == "0" && controllers == "":
			v2 = p
		case hasItem(controllers, "memory"):
			v1Memory = p
		}
	}
	return v2, v1Memory
}

// mount is where a cgroup hierarchy is mounted: the hierarchy's path shown
// at the mount point (root; not "/" when the mount is of a sub-tree, as
// in a container without a cgroup namespace) and the mount point.
type mount struct{ root, point string }

// dir is the directory of cgroup p (a path in the hierarchy) under the
// mount point, or the mount point itself when p lies outside what is
// mounted.
func (m mount) dir(p string) string {
	root, c := path.Clean(m.root), path.Clean(p)
	switch {
	case root == "/":
		return path.Join(m.point, c)
	case c == root:
		return m.point
	case strings.HasPrefix(c, root+"/"):
		return path.Join(m.point, c[len(root):])
	}
	return m.point
}

// parseMountinfo finds the cgroup2 mount and the v1 memory controller's
// mount in /proc/self/mountinfo: "id parent dev root point opts … - fstype
// source superopts".
func parseMountinfo(b []byte) (v2, v1Memory mount) {
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		if !ok {
			continue
		}
		f, g := strings.Fields(pre), strings.Fields(post)
		if len(f) < 5 || len(g) < 1 {
			continue
		}
		m := mount{root: f[3], point: f[4]}
		switch {
		case g[0] == "cgroup2" && v2.point == "":
			v2 = m
		case g[0] == "cgroup" && len(g) >= 3 && hasItem(g[2], "memory"):
			v1Memory = m
		}
	}
	return v2, v1Memory
}

// smallestLimit reads name in dir and each of its parents up to point,
// and returns the smallest limit found (0: none).
func smallestLimit(fsys fs.FS, dir, point, name string) (file string, limit int64, err error) {
	for {
		f := path.Join(dir, name)
		b, err := fs.ReadFile(fsys, strings.TrimPrefix(f, "/"))
		switch {
		case errors.Is(err, fs.ErrNotExist):
			// The controller is not enabled at this level (v2) or the
			// path is not visible here: nothing to read.
		case err != nil:
			return "", 0, fmt.Errorf("gctune: read %s: %w", f, err)
		default:
			n, err := parseLimit(b)
			if err != nil {
				return "", 0, fmt.Errorf("gctune: %s: %w", f, err)
			}
			if n > 0 && (limit == 0 || n < limit) {
				file, limit = f, n
			}
		}
		if dir == point || !strings.HasPrefix(dir, point+"/") {
			return file, limit, nil
		}
		dir = path.Dir(dir)
	}
}

// parseLimit reads a limit file's value: bytes, "max" (v2) or a value
// at or above 2^62 (v1) for none, which is returned as 0.
func parseLimit(b []byte) (int64, error) {
	s := strings.TrimSpace(string(b))
	if s == "max" {
		return 0, nil
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("not a memory limit: %q", s)
	}
	if n >= uint64(unlimited) || n > math.MaxInt64 {
		return 0, nil
	}
	return int64(n), nil
}

// hasItem reports whether the comma-separated list has item.
func hasItem(list, item string) bool {
	for it := range strings.SplitSeq(list, ",") {
		if it == item {
			return true
		}
	}
	return false
}
