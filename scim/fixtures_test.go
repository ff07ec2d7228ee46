package scim_test

import (
	"encoding/json"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/idbroker/idbroker/store"
)

// A clientFixture is a request sequence a real SCIM client is documented to
// send, replayed step by step against a real server. Placeholders
// {{name}} in paths, bodies and expectations are values captured from
// earlier answers.
type clientFixture struct {
	Name   string        `json:"name"`
	Source string        `json:"source"`
	Steps  []fixtureStep `json:"steps"`
	// Events are the types the sequence must have appended to the outbox,
	// in order.
	Events []string `json:"events"`
}

type fixtureStep struct {
	Name   string          `json:"name"`
	Method string          `json:"method"`
	Path   string          `json:"path"`
	Body   json.RawMessage `json:"body"`
	Status int             `json:"status"`
	// Capture names values of the answer (by path) for later steps.
	Capture map[string]string `json:"capture"`
	// Expect maps a path in the answer to its value. Paths separate
	// segments with "/" (URNs hold dots); a trailing "/#" is an array's
	// length; "$absent" means the attribute is not returned.
	Expect map[string]json.RawMessage `json:"expect"`
}

var placeholder = regexp.MustCompile(`\{\{(\w+)\}\}`)

func TestClientFixtures(t *testing.T) {
	files, err := filepath.Glob("testdata/clients/*.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no fixtures: %v", err)
	}
	for _, file := range files {
		raw, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		var fx clientFixture
		dec := json.NewDecoder(strings.NewReader(string(raw)))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&fx); err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		t.Run(strings.TrimSuffix(filepath.Base(file), ".json"), func(t *testing.T) {
			t.Parallel()
			eachBackend(t, func(t *testing.T, st *store.DB) {
				replay(t, newEnv(t, st, nil), fx)
				if got := eventTypes(t, st); !reflect.DeepEqual(got, fx.Events) {
					t.Errorf("events\n got %v\nwant %v", got, fx.Events)
				}
			})
		})
	}
}

func replay(t *testing.T, e *env, fx clientFixture) {
	vars := map[string]string{}
	subst := func(s string) string {
		return placeholder.ReplaceAllStringFunc(s, func(m string) string {
			name := placeholder.FindStringSubmatch(m)[1]
			v, ok := vars[name]
			if !ok {
				t.Fatalf("placeholder %s is not captured yet", m)
			}
			return v
		})
	}
	for i, s := range fx.Steps {
		path := subst(s.Path)
		if p, q, ok := strings.Cut(path, "?"); ok {
			vals, err := url.ParseQuery(q)
			if err != nil {
				t.Fatalf("step %d: query %q: %v", i, q, err)
			}
			path = p + "?" + vals.Encode()
		}
		var body any
		if len(s.Body) > 0 {
			body = subst(string(s.Body))
		}
		r := e.do(s.Method, path, body)
		if r.status != s.Status {
			t.Fatalf("step %d (%s): %s %s: status %d, want %d: %s", i, s.Name, s.Method, path, r.status, s.Status, r.raw)
		}
		r.want(t, s.Status) // the error schema on errors
		if r.raw != "" && !strings.HasPrefix(r.header.Get("Content-Type"), "application/scim+json") {
			t.Errorf("step %d (%s): Content-Type %q", i, s.Name, r.header.Get("Content-Type"))
		}
		for p, want := range s.Expect {
			got, present := fixturePath(r.body, p)
			if string(want) == `"$absent"` {
				if present {
					t.Errorf("step %d (%s): %s is returned (%v), want absent", i, s.Name, p, got)
				}
				continue
			}
			var w any
			if err := json.Unmarshal([]byte(subst(string(want))), &w); err != nil {
				t.Fatalf("step %d: expectation %s: %v", i, p, err)
			}
			if !present || !reflect.DeepEqual(got, w) {
				t.Errorf("step %d (%s): %s = %#v, want %#v\n%s", i, s.Name, p, got, w, r.raw)
			}
		}
		for name, p := range s.Capture {
			v, ok := fixturePath(r.body, p)
			str, isStr := v.(string)
			if !ok || !isStr || str == "" {
				t.Fatalf("step %d (%s): nothing to capture at %s: %s", i, s.Name, p, r.raw)
			}
			vars[name] = str
		}
		if t.Failed() {
			t.FailNow()
		}
	}
}

// fixturePath walks a "/"-separated path; numbers index arrays and a final
// "#" is the array's length (a float64, as JSON numbers decode).
func fixturePath(v any, path string) (any, bool) {
	for _, part := range strings.Split(path, "/") {
		switch x := v.(type) {
		case map[string]any:
			var ok bool
			if v, ok = x[part]; !ok {
				return nil, false
			}
		case []any:
			if part == "#" {
				return float64(len(x)), true
			}
			i, err := strconv.Atoi(part)
			if err != nil || i < 0 || i >= len(x) {
				return nil, false
			}
			v = x[i]
		default:
			return nil, false
		}
	}
	return v, true
}
