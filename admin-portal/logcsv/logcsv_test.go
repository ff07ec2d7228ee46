package logcsv_test

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/idbroker/idbroker/admin-portal/logcsv"
	"github.com/idbroker/idbroker/store"
)

func TestCell(t *testing.T) {
	for in, want := range map[string]string{
		"":               "",
		"plain":          "plain",
		"=HYPERLINK(1)":  "'=HYPERLINK(1)",
		"+1":             "'+1",
		"-1":             "'-1",
		"@SUM(A1)":       "'@SUM(A1)",
		"\tx":            "'\tx",
		"\rx":            "'\rx",
		"a=b":            "a=b",
		"2026-12-06T09Z": "2026-12-06T09Z",
	} {
		if got := logcsv.Cell(in); got != want {
			t.Errorf("Cell(%q) = %q, want %q", in, got, want)
		}
	}
}

// pages is a log of n rows "r0"… (newest first) read PageSize at a time;
// failAt, when > 0, is the read that fails.
func pages(n, failAt int, reads *int) logcsv.Reader[string] {
	return func(_ context.Context, q store.LogQuery) (store.LogPage[string], error) {
		*reads++
		if *reads == failAt {
			return store.LogPage[string]{}, errors.New("database gone")
		}
		start := 0
		if q.After != "" {
			fmt.Sscanf(q.After, "r%d", &start)
			start++
		}
		var p store.LogPage[string]
		for i := start; i < n && len(p.Rows) < q.Limit; i++ {
			p.Rows = append(p.Rows, fmt.Sprint("r", i))
		}
		if end := start + len(p.Rows); end < n {
			p.Older = fmt.Sprint("r", end-1)
		}
		return p, nil
	}
}

func TestWrite(t *testing.T) {
	exp := logcsv.Export[string]{Filename: "log.csv", Header: []string{"id", "note"},
		Record: func(s string) []string { return []string{s, "=" + s} }}
	for _, tc := range []struct {
		name         string
		n, failAt    int
		wantLines    int
		wantErr      bool
		wantCutShort bool
	}{
		{name: "empty", n: 0, wantLines: 1},
		{name: "one page", n: 3, wantLines: 4},
		{name: "several pages", n: 2*logcsv.PageSize + 7, wantLines: 2*logcsv.PageSize + 8},
		{name: "first read fails: nothing written", n: 10, failAt: 1, wantErr: true},
		{name: "later read fails: cut short", n: 2 * logcsv.PageSize, failAt: 2, wantLines: logcsv.PageSize + 1, wantErr: true, wantCutShort: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			reads := 0
			err := logcsv.Write(context.Background(), rec, pages(tc.n, tc.failAt, &reads), store.LogQuery{}, exp)
			if (err != nil) != tc.wantErr || errors.Is(err, logcsv.ErrCutShort) != tc.wantCutShort {
				t.Fatalf("err = %v", err)
			}
			if tc.wantErr && !tc.wantCutShort {
				if rec.Body.Len() != 0 || rec.Header().Get("Content-Type") != "" {
					t.Fatalf("answer begun before the first page: %q", rec.Body.String())
				}
				return
			}
			if ct := rec.Header().Get("Content-Type"); ct != "text/csv; charset=utf-8" {
				t.Errorf("content type %q", ct)
			}
			lines, err := csv.NewReader(strings.NewReader(rec.Body.String())).ReadAll()
			if err != nil || len(lines) != tc.wantLines {
				t.Fatalf("%d lines, want %d (%v)", len(lines), tc.wantLines, err)
			}
			for i, l := range lines[1:] {
				if l[0] != fmt.Sprint("r", i) || l[1] != "'=r"+fmt.Sprint(i) {
					t.Fatalf("line %d = %v", i+1, l)
				}
			}
		})
	}
}
