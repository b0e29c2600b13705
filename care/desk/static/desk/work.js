/*
 * "My work" page: j/k move the focus between ticket rows (Enter opens the focused link natively),
 * SLA badges tick once a minute, and live events on my agent stream re-read the list region.
 * Plain script, no build step; uses window.CareLive (live.js).
 */
(function (window, document) {
  "use strict";

  var REFRESH_EVENTS = {
    "ticket.assigned": true,
    "ticket.updated": true,
    "ticket.created": true,
    "mention.added": true // a colleague's note mentions me: the Mentions list gains it
  };
  var TICK_MS = 60 * 1000;
  var config = JSON.parse(document.getElementById("work-live-config").textContent);
  var texts = config.text || {};

  function links() {
    return Array.prototype.slice.call(document.querySelectorAll("#work-region .work-link"));
  }

  function isTyping(target) {
    var tag = target && target.tagName;
    return tag === "INPUT" || tag === "TEXTAREA" || tag === "SELECT" || (target && target.isContentEditable);
  }

  document.addEventListener("keydown", function (event) {
    if (event.altKey || event.ctrlKey || event.metaKey || isTyping(event.target)) {
      return;
    }
    if (event.key !== "j" && event.key !== "k") {
      return;
    }
    var all = links();
    if (!all.length) {
      return;
    }
    var index = all.indexOf(document.activeElement);
    if (index === -1) {
      index = event.key === "j" ? 0 : all.length - 1;
    } else {
      index = Math.max(0, Math.min(all.length - 1, index + (event.key === "j" ? 1 : -1)));
    }
    all[index].focus();
    event.preventDefault();
  });

  // --- SLA badges: the server wrote the words; keep them true as time passes ---------------------

  function duration(ms) {
    var lang = document.documentElement.lang || undefined;
    var minutes = Math.max(1, Math.round(Math.abs(ms) / 60000));
    var unit = "minute";
    var value = minutes;
    if (minutes >= 2 * 24 * 60) {
      unit = "day";
      value = Math.floor(minutes / (24 * 60));
    } else if (minutes >= 120) {
      unit = "hour";
      value = Math.floor(minutes / 60);
    }
    try {
      return new Intl.NumberFormat(lang, {style: "unit", unit: unit, unitDisplay: "long"}).format(value);
    } catch (error) {
      return value + " " + unit;
    }
  }

  function tick() {
    var now = Date.now();
    document.querySelectorAll("#work-region time[data-sla-due]").forEach(function (time) {
      var badge = time.closest(".sla-badge");
      if (!badge || !texts.due_in) {
        return;
      }
      var left = Date.parse(time.getAttribute("datetime")) - now;
      var template = left <= 0 ? texts.overdue : texts.due_in;
      time.textContent = template.replace("%(time)s", duration(left));
      badge.className = "sla-badge " + (left <= 0 ? "sla-overdue" : left <= 3600000 ? "sla-soon" : "sla-ok");
    });
  }

  window.setInterval(tick, TICK_MS);

  // --- live: re-read the list region when my tickets change --------------------------------------

  var refreshTimer = null;

  function refresh() {
    var focusedId = null;
    var active = document.activeElement;
    var row = active && active.closest ? active.closest("[data-ticket-id]") : null;
    if (row) {
      focusedId = row.getAttribute("data-ticket-id");
    }
    window.fetch(window.location.pathname, {credentials: "same-origin", headers: {Accept: "text/html"}})
      .then(function (response) {
        return response.ok ? response.text() : null;
      })
      .then(function (html) {
        if (!html) {
          return;
        }
        var doc = new window.DOMParser().parseFromString(html, "text/html");
        var fresh = doc.getElementById("work-region");
        var region = document.getElementById("work-region");
        if (!fresh || !region) {
          return;
        }
        region.innerHTML = fresh.innerHTML;
        var heading = document.getElementById("work-heading");
        var freshHeading = doc.getElementById("work-heading");
        if (heading && freshHeading) {
          heading.textContent = freshHeading.textContent;
        }
        if (focusedId) {
          var link = region.querySelector('[data-ticket-id="' + focusedId + '"] .work-link');
          if (link) {
            link.focus();
          }
        }
      })
      .catch(function () {});
  }

  function scheduleRefresh() {
    window.clearTimeout(refreshTimer);
    refreshTimer = window.setTimeout(refresh, 300); // a burst of events is one re-read
  }

  // --- mentions: "mark read" without a reload (the forms post normally without script) -------------

  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!form.classList || !(form.classList.contains("mention-read") || form.classList.contains("mention-read-all"))) {
      return;
    }
    event.preventDefault();
    var buttons = form.querySelectorAll("button");
    for (var i = 0; i < buttons.length; i += 1) {
      buttons[i].disabled = true;
    }
    window
      .fetch(form.getAttribute("action"), {
        method: "POST",
        body: new window.FormData(form),
        credentials: "same-origin",
        headers: {Accept: "application/json", "X-CSRFToken": form.elements.csrfmiddlewaretoken.value}
      })
      .then(function (response) {
        if (!response.ok) {
          throw new Error("HTTP " + response.status);
        }
        refresh();
      })
      .catch(function () {
        form.submit(); // the plain post: the server redirects back to this page
      });
  });

  if (config.stream && window.CareLive) {
    var live = new window.CareLive({});
    window.careLive = live; // for the console and the browser tests
    live.subscribe(
      config.stream,
      function (event) {
        if (REFRESH_EVENTS[event.type]) {
          scheduleRefresh();
        }
      },
      {onReload: scheduleRefresh}
    );
    window.addEventListener("pagehide", function () {
      live.close();
    });
  }
})(window, document);
