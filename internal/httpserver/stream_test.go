package httpserver_test

import (
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/idbroker/idbroker/internal/httpserver"
)

// TestExtendWriteDeadline: a stream that outlasts the server's
// WriteTimeout arrives whole when it extends its deadline between chunks,
// through echo's Response as the exports write it, and is cut short
// without.
func TestExtendWriteDeadline(t *testing.T) {
	const timeout = 300 * time.Millisecond
	e := echo.New()
	e.GET("/stream", func(c echo.Context) error {
		extend := c.QueryParam("extend") == "1"
		res := c.Response()
		res.WriteHeader(http.StatusOK)
		for range 8 {
			if extend {
				httpserver.ExtendWriteDeadline(res, timeout)
			}
			if _, err := io.WriteString(res, strings.Repeat("x", 1000)+"\n"); err != nil {
				return nil
			}
			res.Flush()
			time.Sleep(timeout / 4)
		}
		return nil
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: e, WriteTimeout: timeout}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })

	for _, tc := range []struct {
		extend string
		whole  bool
	}{{"1", true}, {"0", false}} {
		resp, err := http.Get("http://" + ln.Addr().String() + "/stream?extend=" + tc.extend)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if whole := len(b) == 8*1001; whole != tc.whole {
			t.Errorf("extend=%s: %d bytes of %d, want whole %v", tc.extend, len(b), 8*1001, tc.whole)
		}
	}
}
