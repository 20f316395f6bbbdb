// Live parts of the pages, without a framework: the pending-approvals count in the
// navigation, the approval queue, and a run's timeline while the run is active. Each
// polls a same-origin HTML fragment that the server renders (and escapes) itself.
(function () {
  "use strict";

  function fetchFragment(url) {
    return fetch(url, { credentials: "same-origin", headers: { Accept: "text/html" } }).then(
      function (response) {
        if (response.status === 401) {
          window.location.reload(); // the session ended: the page sends us to log in
          throw new Error("logged out");
        }
        if (!response.ok) throw new Error("HTTP " + response.status);
        return response.text();
      }
    ).then(function (html) {
      var holder = document.createElement("template");
      holder.innerHTML = html.trim();
      return holder.content.firstElementChild;
    });
  }

  // Replace an element with a fresh one, keeping what the person is typing.
  function swap(current, fresh) {
    var kept = {};
    var focused = document.activeElement && document.activeElement.getAttribute("data-keep");
    current.querySelectorAll("[data-keep]").forEach(function (el) {
      kept[el.getAttribute("data-keep")] = el.value;
    });
    current.replaceWith(fresh);
    fresh.querySelectorAll("[data-keep]").forEach(function (el) {
      var key = el.getAttribute("data-keep");
      if (key in kept) el.value = kept[key];
      if (key === focused) el.focus();
    });
  }

  function every(ms, tick) {
    var timer = window.setInterval(function () {
      if (document.hidden) return;
      tick(function stop() { window.clearInterval(timer); });
    }, ms);
  }

  var badge = document.getElementById("pending-count");
  if (badge) {
    every(Number(badge.getAttribute("data-every")) || 4000, function (stop) {
      var queue = document.getElementById("approval-queue");
      var own = badge.getAttribute("data-live");
      fetchFragment(own).then(function (fresh) {
        var count = fresh.getAttribute("data-count");
        badge.textContent = count;
        badge.classList.toggle("zero", count === "0");
        // The queue on this page may be filtered: it refreshes from its own address.
        if (!queue) return null;
        var mine = queue.getAttribute("data-live");
        return mine === own ? fresh : fetchFragment(mine);
      }).then(function (fresh) {
        var current = document.getElementById("approval-queue");
        if (fresh && current && current.getAttribute("data-version") !== fresh.getAttribute("data-version")) {
          swap(current, fresh);
        }
      }).catch(function () { stop(); });
    });
  }

  var run = document.getElementById("run-live");
  if (run && run.getAttribute("data-active") === "true") {
    every(Number(run.getAttribute("data-every")) || 2000, function (stop) {
      var current = document.getElementById("run-live");
      fetchFragment(current.getAttribute("data-live")).then(function (fresh) {
        if (fresh.getAttribute("data-version") !== current.getAttribute("data-version")) {
          swap(current, fresh);
        }
        if (fresh.getAttribute("data-active") !== "true") stop();
      }).catch(function () { stop(); });
    });
  }
})();
