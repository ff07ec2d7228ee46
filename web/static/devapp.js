// The demo app's live status after "Deprovision me" (serve --dev): polls
// the app's own status endpoint; loaded from 'self', as the CSP requires.
"use strict";
document.addEventListener("DOMContentLoaded", function () {
  var live = document.getElementById("live");
  if (!live) return;
  var token = document.getElementById("token-state");
  var bcl = document.getElementById("bcl-state");
  var done = false;
  function poll() {
    fetch(live.getAttribute("data-status"), { credentials: "same-origin", cache: "no-store" })
      .then(function (r) { return r.json(); })
      .then(function (s) {
        if (s.error && s.token_active === undefined) return;
        token.textContent = s.token_active ? "active" : "inactive";
        token.className = s.token_active ? "warn" : "status-succeeded";
        if (s.backchannel_logout_at) {
          bcl.textContent = "received at " + s.backchannel_logout_at;
          bcl.className = "status-succeeded";
        }
        done = !s.token_active && !!s.backchannel_logout_at;
      })
      .catch(function () {})
      .then(function () { if (!done) setTimeout(poll, 1000); });
  }
  poll();
});
