package sessions_test

import (
	"testing"

	"github.com/idbroker/idbroker/sessions"
	"github.com/idbroker/idbroker/sessions/sessionstest"
)

func TestMemoryConformance(t *testing.T) {
	sessionstest.RunConformance(t, func(t *testing.T) sessionstest.Impl {
		m := sessions.NewMemory()
		return sessionstest.Impl{Store: m, Once: m, Limiter: m, Counter: m}
	})
}
