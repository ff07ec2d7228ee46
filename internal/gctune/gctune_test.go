package gctune

import (
	"os"
	"path/filepath"
	"testing"
)

func TestChoose(t *testing.T) {
	const gib = int64(1) << 30
	tests := []struct {
		name        string
		env         map[string]string
		cgroupLimit int64
		wantPercent int
		wantLimit   int64
	}{
		{"nothing set, no cgroup limit", nil, 0, DefaultGCPercent, 0},
		{"nothing set, cgroup limit", nil, gib, DefaultGCPercent, gib * 9 / 10},
		{"GOGC set: left to the runtime", map[string]string{"GOGC": "100"}, gib, 0, gib * 9 / 10},
		{"GOGC=off: left to the runtime", map[string]string{"GOGC": "off"}, 0, 0, 0},
		{"GOMEMLIMIT set: left to the runtime", map[string]string{"GOMEMLIMIT": "300MiB"}, gib, DefaultGCPercent, 0},
		{"both set", map[string]string{"GOGC": "200", "GOMEMLIMIT": "1GiB"}, gib, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Choose(func(k string) string { return tt.env[k] }, "/sys/fs/cgroup/memory.max", tt.cgroupLimit)
			if c.GCPercent != tt.wantPercent {
				t.Errorf("GCPercent = %d, want %d", c.GCPercent, tt.wantPercent)
			}
			if d := c.MemoryLimit - tt.wantLimit; d < -1 || d > 1 {
				t.Errorf("MemoryLimit = %d, want %d", c.MemoryLimit, tt.wantLimit)
			}
			if c.GOGC != tt.env["GOGC"] || c.GOMEMLIMIT != tt.env["GOMEMLIMIT"] {
				t.Errorf("operator's values = %q, %q, want %q, %q", c.GOGC, c.GOMEMLIMIT, tt.env["GOGC"], tt.env["GOMEMLIMIT"])
			}
			if len(c.LogAttrs())%2 != 0 {
				t.Errorf("LogAttrs() = %v, want key-value pairs", c.LogAttrs())
			}
		})
	}
}

// Mount tables as /proc/self/mountinfo shows them.
const (
	mountsV2 = "30 23 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate\n"
	// Docker on a v1 host without a cgroup namespace: the container's own
	// sub-tree is mounted.
	mountsV1Docker = "31 23 0:28 / /sys/fs/cgroup ro - tmpfs tmpfs ro,mode=755\n" +
		"35 31 0:32 /docker/abc /sys/fs/cgroup/memory ro,relatime - cgroup cgroup rw,memory\n" +
		"36 31 0:33 /docker/abc /sys/fs/cgroup/cpu,cpuacct ro,relatime - cgroup cgroup rw,cpu,cpuacct\n"
	// Hybrid: v1 controllers and an empty v2 hierarchy beside them.
	mountsHybrid = "35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n" +
		"41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n"
)

