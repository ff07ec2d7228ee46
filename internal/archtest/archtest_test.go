package archtest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// rules are the import rules, in the module's own package paths. A pattern
// is a package ("store") or a package and everything below it
// ("connections/..."); "..." alone is every package of the module. Only
// our own packages are constrained: the standard library and third-party
// modules may be imported by anyone.
var rules = []rule{
	{
		why:  "connectors, SCIM and sessions serve the broker and the portal; they must not depend on them",
		from: []string{"connections/...", "scim/...", "sessions/..."},
		deny: []string{"broker/...", "admin-portal/..."},
	},
	{
		why:  "the store is the bottom layer: everything reads and writes through it, it reads only its migrations",
		from: []string{"store"},
		only: []string{"migrations"},
	},
	{
		why:    "cmd/ is wiring; nothing else may depend on it",
		from:   []string{"..."},
		except: []string{"cmd/..."},
		deny:   []string{"cmd/..."},
	},
	{
		why:  "platform code under internal/ knows nothing of the product",
		from: []string{"internal/..."},
		only: []string{"internal/..."},
	},
}

// A rule constrains the packages matching from (less those matching
// except): they may import none of deny, or, when only is set, none of
// ours but only. Imports count transitively.
type rule struct {
	why    string
	from   []string
	except []string
	deny   []string
	only   []string
}

func (r rule) applies(pkg string) bool {
	return matchAny(r.from, pkg) && !matchAny(r.except, pkg)
}

func (r rule) forbids(pkg, dep string) bool {
	if r.only != nil {
		return dep != pkg && !matchAny(r.only, dep)
	}
	return matchAny(r.deny, dep)
}

func matchAny(patterns []string, pkg string) bool {
	return slices.ContainsFunc(patterns, func(p string) bool { return match(p, pkg) })
}

// match reports whether pkg, a path relative to the module, matches
// pattern in the sense of the rules table.
func match(pattern, pkg string) bool {
	if pattern == "..." {
		return true
	}
	if dir, ok := strings.CutSuffix(pattern, "/..."); ok {
		return pkg == dir || strings.HasPrefix(pkg, dir+"/")
	}
	return pkg == pattern
}

// graph maps each of our packages (relative path) to its direct imports
// of ours.
type graph map[string][]string

// violations returns one line per package that breaks a rule, naming the
// rule and the chain of imports that breaks it.
func violations(g graph, rules []rule) []string {
	var out []string
	for _, pkg := range slices.Sorted(maps.Keys(g)) {
		for _, r := range rules {
			if !r.applies(pkg) {
				continue
			}
			if chain := g.find(pkg, func(dep string) bool { return r.forbids(pkg, dep) }); chain != nil {
				out = append(out, fmt.Sprintf("%s imports %s: %s", pkg, chain[len(chain)-1], r.why)+
					"\n\t"+strings.Join(chain, " → "))
			}
		}
	}
	return out
}

// find returns the shortest chain of imports from pkg to a package for
// which bad is true, or nil if there is none.
func (g graph) find(pkg string, bad func(string) bool) []string {
	prev := map[string]string{pkg: ""}
	queue := []string{pkg}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		for _, dep := range g[p] {
			if _, seen := prev[dep]; seen {
				continue
			}
			prev[dep] = p
			if bad(dep) {
				chain := []string{dep}
				for q := p; q != ""; q = prev[q] {
					chain = append(chain, q)
				}
				slices.Reverse(chain)
				return chain
			}
			queue = append(queue, dep)
		}
	}
	return nil
}

// TestImportRules checks the module's real import graph, as `go list`
// sees it, against the rules.
func TestImportRules(t *testing.T) {
	g, err := loadGraph(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"broker", "store", "internal/httpserver", "cmd/idbroker"} {
		if _, ok := g[want]; !ok {
			t.Fatalf("go list did not report %s; the graph is incomplete", want)
		}
	}
	for _, v := range violations(g, rules) {
		t.Error(v)
	}
}

// loadGraph lists the module rooted at dir. Test files are left out: the
// rules are about what the binary is made of.
func loadGraph(dir string) (graph, error) {
	cmd := exec.Command("go", "list", "-e", "-json=ImportPath,Imports,Module,Error", "./...")
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("go list: %w: %s", err, stderr.Bytes())
	}
	type pkg struct {
		ImportPath string
		Imports    []string
		Module     *struct{ Path string }
		Error      *struct{ Err string }
	}
	var pkgs []pkg
	for dec := json.NewDecoder(bytes.NewReader(out)); ; {
		var p pkg
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return nil, fmt.Errorf("go list output: %w", err)
		}
		if p.Error != nil {
			return nil, fmt.Errorf("go list %s: %s", p.ImportPath, p.Error.Err)
		}
		pkgs = append(pkgs, p)
	}
	if len(pkgs) == 0 || pkgs[0].Module == nil {
		return nil, errors.New("go list found no packages of a module")
	}
	prefix := pkgs[0].Module.Path + "/"
	g := graph{}
	for _, p := range pkgs {
		rel, ok := strings.CutPrefix(p.ImportPath, prefix)
		if !ok {
			continue
		}
		g[rel] = nil
		for _, imp := range p.Imports {
			if dep, ok := strings.CutPrefix(imp, prefix); ok {
				g[rel] = append(g[rel], dep)
			}
		}
	}
	return g, nil
}

// TestRulesCatch shows each rule failing on a graph that breaks it, and
// holding on one that keeps it, so a typo in the table cannot quietly
// turn a rule off.
func TestRulesCatch(t *testing.T) {
	tests := []struct {
		name string
		g    graph
		want []string // the packages reported, in order; nil for none
	}{
		{"clean", graph{
			"cmd/idbroker":        {"broker", "admin-portal", "internal/httpserver"},
			"broker":              {"connections", "sessions", "store", "internal/secrets"},
			"admin-portal":        {"connections", "store"},
			"connections":         {"connections/saml", "store"},
			"connections/saml":    {"internal/safehttp"},
			"store":               {"migrations"},
			"internal/httpserver": {"internal/secrets"},
		}, nil},
		{"connector imports broker", graph{
			"connections/saml": {"broker"},
		}, []string{"connections/saml"}},
		{"scim imports the portal through a helper", graph{
			"scim":   {"events"},
			"events": {"admin-portal"},
		}, []string{"scim"}},
		{"sessions imports broker", graph{
			"sessions/sessionstest": {"broker/internal/x"},
		}, []string{"sessions/sessionstest"}},
		{"store imports a sibling", graph{
			"store": {"migrations", "internal/secrets"},
		}, []string{"store"}},
		{"store's own sub-packages are not the store", graph{
			"store/storetest": {"store", "internal/testdb"},
		}, nil},
		{"a product package imports cmd", graph{
			"broker": {"cmd/idbroker/internal/devmode"},
		}, []string{"broker"}},
		{"cmd imports cmd", graph{
			"cmd/idbroker": {"cmd/idbroker/internal/devmode"},
		}, nil},
		{"internal imports product", graph{
			"internal/httpserver": {"store"},
		}, []string{"internal/httpserver"}},
		{"internal imports internal", graph{
			"internal/browsertest": {"internal/testdb"},
		}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			for _, v := range violations(tt.g, rules) {
				got = append(got, strings.Fields(v)[0])
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("violations = %q, want %q", got, tt.want)
			}
		})
	}
}
