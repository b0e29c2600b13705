/*
 * The supervisor's team view and reassignment.
 *
 * - Live: subscribes (CareLive, live.js) to the tenant streams the page names; `agent.presence`
 *   updates the agent's presence cell in place, ticket events re-read the table region (at most
 *   every two seconds).
 * - Keyboard: j/k move between agents, r opens the focused agent's reassignment panel (never while
 *   typing in a field).
 * - Reassignment: an agent's link opens their open tickets in a panel below the table; the move form
 *   posts with fetch (JSON answer) and still works as a plain form post without this script. The same
 *   script enhances the stand-alone reassignment page (/desk/team/<id>/).
 * Plain script, no build step.
 */
(function (window, document) {
  "use strict";

  var REFRESH_EVENTS = {"ticket.assigned": true, "ticket.updated": true, "ticket.created": true};
  var REFRESH_DELAY_MS = 2000;
  var configNode = document.getElementById("team-live-config");
  var config = configNode ? JSON.parse(configNode.textContent) : null;
  var texts = (config && config.text) || {};

  function isTyping(target) {
    var tag = target && target.tagName;
    return tag === "INPUT" || tag === "TEXTAREA" || tag === "SELECT" || (target && target.isContentEditable);
  }

  function say(text) {
    var region = document.getElementById("team-live");
    if (region) {
      region.textContent = text;
    }
  }

  function clockTime(iso) {
    var when = new Date(iso);
    if (isNaN(when.getTime())) {
      return "";
    }
    try {
      return when.toLocaleTimeString(document.documentElement.lang || undefined, {hour: "2-digit", minute: "2-digit"});
    } catch (error) {
      return iso.slice(11, 16);
    }
  }

  function sinceText(iso) {
    return (texts.since || "%(time)s").replace("%(time)s", clockTime(iso));
  }

  // --- presence --------------------------------------------------------------------------------

  function showPresence(agentId, presence, since) {
    var row = document.querySelector('tr.sv-agent[data-agent-id="' + agentId + '"]');
    if (!row) {
      return null;
    }
    var badge = row.querySelector(".sv-presence");
    var time = row.querySelector(".sv-since");
    if (badge) {
      badge.className = "sv-presence sv-presence-" + presence;
      badge.setAttribute("data-presence", presence);
      badge.textContent = (texts.presence && texts.presence[presence]) || presence;
      void badge.offsetWidth; // restart the highlight
      badge.className += " is-changed";
    }
    if (time && since) {
      time.setAttribute("datetime", since);
      time.textContent = sinceText(since);
    }
    return row;
  }

  function onEvent(event) {
    if (event.type === "agent.presence") {
      var data = event.data || {};
      var agent = data.agent || {};
      if (showPresence(agent.id, data.presence, data.since) && texts.changed) {
        say(texts.changed.replace("%(name)s", agent.name || "").replace(
          "%(presence)s", (texts.presence && texts.presence[data.presence]) || data.presence));
      }
    } else if (REFRESH_EVENTS[event.type]) {
      scheduleRefresh();
    }
  }

  // --- re-reading a region of a page -----------------------------------------------------------

  function fetchRegion(url, id) {
    return window.fetch(url, {credentials: "same-origin", headers: {Accept: "text/html"}})
      .then(function (response) {
        return response.ok ? response.text() : null;
      })
      .then(function (html) {
        if (!html) {
          return null;
        }
        return new window.DOMParser().parseFromString(html, "text/html").getElementById(id);
      });
  }

  var refreshTimer = null;

  function refresh() {
    var active = document.activeElement;
    var row = active && active.closest ? active.closest("tr.sv-agent") : null;
    var focusedId = row ? row.getAttribute("data-agent-id") : null;
    fetchRegion(window.location.pathname + window.location.search, "team-region").then(function (fresh) {
      var region = document.getElementById("team-region");
      if (!fresh || !region) {
        return;
      }
      region.innerHTML = fresh.innerHTML;
      localiseTimes(region);
      if (focusedId) {
        var link = region.querySelector('tr.sv-agent[data-agent-id="' + focusedId + '"] .sv-agent-link');
        if (link) {
          link.focus();
        }
      }
    }).catch(function () {});
  }

  // At most one re-read per REFRESH_DELAY_MS, however busy the streams are (a timer that restarted
  // on every event would never fire on a busy floor).
  function scheduleRefresh() {
    if (refreshTimer !== null) {
      return;
    }
    refreshTimer = window.setTimeout(function () {
      refreshTimer = null;
      refresh();
    }, REFRESH_DELAY_MS);
  }

  function localiseTimes(root) {
    root.querySelectorAll("time.sv-since[datetime]").forEach(function (time) {
      time.textContent = sinceText(time.getAttribute("datetime"));
    });
  }

  // --- reassignment panel ----------------------------------------------------------------------

  function openPanel(url) {
    var panel = document.getElementById("reassign-panel");
    if (!panel) {
      window.location.href = url;
      return Promise.resolve();
    }
    return fetchRegion(url, "reassign-region").then(function (fresh) {
      if (!fresh) {
        window.location.href = url; // let the page say what went wrong
        return;
      }
      panel.innerHTML = "";
      panel.appendChild(document.importNode(fresh, true));
      panel.setAttribute("data-url", url);
      panel.hidden = false;
      var heading = panel.querySelector("#reassign-heading");
      if (heading) {
        heading.setAttribute("tabindex", "-1");
        heading.focus();
      }
    });
  }

  function showMessages(list) {
    var box = document.getElementById("reassign-messages");
    if (!box) {
      return;
    }
    box.innerHTML = "";
    list.forEach(function (entry) {
      var item = document.createElement("li");
      item.className = "sv-message sv-message-" + entry.kind;
      item.textContent = entry.text;
      box.appendChild(item);
    });
  }

  function submitMove(form) {
    var button = form.querySelector("button[type=submit]");
    var token = form.querySelector("input[name=csrfmiddlewaretoken]");
    if (button) {
      button.disabled = true;
    }
    var answer = null;
    return window.fetch(form.action, {
      method: "POST",
      credentials: "same-origin",
      headers: {Accept: "application/json", "X-CSRFToken": token ? token.value : ""},
      body: new window.FormData(form)
    }).then(function (response) {
      return response.json().catch(function () {
        return {error: response.statusText || String(response.status)};
      });
    }).then(function (body) {
      answer = body;
      var region = form.closest("#reassign-region");
      var panel = document.getElementById("reassign-panel");
      var url = (panel && !panel.hidden && panel.getAttribute("data-url")) || window.location.pathname;
      if (body.moved && body.moved.length) {
        // The moved tickets leave the list: re-read it, then say what happened.
        return fetchRegion(url, "reassign-region").then(function (fresh) {
          if (fresh && region) {
            region.replaceWith(document.importNode(fresh, true));
          }
          if (config) {
            scheduleRefresh();
          }
        });
      }
      return null;
    }).then(function () {
      var list = [];
      if (answer.message) {
        list.push({kind: "success", text: answer.message});
      }
      (answer.errors || (answer.error ? [answer.error] : [])).forEach(function (text) {
        list.push({kind: "error", text: text});
      });
      showMessages(list);
    }).catch(function () {
      form.submit(); // the network failed: fall back to a plain post
    }).then(function () {
      if (button) {
        button.disabled = false;
      }
    });
  }

  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (form && form.id === "reassign-form" && window.fetch && window.FormData) {
      event.preventDefault();
      submitMove(form);
    }
  });

  document.addEventListener("change", function (event) {
    var box = event.target;
    if (box && box.id === "reassign-all") {
      var form = box.closest("form");
      form.querySelectorAll("input[name=ticket]").forEach(function (pick) {
        pick.checked = box.checked;
      });
    }
  });

  document.addEventListener("click", function (event) {
    if (!config || event.defaultPrevented || event.button !== 0 || event.ctrlKey || event.metaKey || event.shiftKey) {
      return;
    }
    var link = event.target.closest ? event.target.closest("#team-region tr.sv-agent a") : null;
    if (link && link.pathname.indexOf("/desk/team/") === 0) {
      event.preventDefault();
      openPanel(link.getAttribute("href"));
    }
  });

  // --- keyboard --------------------------------------------------------------------------------

  function agentLinks() {
    return Array.prototype.slice.call(document.querySelectorAll("#team-region .sv-agent-link"));
  }

  document.addEventListener("keydown", function (event) {
    if (!config || event.altKey || event.ctrlKey || event.metaKey || isTyping(event.target)) {
      return;
    }
    var all = agentLinks();
    if (!all.length) {
      return;
    }
    var index = all.indexOf(document.activeElement);
    if (event.key === "j" || event.key === "k") {
      if (index === -1) {
        index = event.key === "j" ? 0 : all.length - 1;
      } else {
        index = Math.max(0, Math.min(all.length - 1, index + (event.key === "j" ? 1 : -1)));
      }
      all[index].focus();
      event.preventDefault();
    } else if (event.key === "r" && index !== -1) {
      openPanel(all[index].getAttribute("href"));
      event.preventDefault();
    }
  });

  // --- start -----------------------------------------------------------------------------------

  if (config) {
    localiseTimes(document);
  }
  if (config && config.streams && config.streams.length && window.CareLive) {
    var live = new window.CareLive({
      onState: function (state) {
        if (texts.states && texts.states[state]) {
          say(texts.states[state]);
        }
      }
    });
    config.streams.forEach(function (stream) {
      live.subscribe(stream, onEvent, {onReload: scheduleRefresh});
    });
    window.careLive = live;
    window.addEventListener("pagehide", function () {
      live.close();
    });
  }
})(window, document);
