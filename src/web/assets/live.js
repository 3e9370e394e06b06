// Live update: every few seconds, fetch this same page and swap in the new <main> (no reload,
// no client-side rendering: the server's templates stay the only renderer). Pauses while the
// tab is hidden; a failed fetch just waits for the next turn.
(function () {
  "use strict";
  var every = parseInt(document.body.getAttribute("data-poll-ms"), 10) || 10000;
  var busy = false;
  function withoutStamp(root) {
    var stamp = root.querySelector(".updated");
    return stamp ? root.innerHTML.replace(stamp.outerHTML, "") : root.innerHTML;
  }
  function refresh() {
    if (busy || document.hidden) return;
    busy = true;
    fetch(location.href, { cache: "no-store", headers: { "X-Isdown-Live": "1" } })
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (html) {
        if (!html) return;
        var next = new DOMParser().parseFromString(html, "text/html");
        var fresh = next.getElementById("live");
        var live = document.getElementById("live");
        if (!fresh || !live) return;
        document.title = next.title;
        // Swap only what changed, so screen readers announce the banner when it changes,
        // not on every poll; the "Updated" line alone is patched in place.
        if (withoutStamp(fresh) === withoutStamp(live)) {
          var stamp = live.querySelector(".updated"), freshStamp = fresh.querySelector(".updated");
          if (stamp && freshStamp) stamp.innerHTML = freshStamp.innerHTML;
          return;
        }
        // Keep focus where it was when the focused element survives the swap (same id).
        var focused = document.activeElement && document.activeElement.id;
        live.innerHTML = fresh.innerHTML;
        if (focused) {
          var again = document.getElementById(focused);
          if (again) again.focus();
        }
        document.body.setAttribute("data-live-updates",
          String((parseInt(document.body.getAttribute("data-live-updates"), 10) || 0) + 1));
      })
      .catch(function () {})
      .then(function () { busy = false; });
  }
  setInterval(refresh, every);
  document.addEventListener("visibilitychange", function () { if (!document.hidden) refresh(); });
})();
