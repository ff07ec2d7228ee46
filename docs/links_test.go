package docs_test

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestGuideLinks follows every relative link of the guides, the
// reference pages and the top-level documents (README, CONTRIBUTING,
// TESTING, …): the file must exist and, for a link with a #fragment, have
// a heading of that anchor.
func TestGuideLinks(t *testing.T) {
	var pages []string
	for _, glob := range []string{"guides/*.md", "reference/*.md", "../*.md"} {
		more, err := filepath.Glob(glob)
		if err != nil || len(more) == 0 {
			t.Fatalf("no pages match %s: %v", glob, err)
		}
		pages = append(pages, more...)
	}
	link := regexp.MustCompile(`\]\(([^)\s]+)\)`)
	for _, page := range pages {
		text, err := os.ReadFile(page)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range link.FindAllStringSubmatch(string(text), -1) {
			target := m[1]
			if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
				continue
			}
			file, frag, _ := strings.Cut(target, "#")
			path := page
			if file != "" {
				path = filepath.Join(filepath.Dir(page), file)
			}
			info, err := os.Stat(path)
			if err != nil {
				t.Errorf("%s links %s: %v", page, target, err)
				continue
			}
			if frag == "" || info.IsDir() {
				continue
			}
			if !anchors(t, path)[frag] {
				t.Errorf("%s links %s: %s has no heading with anchor #%s", page, target, path, frag)
			}
		}
	}
}

// anchors are the heading anchors of a Markdown page, as GitHub makes
// them: lower case, punctuation dropped, spaces as hyphens.
func anchors(t *testing.T, path string) map[string]bool {
	t.Helper()
	text, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	heading := regexp.MustCompile(`(?m)^#{1,6} +(.+)$`)
	drop := regexp.MustCompile(`[^\p{L}\p{N} _-]`)
	for _, m := range heading.FindAllStringSubmatch(string(text), -1) {
		a := drop.ReplaceAllString(strings.ToLower(strings.TrimSpace(m[1])), "")
		out[strings.ReplaceAll(a, " ", "-")] = true
	}
	return out
}
