package events

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strconv"
	"strings"
	"time"
)

// Headers of a delivery.
const (
	HeaderSignature = "IDBroker-Signature"
	HeaderEventID   = "IDBroker-Event-Id"
	HeaderEventType = "IDBroker-Event-Type"
	HeaderDelivery  = "IDBroker-Delivery-Id"
)

// ErrBadSignature is returned by Verify for a missing, malformed, stale or
// wrong signature.
var ErrBadSignature = errors.New("events: bad webhook signature")

// Sign returns the IDBroker-Signature header value for body sent at t:
// one v1= signature per secret, in the order given (during a rotation,
// the new secret's first, then the old one's, as Stripe does).
func Sign(secret string, t time.Time, body []byte, more ...string) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	out := "t=" + ts + ",v1=" + mac(secret, ts, body)
	for _, s := range more {
		out += ",v1=" + mac(s, ts, body)
	}
	return out
}

func mac(secret, ts string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(ts))
	m.Write([]byte("."))
	m.Write(body)
	return hex.EncodeToString(m.Sum(nil))
}

// Verify checks header against body, refusing signatures older (or newer)
// than tolerance at now, which bounds replays. Receivers call it with the
// raw body, before parsing it.
func Verify(secret, header string, body []byte, now time.Time, tolerance time.Duration) error {
	var ts string
	var sigs []string
	for _, part := range strings.Split(header, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
		switch k {
		case "t":
			ts = v
		case "v1":
			sigs = append(sigs, v)
		}
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || len(sigs) == 0 {
		return ErrBadSignature
	}
	if d := now.Sub(time.Unix(sec, 0)); d > tolerance || d < -tolerance {
		return ErrBadSignature
	}
	want := mac(secret, ts, body)
	for _, s := range sigs {
		if hmac.Equal([]byte(s), []byte(want)) {
			return nil
		}
	}
	return ErrBadSignature
}
