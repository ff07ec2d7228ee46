package httpserver

import (
	"net/http"
	"time"
)

// ExtendWriteDeadline gives an answer that streams (an export of millions
// of rows) another d to be written, from now. The server's WriteTimeout
// counts from the request's arrival and is right for every other answer,
// but it cut a long export off mid-file. Called between chunks, a stream
// lives as long as it keeps moving, and a client that stops reading still
// times out. A writer that cannot set deadlines (a test recorder) is left
// alone.
func ExtendWriteDeadline(w http.ResponseWriter, d time.Duration) {
	_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(d))
}
