package console

import (
	"testing"

	"github.com/idbroker/idbroker/admin-portal/openapi"
)

// BenchmarkAPIReference builds the API reference page's model from the
// OpenAPI document, as the page's first request does (2.0 s before the
// document's objects were decoded once per build, 38 ms after).
func BenchmarkAPIReference(b *testing.B) {
	d, err := openapi.Load()
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := buildAPIRef(d.JSON); err != nil {
			b.Fatal(err)
		}
	}
}