func TestCgroupMemoryLimit(t *testing.T) {
	tests := []struct {
		name      string
		files     map[string]string
		wantFile  string
		wantLimit int64
		wantErr   bool
	}{
		{
			name: "v2 container with a cgroup namespace",
			files: map[string]string{
				"proc/self/cgroup":          "0::/\n",
				"proc/self/mountinfo":       mountsV2,
				"sys/fs/cgroup/memory.max":  "536870912\n",
				"sys/fs/cgroup/memory.high": "max\n",
			},
			wantFile: "/sys/fs/cgroup/memory.max", wantLimit: 512 << 20,
		},
		{
			name: "v2 service: no limit on its own cgroup, its slice's binds",
			files: map[string]string{
				"proc/self/cgroup":    "0::/system.slice/idbroker.service\n",
				"proc/self/mountinfo": mountsV2,
				"sys/fs/cgroup/system.slice/idbroker.service/memory.max": "max\n",
				"sys/fs/cgroup/system.slice/memory.max":                  "1073741824\n",
			},
			wantFile: "/sys/fs/cgroup/system.slice/memory.max", wantLimit: 1 << 30,
		},
		{
			name: "v2: the smallest along the path",
			files: map[string]string{
				"proc/self/cgroup":                          "0::/kubepods/pod1/c1\n",
				"proc/self/mountinfo":                       mountsV2,
				"sys/fs/cgroup/kubepods/pod1/c1/memory.max": "268435456\n",
				"sys/fs/cgroup/kubepods/pod1/memory.max":    "536870912\n",
				"sys/fs/cgroup/kubepods/memory.max":         "max\n",
			},
			wantFile: "/sys/fs/cgroup/kubepods/pod1/c1/memory.max", wantLimit: 256 << 20,
		},
		{
			name: "v2 without any limit",
			files: map[string]string{
				"proc/self/cgroup":                    "0::/user.slice\n",
				"proc/self/mountinfo":                 mountsV2,
				"sys/fs/cgroup/user.slice/memory.max": "max\n",
			},
		},
		{
			name: "v1 Docker without a cgroup namespace",
			files: map[string]string{
				"proc/self/cgroup":                           "12:memory:/docker/abc\n5:cpu,cpuacct:/docker/abc\n0::/\n",
				"proc/self/mountinfo":                        mountsV1Docker,
				"sys/fs/cgroup/memory/memory.limit_in_bytes": "268435456\n",
			},
			wantFile: "/sys/fs/cgroup/memory/memory.limit_in_bytes", wantLimit: 256 << 20,
		},
		{
			name: "v1 without a limit: the largest page-aligned value",
			files: map[string]string{
				"proc/self/cgroup":                           "4:memory:/\n",
				"proc/self/mountinfo":                        mountsHybrid,
				"sys/fs/cgroup/memory/memory.limit_in_bytes": "9223372036854771712\n",
			},
		},
		{
			name: "hybrid: no memory controller in v2, the v1 limit counts",
			files: map[string]string{
				"proc/self/cgroup":    "4:memory:/batch/job7\n0::/\n",
				"proc/self/mountinfo": mountsHybrid,
				"sys/fs/cgroup/memory/batch/job7/memory.limit_in_bytes": "2147483648\n",
				"sys/fs/cgroup/memory/batch/memory.limit_in_bytes":      "9223372036854771712\n",
				"sys/fs/cgroup/memory/memory.limit_in_bytes":            "9223372036854771712\n",
			},
			wantFile: "/sys/fs/cgroup/memory/batch/job7/memory.limit_in_bytes", wantLimit: 2 << 30,
		},
		{
			name:  "no /proc: not Linux",
			files: map[string]string{"etc/hostname": "x\n"},
		},
		{
			name: "a limit file that is not a number",
			files: map[string]string{
				"proc/self/cgroup":         "0::/\n",
				"proc/self/mountinfo":      mountsV2,
				"sys/fs/cgroup/memory.max": "lots\n",
			},
			wantErr: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			for name, body := range tt.files {
				p := filepath.Join(root, filepath.FromSlash(name))
				if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			file, limit, err := CgroupMemoryLimit(os.DirFS(root))
			if (err != nil) != tt.wantErr {
				t.Fatalf("CgroupMemoryLimit() error = %v, want error %v", err, tt.wantErr)
			}
			if file != tt.wantFile || limit != tt.wantLimit {
				t.Errorf("CgroupMemoryLimit() = %q, %d, want %q, %d", file, limit, tt.wantFile, tt.wantLimit)
			}
		})
	}
}

func TestMountDir(t *testing.T) {
	tests := []struct {
		m    mount
		p    string
		want string
	}{
		{mount{"/", "/sys/fs/cgroup"}, "/", "/sys/fs/cgroup"},
		{mount{"/", "/sys/fs/cgroup"}, "/a/b", "/sys/fs/cgroup/a/b"},
		{mount{"/docker/abc", "/sys/fs/cgroup/memory"}, "/docker/abc", "/sys/fs/cgroup/memory"},
		{mount{"/docker/abc", "/sys/fs/cgroup/memory"}, "/docker/abc/sub", "/sys/fs/cgroup/memory/sub"},
		{mount{"/docker/abc", "/sys/fs/cgroup/memory"}, "/docker/abcd", "/sys/fs/cgroup/memory"},
		{mount{"/docker/abc", "/sys/fs/cgroup/memory"}, "/elsewhere", "/sys/fs/cgroup/memory"},
	}
	for _, tt := range tests {
		if got := tt.m.dir(tt.p); got != tt.want {
			t.Errorf("%+v.dir(%q) = %q, want %q", tt.m, tt.p, got, tt.want)
		}
	}
}
