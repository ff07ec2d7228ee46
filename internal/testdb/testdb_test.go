package testdb

import "testing"

func TestInCI(t *testing.T) {
	for _, tc := range []struct {
		value string
		want  bool
	}{
		{"", false},
		{"false", false},
		{"FALSE", false},
		{"0", false},
		{"no", false},
		{"true", true},
		{"True", true},
		{"1", true},
		{"yes", true},
		{"gitlab", true},
	} {
		t.Run(tc.value, func(t *testing.T) {
			t.Setenv("CI", tc.value)
			if got := InCI(); got != tc.want {
				t.Errorf("CI=%q: InCI() = %v, want %v", tc.value, got, tc.want)
			}
		})
	}
}
