// Live update: every few seconds, fetch this same page and swap in the new <main> (no reload,
// no client-side rendering: the server's templates stay the only renderer). The fetch
// revalidates with the page's ETag, so an unchanged page costs a 304. Pauses while the tab is
// hidden; after a few failed fetches in a row the page says the server cannot be reached,
// rather than go on looking current.
//
// Uptime bars: each `.days` element carries its days compactly (data-first: the first date;
// data-marks: one letter per day; data-notes: "index:detail;…" for days out of the ordinary),
// and an ancestor's data-day-words gives each letter's words ("u:Operational:100% uptime, no
// incidents;…"). Hovering a bar, or focusing it and using the arrow keys, shows that day's date,
// state, uptime and incidents in the caption below it and as the bar's value for screen readers.
(function () {
  "use strict";
  var every = parseInt(document.body.getAttribute("data-poll-ms"), 10) || 10000;
  var busy = false;
  var failures = 0;
  var UNREACHABLE_AFTER = 3;

  // === uptime bars ===

  function table(text) {
    var out = {};
    (text || "").split(";").forEach(function (item) {
      var at = item.indexOf(":");
      if (at > 0) out[item.slice(0, at)] = item.slice(at + 1);
    });
    return out;
  }

  function dayText(el, i) {
    var holder = el.closest("[data-day-words]");
    var words = table(holder && holder.getAttribute("data-day-words"));
    var letter = (el.getAttribute("data-marks") || "").charAt(i);
    var word = (words[letter] || ":").split(":");
    var note = table(el.getAttribute("data-notes"))[String(i)];
    var first = Date.parse(el.getAttribute("data-first") + "T00:00:00Z");
    var date = isNaN(first) ? "" : new Date(first + i * 864e5).toISOString().slice(0, 10);
    return date + ": " + word[0] + ", " + (note || word.slice(1).join(":"));
  }

  function count(el) {
    return (el.getAttribute("data-marks") || "").length;
  }

  function show(el, i) {
    var n = count(el);
    if (!n) return;
    i = Math.max(0, Math.min(n - 1, i));
    var text = dayText(el, i);
    el.setAttribute("data-day", i);
    el.setAttribute("aria-valuenow", i + 1);
    el.setAttribute("aria-valuetext", text);
    var note = el.parentNode.querySelector(".day-note");
    if (note) {
      if (!note.hasAttribute("data-usual")) note.setAttribute("data-usual", note.textContent);
      note.textContent = text;
    }
    var svg = el.querySelector("svg");
    if (!svg) return;
    var pick = svg.querySelector(".day-pick");
    if (!pick) {
      pick = document.createElementNS("http://www.w3.org/2000/svg", "rect");
      pick.setAttribute("class", "day-pick");
      pick.setAttribute("width", "4");
      pick.setAttribute("height", "28");
      svg.appendChild(pick);
    }
    pick.setAttribute("x", String(i * 5));
  }

  function hide(el) {
    el.removeAttribute("data-day");
    var note = el.parentNode.querySelector(".day-note");
    if (note && note.hasAttribute("data-usual")) {
      note.textContent = note.getAttribute("data-usual");
      note.removeAttribute("data-usual");
    }
    var pick = el.querySelector(".day-pick");
    if (pick) pick.parentNode.removeChild(pick);
  }

  // Without this script a bar is an image with a summary; with it, a control one can step
  // through.
  function prepare(root) {
    root.querySelectorAll(".days").forEach(function (el) {
      var n = count(el);
      if (!n) return;
      var svg = el.querySelector("svg");
      el.tabIndex = 0;
      el.setAttribute("role", "slider");
      el.setAttribute("aria-label", ((svg && svg.getAttribute("aria-label")) || "Uptime") +
        ". Use the arrow keys to read each day.");
      el.setAttribute("aria-valuemin", "1");
      el.setAttribute("aria-valuemax", String(n));
      el.setAttribute("aria-valuenow", String(n));
      el.setAttribute("aria-valuetext", dayText(el, n - 1));
    });
  }

  function bar(target) {
    return target && target.closest ? target.closest(".days") : null;
  }

  var MOVES = { ArrowLeft: -1, ArrowDown: -1, ArrowRight: 1, ArrowUp: 1, PageDown: -7, PageUp: 7 };
  document.addEventListener("keydown", function (e) {
    var el = bar(e.target);
    if (!el) return;
    var n = count(el);
    var at = el.hasAttribute("data-day") ? parseInt(el.getAttribute("data-day"), 10) : n - 1;
    var to = e.key === "Home" ? 0 : e.key === "End" ? n - 1 : MOVES[e.key] === undefined ? null : at + MOVES[e.key];
    if (to === null) return;
    e.preventDefault();
    show(el, to);
  });
  document.addEventListener("focusin", function (e) {
    var el = bar(e.target);
    if (el) show(el, el.hasAttribute("data-day") ? parseInt(el.getAttribute("data-day"), 10) : count(el) - 1);
  });
  document.addEventListener("focusout", function (e) {
    var el = bar(e.target);
    if (el) hide(el);
  });
  document.addEventListener("mousemove", function (e) {
    var el = bar(e.target);
    if (!el) return;
    var box = el.getBoundingClientRect();
    if (box.width > 0) show(el, Math.floor((e.clientX - box.left) / box.width * count(el)));
  });
  document.addEventListener("mouseout", function (e) {
    var el = bar(e.target);
    if (el && !el.contains(e.relatedTarget) && document.activeElement !== el) hide(el);
  });

  // === live update ===

  function withoutStamp(root) {
    var stamp = root.querySelector(".updated");
    return stamp ? root.innerHTML.replace(stamp.outerHTML, "") : root.innerHTML;
  }

  function unreachable() {
    var stamp = document.querySelector("#live .updated");
    if (!stamp || stamp.querySelector(".unreachable")) return;
    var note = document.createElement("strong");
    note.className = "unreachable";
    note.textContent = "The status server cannot be reached: this page is not being updated. ";
    stamp.insertBefore(note, stamp.firstChild);
  }

  // What the server sent last, before this script added its attributes: polls compare with it.
  var shown = null;

  function refresh() {
    if (busy || document.hidden) return;
    busy = true;
    fetch(location.href, { cache: "no-cache", headers: { "X-Isdown-Live": "1" } })
      .then(function (r) {
        if (!r.ok) throw new Error(String(r.status));
        return r.text();
      })
      .then(function (html) {
        failures = 0;
        var next = new DOMParser().parseFromString(html, "text/html");
        var fresh = next.getElementById("live");
        var live = document.getElementById("live");
        if (!fresh || !live) return;
        document.title = next.title;
        // Swap only what changed, so screen readers announce the banner when it changes,
        // not on every poll; the "Data as of" line alone is patched in place.
        var stamp = live.querySelector(".updated");
        var unreachableShown = stamp && stamp.querySelector(".unreachable");
        if (unreachableShown) stamp.removeChild(unreachableShown);
        var content = withoutStamp(fresh);
        if (content === shown) {
          var freshStamp = fresh.querySelector(".updated");
          if (stamp && freshStamp) {
            stamp.innerHTML = freshStamp.innerHTML;
            stamp.className = freshStamp.className;
          }
          return;
        }
        // Keep focus where it was when the focused element survives the swap (same id).
        var focused = document.activeElement && document.activeElement.id;
        live.innerHTML = fresh.innerHTML;
        shown = content;
        prepare(live);
        if (focused) {
          var again = document.getElementById(focused);
          if (again) again.focus();
        }
        document.body.setAttribute("data-live-updates",
          String((parseInt(document.body.getAttribute("data-live-updates"), 10) || 0) + 1));
      })
      .catch(function () {
        failures += 1;
        if (failures >= UNREACHABLE_AFTER) unreachable();
      })
      .then(function () { busy = false; });
  }

  var main = document.getElementById("live");
  if (main) shown = withoutStamp(main);
  prepare(document);
  setInterval(refresh, every);
  document.addEventListener("visibilitychange", function () { if (!document.hidden) refresh(); });
})();
