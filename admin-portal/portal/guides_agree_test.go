package portal

import (
	"html"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// guideOf names the guide in docs/guides that walks each wizard's IdP.
var guideOf = map[string]string{
	"okta": "okta.md", "okta-oidc": "okta.md", "entra": "entra-id.md", "entra-oidc": "entra-id.md",
	"google": "google-workspace.md", "adfs": "saml.md", "saml": "saml.md", "oidc": "oidc.md",
	"dsync:okta": "okta.md", "dsync:entra": "entra-id.md",
}

var uiLabel = regexp.MustCompile(`<span class="ui">([^<]*)</span>`)

// TestGuidesSayWhatTheWizardSays: every name of the IdP's screens a
// wizard step shows (the ui() labels: menus, buttons, fields) is in the
// guide an admin may have open beside it, so the two never send an admin
// two ways. A label is compared without its markup and placeholders.
func TestGuidesSayWhatTheWizardSays(t *testing.T) {
	norm := func(s string) string {
		s = strings.NewReplacer("**", "", "`", "", "*", "", "\n", " ", "\\", "").Replace(s)
		return strings.Join(strings.Fields(s), " ")
	}
	read := func(name string) string {
		b, err := os.ReadFile(filepath.Join("..", "..", "docs", "guides", name))
		if err != nil {
			t.Fatal(err)
		}
		return norm(string(b))
	}
	check := func(key string, steps []step) {
		guide := read(guideOf[key])
		for _, s := range steps {
			for _, m := range uiLabel.FindAllStringSubmatch(string(s.Text), -1) {
				label := norm(html.UnescapeString(m[1]))
				if !strings.Contains(guide, label) {
					t.Errorf("%s: the wizard says %q, %s does not", key, label, guideOf[key])
				}
			}
		}
	}
	for _, i := range idps {
		if _, ok := guideOf[i.Key]; !ok {
			t.Errorf("no guide for the %s wizard", i.Key)
			continue
		}
		check(i.Key, i.Steps)
	}
	for _, d := range dirProviders {
		if _, ok := guideOf["dsync:"+d.Key]; ok {
			check("dsync:"+d.Key, d.Steps)
		}
	}
}
