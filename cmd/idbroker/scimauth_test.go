package main

import (
	"encoding/json"
	"io"
	"net/http"
	"path/filepath"
	"testing"

	"github.com/idbroker/idbroker/store"
)

// TestSCIMRefusedTokensAreLimited: the broker wires SCIM's budget of
// refused tokens. Made-up directory ids, a new one each time, share one
// budget of the address; past it the answer is a 429 in the SCIM error
// schema, with Retry-After.
func TestSCIMRefusedTokensAreLimited(t *testing.T) {
	t.Parallel()
	db := "sqlite://" + filepath.ToSlash(filepath.Join(t.TempDir(), "idbroker.db"))
	b := startBroker(t, map[string]string{envDatabaseURL: db})
	get := func() (*http.Response, []byte) {
		req, err := http.NewRequest(http.MethodGet, b.base+"/scim/v2/"+store.NewID(store.PrefixDirectory)+"/Users", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer scim_guessed")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp, body
	}
	for i := range scimAuthFailureRule.Limit {
		if resp, body := get(); resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("request %d = %d, want 401: %s", i+1, resp.StatusCode, body)
		}
	}
	// The budget refills as it is spent (one a second at 60 a minute), so
	// on a loaded machine whose requests took a few seconds the next few
	// are still within it; the refusal comes before twice the budget.
	resp, body := get()
	for i := scimAuthFailureRule.Limit + 1; resp.StatusCode == http.StatusUnauthorized && i < 2*scimAuthFailureRule.Limit; i++ {
		resp, body = get()
	}
	var e struct {
		Schemas []string `json:"schemas"`
		Status  string   `json:"status"`
	}
	if err := json.Unmarshal(body, &e); err != nil || resp.StatusCode != http.StatusTooManyRequests ||
		resp.Header.Get("Retry-After") == "" || e.Status != "429" || len(e.Schemas) != 1 {
		t.Fatalf("request over the budget = %d, Retry-After %q: %s", resp.StatusCode, resp.Header.Get("Retry-After"), body)
	}
}
