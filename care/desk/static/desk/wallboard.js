/*
 * The wallboard: `wallboard.snapshot` events on wallboard:<tenant> replace the figures, `queue.stats`
 * on tenant:<tenant> the queue table; the waits tick every second from their start. "f" (or the
 * button) toggles full screen. Plain script, no build step; uses window.CareLive (live.js).
 */
(function (window, document) {
  "use strict";

  var config = JSON.parse(document.getElementById("wallboard-live-config").textContent);
  var texts = config.text || {};
  var board = document.getElementById("wallboard");

  function wait(since, now) {
    if (!since) {
      return "–";
    }
    var seconds = Math.max(0, Math.floor((now - Date.parse(since)) / 1000));
    var hours = Math.floor(seconds / 3600);
    var minutes = Math.floor((seconds % 3600) / 60);
    var rest = seconds % 60;
    var mm = hours ? (minutes < 10 ? "0" : "") + minutes : String(minutes);
    return (hours ? hours + ":" : "") + mm + ":" + (rest < 10 ? "0" : "") + rest;
  }

  function share(value) {
    return value === null || value === undefined ? "–" : Math.round(value * 100) + " %";
  }

  function pick(data, path) {
    return path.split(".").reduce(function (value, key) {
      return value === null || value === undefined ? value : value[key];
    }, data);
  }

  function setFigure(name, text) {
    var node = board.querySelector('[data-figure="' + name + '"]');
    if (!node || node.textContent === String(text)) {
      return node;
    }
    node.textContent = String(text);
    node.classList.remove("is-changed");
    void node.offsetWidth; // restart the highlight
    node.classList.add("is-changed");
    return node;
  }

  function showBoard(data) {
    ["waiting", "agents.available", "agents.busy", "agents.on_call", "agents.away", "sla_breaches_today"].forEach(
      function (name) {
        var value = pick(data, name);
        setFigure(name, value === null || value === undefined ? "–" : value);
      }
    );
    setFigure("service_level_today", share(data.service_level_today));
    var breaches = board.querySelector('[data-figure="sla_breaches_today"]');
    if (breaches) {
      breaches.classList.toggle("wb-bad", Boolean(data.sla_breaches_today));
    }
    var longest = board.querySelector('[data-figure="longest_wait"]');
    if (longest) {
      longest.setAttribute("data-since", data.oldest_waiting_since || "");
    }
    var updated = document.getElementById("wb-updated");
    if (updated && data.computed_at && texts.updated) {
      updated.textContent = texts.updated.replace("%(time)s", data.computed_at.slice(11, 19));
    }
    tick();
  }

  function cell(tag, text, className) {
    var node = document.createElement(tag);
    node.textContent = text;
    if (className) {
      node.className = className;
    }
    return node;
  }

  function showQueues(data) {
    var body = document.getElementById("wb-queue-rows");
    if (!body) {
      return;
    }
    var now = Date.now();
    body.innerHTML = "";
    (data.queues || []).forEach(function (queue) {
      var row = document.createElement("tr");
      var name = cell("th", queue.name || texts.default_queue || "");
      name.setAttribute("scope", "row");
      row.appendChild(name);
      row.appendChild(cell("td", String(queue.waiting), "number"));
      var since = cell("td", wait(queue.oldest_waiting_since, now), "number");
      since.setAttribute("data-since", queue.oldest_waiting_since || "");
      row.appendChild(since);
      body.appendChild(row);
    });
    if (!body.children.length) {
      var empty = document.createElement("tr");
      var only = cell("td", texts.no_queues || "", "muted");
      only.setAttribute("colspan", "3");
      empty.appendChild(only);
      body.appendChild(empty);
    }
  }

  function tick() {
    var now = Date.now();
    var longest = board.querySelector('[data-figure="longest_wait"]');
    if (longest) {
      longest.textContent = wait(longest.getAttribute("data-since"), now);
    }
    board.querySelectorAll("#wb-queue-rows td[data-since]").forEach(function (node) {
      node.textContent = wait(node.getAttribute("data-since"), now);
    });
  }

  window.setInterval(tick, 1000);
  tick();

  // --- full screen -----------------------------------------------------------------------------

  function toggleFullscreen() {
    if (document.fullscreenElement) {
      document.exitFullscreen();
    } else if (board.requestFullscreen) {
      board.requestFullscreen().catch(function () {});
    }
  }

  var button = document.getElementById("wb-fullscreen");
  if (button) {
    button.addEventListener("click", toggleFullscreen);
  }
  document.addEventListener("keydown", function (event) {
    var tag = event.target && event.target.tagName;
    if (event.key !== "f" || event.altKey || event.ctrlKey || event.metaKey ||
        tag === "INPUT" || tag === "SELECT" || tag === "TEXTAREA") {
      return;
    }
    toggleFullscreen();
    event.preventDefault();
  });

  // --- live ------------------------------------------------------------------------------------

  if (window.CareLive) {
    var state = document.getElementById("wb-live");
    var live = new window.CareLive({
      onState: function (name) {
        var words = {connected: texts.connected, reconnecting: texts.reconnecting, denied: texts.denied};
        if (state && words[name]) {
          state.textContent = words[name];
        }
      }
    });
    // The wallboard stream's log keeps only the newest board: subscribing (again) sends it.
    live.subscribe(config.wallboard, function (event) {
      if (event.type === "wallboard.snapshot") {
        showBoard(event.data);
      }
    }, {onReload: function () {}});
    live.subscribe(config.tenant, function (event) {
      if (event.type === "queue.stats") {
        showQueues(event.data);
      }
    }, {onReload: function () {}});
    window.careLive = live;
    window.addEventListener("pagehide", function () {
      live.close();
    });
  }
})(window, document);
