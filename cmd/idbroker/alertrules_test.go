package main

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// alertRules are the Prometheus rules operations.md documents (the
// fenced yaml blocks that hold an "- alert:"), by name: their expr.
func alertRules(t *testing.T) map[string]string {
	t.Helper()
	page, err := os.ReadFile("../../docs/reference/operations.md")
	if err != nil {
		t.Fatal(err)
	}
	rules := map[string]string{}
	for _, block := range strings.Split(string(page), "```yaml")[1:] {
		block, _, _ = strings.Cut(block, "```")
		if !strings.Contains(block, "- alert:") {
			continue
		}
		name := ""
		for line := range strings.SplitSeq(block, "\n") {
			line = strings.TrimSpace(line)
			if v, ok := strings.CutPrefix(line, "- alert:"); ok {
				name = strings.TrimSpace(v)
			} else if v, ok := strings.CutPrefix(line, "expr:"); ok && name != "" {
				rules[name] = strings.TrimSpace(v)
			}
		}
	}
	return rules
}

var (
	// selectorRE is an idbroker metric in a PromQL expression, with its
	// label matchers if any.
	selectorRE = regexp.MustCompile(`\b(idbroker_[a-z0-9_]+)(?:\{([^}]*)\})?`)
	matcherRE  = regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"`)
	labelRE    = regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"`)
)

// series is one line of an exposition: its name and labels.
type series struct {
	name   string
	labels map[string]string
}

func exposition(text string) []series {
	var out []series
	for line := range strings.SplitSeq(text, "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, rest, _ := strings.Cut(line, "{")
		s := series{name: strings.Fields(name)[0], labels: map[string]string{}}
		if rest != "" {
			labels, _, _ := strings.Cut(rest, "}")
			for _, m := range labelRE.FindAllStringSubmatch(labels, -1) {
				s.labels[m[1]] = m[2]
			}
		}
		out = append(out, s)
	}
	return out
}

// selects reports whether the matchers (PromQL's, the target labels job
// and instance aside: Prometheus adds them) select s.
func selects(s series, matchers string) bool {
	for _, m := range matcherRE.FindAllStringSubmatch(matchers, -1) {
		label, op, want := m[1], m[2], m[3]
		if label == "job" || label == "instance" {
			continue
		}
		got := s.labels[label]
		var ok bool
		switch op {
		case "=":
			ok = got == want
		case "!=":
			ok = got != want
		case "=~", "!~":
			ok = regexp.MustCompile("^(?:" + want + ")$").MatchString(got)
			if op == "!~" {
				ok = !ok
			}
		}
		if !ok {
			return false
		}
	}
	return true
}

// TestAlertRulesMatchMetrics: every alert rule operations.md documents
// names metrics and labels a freshly started broker (PostgreSQL and Redis)
// exports on /metrics, and selects series of them, so that no rule
// watches a metric or label value that does not exist. A counter that a rule takes the increase() of must be there
// at 0 before its first event: Prometheus sees no increase in a series
// that appears already at 1, and the alert would miss the first dead
// logout or the first flood of bad signatures on each node.
func TestAlertRulesMatchMetrics(t *testing.T) {
	t.Parallel()
	rules := alertRules(t)
	if len(rules) < 7 {
		t.Fatalf("found only %d alert rules in operations.md: the parser is broken", len(rules))
	}
	n := startBroker(t, productionEnv(t, ownRedis(t)), "--dev")
	exported := exposition(scrapeText(t, n))
	names := slices.Sorted(func(yield func(string) bool) {
		for name := range rules {
			if !yield(name) {
				return
			}
		}
	})
	for _, name := range names {
		expr := rules[name]
		if !strings.HasPrefix(name, "Idbroker") {
			t.Errorf("alert %s: named without the Idbroker prefix the runbook is indexed by", name)
		}
		sels := selectorRE.FindAllStringSubmatch(expr, -1)
		if len(sels) == 0 {
			t.Errorf("alert %s: %q uses no idbroker metric", name, expr)
		}
		for _, sel := range sels {
			metric, matchers := sel[1], sel[2]
			found, named := false, false
			labels := map[string]bool{}
			for _, s := range exported {
				if s.name != metric {
					continue
				}
				named = true
				for l := range s.labels {
					labels[l] = true
				}
				found = found || selects(s, matchers)
			}
			if !named {
				t.Errorf("alert %s: %s is not a metric of the broker's /metrics", name, metric)
				continue
			}
			for _, m := range matcherRE.FindAllStringSubmatch(matchers, -1) {
				if m[1] != "job" && m[1] != "instance" && !labels[m[1]] {
					t.Errorf("alert %s: %s has no label %s", name, metric, m[1])
				}
			}
			// A rule over increase() must find its series from the start
			// (see above); a ratio of request rates may select series that
			// appear only with their first request (a 5xx), which rate()
			// handles.
			if !found && (strings.Contains(expr, "increase(") || !strings.Contains(matchers, "~")) {
				t.Errorf("alert %s: %s selects no series of the broker's /metrics", name, sel[0])
			}
		}
	}
}
