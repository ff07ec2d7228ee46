package httpserver

import (
	"log/slog"
	"testing"
)

func TestAccessLevel(t *testing.T) {
	for _, tc := range []struct {
		status int
		route  string
		want   slog.Level
	}{
		{200, "/oauth/token", slog.LevelInfo},
		{404, "/scim/v2/:dir/Users/:id", slog.LevelInfo},
		{429, "/authorize", slog.LevelInfo},
		{500, "/oauth/token", slog.LevelError},
		{503, "/readyz", slog.LevelError},
		{501, "/scim/v2/:dir/Me", slog.LevelWarn},
		{200, "/healthz", slog.LevelDebug},
		{200, "/readyz", slog.LevelDebug},
		{404, "/healthz", slog.LevelInfo},
	} {
		if got := accessLevel(tc.status, tc.route); got != tc.want {
			t.Errorf("accessLevel(%d, %s) = %v, want %v", tc.status, tc.route, got, tc.want)
		}
	}
}
