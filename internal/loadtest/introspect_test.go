package loadtest

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
)

// TestIntrospector: each worker sends its own token with the client's
// credentials, and an operation counts only for a 200 answer saying
// active, however the answer is framed (length, chunked, closing).
func TestIntrospector(t *testing.T) {
	var answers atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, secret, ok := r.BasicAuth()
		id, _ = url.QueryUnescape(id) // RFC 6749 §2.3.1
		secret, _ = url.QueryUnescape(secret)
		if r.Method != "POST" || r.URL.Path != "/introspect" || !ok || id != "app id" || secret != "s&cret" ||
			r.Header.Get("Content-Type") != "application/x-www-form-urlencoded" {
			w.WriteHeader(http.StatusUnauthorized)
			w.Write([]byte(`{"error":"invalid_client"}`))
			return
		}
		r.ParseForm()
		switch tk := r.PostForm.Get("token"); {
		case tk == "gone+1":
			w.Write([]byte(`{"active":false}`))
		case tk == "garbled":
			w.Write([]byte(`<html>`))
		case !strings.HasPrefix(tk, "tk+"):
			w.WriteHeader(http.StatusBadRequest)
		default:
			switch answers.Add(1) % 3 {
			case 0: // chunked
				w.Write([]byte(`{"active":`))
				w.(http.Flusher).Flush()
				w.Write([]byte(`true,"sub":"u"}`))
			case 1: // the server ends the connection; the next operation dials again
				w.Header().Set("Connection", "close")
				w.Write([]byte(`{"active":true}`))
			default:
				w.Write([]byte(`{"client_id":"app id","active":true}`))
			}
		}
	}))
	defer srv.Close()
	app := App{ClientID: "app id", Secret: "s&cret"}
	in, err := newIntrospector(srv.URL+"/introspect", app, []string{"tk+0", "tk+1", "gone+1", "garbled"})
	if err != nil {
		t.Fatal(err)
	}
	defer in.close()
	ctx := context.Background()
	for i := range 12 {
		if _, err := in.op(ctx, i%2); err != nil {
			t.Fatalf("op %d: %v", i, err)
		}
	}
	for w, kind := range map[int]string{2: "inactive", 3: "protocol"} {
		var oe *OpError
		if _, err := in.op(ctx, w); !errors.As(err, &oe) || oe.Kind != kind {
			t.Errorf("worker %d: %v, want kind %q", w, err, kind)
		}
	}
	bad, err := newIntrospector(srv.URL+"/introspect", App{ClientID: "app id", Secret: "wrong"}, []string{"tk+0"})
	if err != nil {
		t.Fatal(err)
	}
	defer bad.close()
	var oe *OpError
	if _, err := bad.op(ctx, 0); !errors.As(err, &oe) || oe.Kind != "status 401" {
		t.Errorf("wrong secret: %v", err)
	}
}

// TestPeerIntrospect: the peer scenario signs each worker in at the peer
// (as peer-login does) and introspects at the peer's path, here a fake
// Dex that, like Dex v2.45, does not authenticate the caller.
func TestPeerIntrospect(t *testing.T) {
	var logins, asked atomic.Int64
	mux := http.NewServeMux()
	mux.HandleFunc("GET /dex/auth", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		if q.Get("connector_id") != "mock" || q.Get("client_id") != "peer" {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		http.Redirect(w, r, q.Get("redirect_uri")+"?code=c&state="+url.QueryEscape(q.Get("state")), http.StatusSeeOther)
	})
	mux.HandleFunc("POST /dex/token", func(w http.ResponseWriter, r *http.Request) {
		if r.FormValue("code") != "c" {
			http.Error(w, `{"error":"invalid_grant"}`, http.StatusBadRequest)
			return
		}
		w.Write([]byte(`{"access_token":"at` + strconv.FormatInt(logins.Add(1), 10) + `","token_type":"bearer"}`))
	})
	mux.HandleFunc("POST /dex/token/introspect", func(w http.ResponseWriter, r *http.Request) {
		asked.Add(1)
		n, err := strconv.Atoi(strings.TrimPrefix(r.FormValue("token"), "at"))
		w.Write([]byte(`{"active":` + strconv.FormatBool(err == nil && n > 0 && int64(n) <= logins.Load()) + `}`))
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	b, err := NewBroker(srv.URL+"/dex", "", "")
	if err != nil {
		t.Fatal(err)
	}
	sc, err := NewScenario("peer-introspect", b, Options{Peer: PeerConfig{AuthorizePath: "/auth", TokenPath: "/token",
		Client: App{ClientID: "peer", Secret: "x", Redirect: "http://127.0.0.1:9/callback"}, Params: url.Values{"connector_id": {"mock"}}}})
	if err != nil {
		t.Fatal(err)
	}
	defer sc.Close()
	ctx := context.Background()
	if err := sc.Setup(ctx, 3); err != nil {
		t.Fatal(err)
	}
	rep, err := Drive(ctx, "peer-introspect", DriveConfig{Workers: 3, Ops: 30}, sc.Op)
	if err != nil || rep.Ops != 30 || rep.Errors != 0 || logins.Load() != 3 || asked.Load() != 30 {
		t.Fatalf("%v, %v (first error %s); %d logins, %d introspections", rep, err, rep.FirstError, logins.Load(), asked.Load())
	}
}
