// Behaviour shared by the portal and the console, loaded from our own
// origin (the pages' CSP allows no inline script). Everything works without
// it; it only adds conveniences.
"use strict";
document.addEventListener("click", function (ev) {
  // Copy buttons: <button data-copy="input-id">.
  var btn = ev.target.closest("[data-copy]");
  if (btn) {
    var field = document.getElementById(btn.getAttribute("data-copy"));
    if (!field) return;
    var text = field.value !== undefined ? field.value : field.textContent;
    var done = function () {
      // A live region named <input-id>-status, when the page has one,
      // tells screen-reader users too.
      var status = document.getElementById(btn.getAttribute("data-copy") + "-status");
      if (status) status.textContent = "Copied to the clipboard.";
      var label = btn.textContent;
      btn.textContent = "Copied";
      btn.classList.add("copied");
      setTimeout(function () { btn.textContent = label; btn.classList.remove("copied"); }, 1500);
    };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(done, function () { field.select(); document.execCommand("copy"); done(); });
    } else {
      field.select();
      document.execCommand("copy");
      done();
    }
    return;
  }
});
document.addEventListener("submit", function (ev) {
  // Forms that destroy something ask first: <form data-confirm="…">.
  var msg = ev.target.getAttribute("data-confirm");
  if (msg && !window.confirm(msg)) ev.preventDefault();
});
document.addEventListener("DOMContentLoaded", function () {
  // Move focus to the first field in error, so keyboard and screen-reader
  // users land where the problem is.
  var bad = document.querySelector("[aria-invalid=true]");
  if (bad) bad.focus();
  // A copy button that only works with this script may be hidden in the
  // markup; show it now.
  document.querySelectorAll("[data-copy][hidden]").forEach(function (b) { b.hidden = false; });
  // <select data-autosubmit> submits its form on change (filters).
  document.querySelectorAll("select[data-autosubmit]").forEach(function (s) {
    s.addEventListener("change", function () { s.form.submit(); });
  });
});
