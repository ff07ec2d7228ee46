package browsertest

import (
	"context"
	_ "embed"
	"fmt"
	"strings"

	"github.com/chromedp/chromedp"
)

// axeSource is axe-core (MPL-2.0, vendored unmodified; see
// testdata/axe/README.md). It is injected through the DevTools protocol,
// which the page's Content-Security-Policy does not govern, so the pages
// keep their policy under test.
//
//go:embed testdata/axe/axe.min.js
var axeSource string

// WCAG21AA are axe-core's tags for the success criteria of WCAG 2.1 levels A
// and AA: what Section 508 and EN 301 549 ask of a web page.
var WCAG21AA = []string{"wcag2a", "wcag2aa", "wcag21a", "wcag21aa"}

// AxeViolation is one rule axe-core found broken on a page, with the nodes
// that break it.
type AxeViolation struct {
	ID     string   `json:"id"`
	Impact string   `json:"impact"`
	Help   string   `json:"help"`
	Nodes  []string `json:"nodes"` // each node's selector and what axe says of it
}

func (v AxeViolation) String() string {
	return fmt.Sprintf("%s (%s): %s\n\t%s", v.ID, v.Impact, v.Help, strings.Join(v.Nodes, "\n\t"))
}

// Axe runs axe-core on the document in ctx's tab, limited to the rules
// tagged with tags (WCAG21AA when none), and returns what it found
// broken. It works with the page's own scripts disabled too.
func Axe(ctx context.Context, tags ...string) ([]AxeViolation, error) {
	if len(tags) == 0 {
		tags = WCAG21AA
	}
	loaded, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`typeof axe === "object"`))
	if err != nil {
		return nil, fmt.Errorf("browsertest: look for axe-core: %w", err)
	}
	if !loaded {
		// At the top level, as a <script> would run it: it defines the global axe.
		if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](axeSource+"\n;true")); err != nil {
			return nil, fmt.Errorf("browsertest: inject axe-core: %w", err)
		}
	}
	quoted := make([]string, len(tags))
	for i, t := range tags {
		quoted[i] = fmt.Sprintf("%q", t)
	}
	script := `axe.run(document, {runOnly: {type: "tag", values: [` + strings.Join(quoted, ",") + `]}, resultTypes: ["violations"]})
  .then(r => r.violations.map(v => ({id: v.id, impact: v.impact || "", help: v.help,
    nodes: v.nodes.map(n => n.target.join(" ") + ": " + (n.failureSummary || "").replace(/\s+/g, " "))})))`
	got, err := chromedp.Run(ctx, chromedp.Evaluate[[]AxeViolation](script, chromedp.EvalAwaitPromise))
	if err != nil {
		return nil, fmt.Errorf("browsertest: run axe-core: %w", err)
	}
	return got, nil
}
