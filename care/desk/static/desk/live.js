/*
 * CareLive: the browser's client of the live feed at /ws/live/ (docs/realtime.md is the contract).
 *
 *   var live = new CareLive({onState: function (state, detail) { ... }});
 *   live.subscribe("ticket:42", function (event) { ... }, {onReload: function () { ... }});
 *   live.typing("ticket:42", true);
 *
 * It keeps the newest sequence seen per stream and, after a lost connection, reconnects (exponential
 * backoff with jitter, 0.5 s to 10 s) and resubscribes with `since`, so the server replays what was
 * missed or says `reload`. An event published to two subscribed streams (a ticket's and its tenant's)
 * arrives twice with one id: it is handed to the handler of the stream it arrived on first, and the
 * second copy is dropped, so streams whose events overlap need handlers that take either copy.
 * Heartbeats keep the agent's presence; they say `idle` after five minutes without keyboard or
 * mouse input, and the first input after that is reported at once.
 *
 * States passed to onState: "connecting" (first attempt), "connected" (welcome received),
 * "reconnecting" (detail: {delay} in ms), "denied" (closed 4401/4403: not logged in or not staff;
 * no retry), "closed" (close() was called).
 *
 * Plain script, no build step and no dependencies: the page includes it and uses window.CareLive.
 */
(function (window) {
  "use strict";

  var MIN_DELAY_MS = 500;
  var MAX_DELAY_MS = 10000;
  var IDLE_AFTER_MS = 5 * 60 * 1000;
  var DEFAULT_HEARTBEAT_SECONDS = 20;
  var SEEN_IDS_KEPT = 1000; // enough to recognise the second copy of any recent event
  var CLOSE_UNAUTHENTICATED = 4401;
  var CLOSE_FORBIDDEN = 4403;
  var INPUT_EVENTS = ["keydown", "mousedown", "mousemove", "wheel", "touchstart"];

  function defaultUrl(path) {
    var scheme = window.location.protocol === "https:" ? "wss:" : "ws:";
    return scheme + "//" + window.location.host + path;
  }

  function noop() {}

  function CareLive(options) {
    options = options || {};
    this.url = options.url || defaultUrl(options.path || "/ws/live/");
    this.onState = options.onState || noop;
    this.onWelcome = options.onWelcome || noop;
    this.onRefused = options.onRefused || function (message) {
      window.console.warn("Live stream refused:", message.stream, message.message);
    };
    this.onError = options.onError || function (message) {
      window.console.warn("Live feed error:", message.message);
    };
    this.state = "idle";
    this.welcome = null;
    this._streams = {}; // name -> {handler, onReload, onRefused, seq, subscribed}
    this._seenIds = {};
    this._seenOrder = [];
    this._socket = null;
    this._attempt = 0;
    this._reconnectTimer = null;
    this._heartbeatTimer = null;
    this._closedByUs = false;
    this._lastInput = Date.now();
    this._sentIdle = false;
    this._watchInput();
    if (options.connect !== false) {
      this.connect();
    }
  }

  CareLive.prototype.connect = function () {
    if (this._socket) {
      return;
    }
    this._closedByUs = false;
    window.clearTimeout(this._reconnectTimer);
    this._reconnectTimer = null;
    this._setState(this.welcome ? "reconnecting" : "connecting", {delay: 0});
    var socket = new window.WebSocket(this.url);
    var self = this;
    this._socket = socket;
    socket.onmessage = function (message) {
      if (self._socket === socket) {
        self._receive(message.data);
      }
    };
    socket.onclose = function (event) {
      if (self._socket === socket) {
        self._lost(event.code);
      }
    };
  };

  /* Close for good (leaving the page): no reconnect. */
  CareLive.prototype.close = function () {
    this._closedByUs = true;
    window.clearTimeout(this._reconnectTimer);
    this._stopHeartbeat();
    var socket = this._socket;
    this._socket = null;
    if (socket) {
      socket.close(1000);
    }
    this._setState("closed", {});
  };

  /*
   * Receive the events of `stream`. options.onReload(stream, reason) is called when the server says
   * too much was missed; the page must then re-read the stream's data (the default reloads the page).
   * options.onRefused(message) when the server refuses the stream.
   */
  CareLive.prototype.subscribe = function (stream, handler, options) {
    options = options || {};
    var previous = this._streams[stream];
    this._streams[stream] = {
      handler: handler,
      onReload: options.onReload || null,
      onRefused: options.onRefused || null,
      seq: previous ? previous.seq : null,
      subscribed: false
    };
    this._sendSubscribe(stream);
  };

  CareLive.prototype.unsubscribe = function (stream) {
    if (this._streams[stream]) {
      delete this._streams[stream];
      this._send({type: "unsubscribe", stream: stream});
    }
  };

  /* Whether the server confirmed the subscription on the current connection (events flow). */
  CareLive.prototype.isSubscribed = function (stream) {
    var entry = this._streams[stream];
    return Boolean(entry && entry.subscribed);
  };

  /* Tell the others on a ticket that I am (not) typing; the caller repeats `true` every few seconds. */
  CareLive.prototype.typing = function (stream, isTyping) {
    if (this._streams[stream]) {
      this._send({type: "typing", stream: stream, typing: Boolean(isTyping)});
    }
  };

  CareLive.prototype.isIdle = function () {
    return Date.now() - this._lastInput >= IDLE_AFTER_MS;
  };

  // --- internals --------------------------------------------------------------------------------

  CareLive.prototype._setState = function (state, detail) {
    if (this.state === state && state !== "reconnecting") {
      return;
    }
    this.state = state;
    try {
      this.onState(state, detail || {});
    } catch (error) {
      window.console.error(error);
    }
  };

  CareLive.prototype._send = function (message) {
    var socket = this._socket;
    if (socket && socket.readyState === window.WebSocket.OPEN && this.state === "connected") {
      socket.send(JSON.stringify(message));
      return true;
    }
    return false; // what matters is sent again after the next welcome (subscriptions)
  };

  CareLive.prototype._sendSubscribe = function (stream) {
    var entry = this._streams[stream];
    this._send({type: "subscribe", stream: stream, since: entry.seq});
  };

  CareLive.prototype._receive = function (raw) {
    var message;
    try {
      message = JSON.parse(raw);
    } catch (error) {
      window.console.warn("Live feed sent something that is not JSON", raw);
      return;
    }
    if (message.v !== undefined && message.id !== undefined && message.stream !== undefined && message.data) {
      this._event(message);
      return;
    }
    switch (message.type) {
      case "welcome":
        this._welcome(message);
        break;
      case "subscribed":
        this._subscribed(message);
        break;
      case "reload":
        this._reload(message);
        break;
      case "refused":
        this._refused(message);
        break;
      case "error":
        this.onError(message);
        break;
      case "pong":
        break;
      default:
        window.console.warn("Unknown live message", message);
    }
  };

  CareLive.prototype._welcome = function (message) {
    this.welcome = message;
    this._attempt = 0;
    this._setState("connected", {welcome: message});
    this._startHeartbeat((message.heartbeat_seconds || DEFAULT_HEARTBEAT_SECONDS) * 1000);
    this._sendHeartbeat();
    for (var stream in this._streams) {
      if (Object.prototype.hasOwnProperty.call(this._streams, stream)) {
        this._sendSubscribe(stream);
      }
    }
    this.onWelcome(message);
  };

  CareLive.prototype._subscribed = function (message) {
    var entry = this._streams[message.stream];
    if (!entry) {
      return;
    }
    entry.subscribed = true;
    if (typeof message.seq === "number" && (entry.seq === null || message.seq > entry.seq)) {
      entry.seq = message.seq;
    }
  };

  CareLive.prototype._reload = function (message) {
    var entry = this._streams[message.stream];
    if (!entry) {
      return;
    }
    entry.seq = null;
    if (!entry.onReload) {
      window.location.reload();
      return;
    }
    // Subscribe afresh before re-reading: whatever changes during the re-read then arrives as an
    // event, which the page recognises by id, instead of falling between the read and the feed.
    this._sendSubscribe(message.stream);
    try {
      entry.onReload(message.stream, message.reason);
    } catch (error) {
      window.console.error(error);
    }
  };

  CareLive.prototype._refused = function (message) {
    var entry = this._streams[message.stream];
    delete this._streams[message.stream]; // not resubscribed after a reconnect either
    var callback = (entry && entry.onRefused) || this.onRefused;
    callback(message);
  };

  CareLive.prototype._event = function (event) {
    var entry = this._streams[event.stream];
    if (!entry) {
      return; // unsubscribed meanwhile
    }
    if (typeof event.seq === "number") {
      if (entry.seq !== null && event.seq <= entry.seq) {
        return; // seen already
      }
      entry.seq = event.seq;
    }
    // After the sequence: the second copy of an event still moves its own stream's position.
    if (this._seen(event.id)) {
      return;
    }
    try {
      entry.handler(event);
    } catch (error) {
      window.console.error(error);
    }
  };

  /* Whether `id` was delivered before; remembers it. */
  CareLive.prototype._seen = function (id) {
    if (Object.prototype.hasOwnProperty.call(this._seenIds, id)) {
      return true;
    }
    this._seenIds[id] = true;
    this._seenOrder.push(id);
    if (this._seenOrder.length > SEEN_IDS_KEPT) {
      delete this._seenIds[this._seenOrder.shift()];
    }
    return false;
  };

  CareLive.prototype._lost = function (code) {
    this._socket = null;
    this._stopHeartbeat();
    for (var stream in this._streams) {
      if (Object.prototype.hasOwnProperty.call(this._streams, stream)) {
        this._streams[stream].subscribed = false;
      }
    }
    if (this._closedByUs) {
      return;
    }
    if (code === CLOSE_UNAUTHENTICATED || code === CLOSE_FORBIDDEN) {
      this._setState("denied", {code: code});
      return;
    }
    var ceiling = Math.min(MAX_DELAY_MS, MIN_DELAY_MS * Math.pow(2, this._attempt));
    // Jitter: after a server restart, clients spread their reconnects instead of all at once.
    var delay = Math.max(MIN_DELAY_MS, Math.round(ceiling / 2 + Math.random() * ceiling / 2));
    this._attempt += 1;
    this._setState("reconnecting", {delay: delay, code: code});
    var self = this;
    this._reconnectTimer = window.setTimeout(function () {
      self._reconnectTimer = null;
      self.connect();
    }, delay);
  };

  CareLive.prototype._startHeartbeat = function (interval) {
    this._stopHeartbeat();
    var self = this;
    this._heartbeatTimer = window.setInterval(function () {
      self._sendHeartbeat();
    }, interval);
  };

  CareLive.prototype._stopHeartbeat = function () {
    window.clearInterval(this._heartbeatTimer);
    this._heartbeatTimer = null;
  };

  CareLive.prototype._sendHeartbeat = function () {
    var idle = this.isIdle();
    if (this._send({type: "heartbeat", idle: idle})) {
      this._sentIdle = idle;
    }
  };

  CareLive.prototype._watchInput = function () {
    var self = this;
    var onInput = function () {
      self._lastInput = Date.now();
      if (self._sentIdle) {
        self._sendHeartbeat(); // back at the desk: online again now, not at the next beat
      }
    };
    for (var i = 0; i < INPUT_EVENTS.length; i += 1) {
      window.addEventListener(INPUT_EVENTS[i], onInput, {capture: true, passive: true});
    }
    // Back online (laptop woke, network returned): do not wait for the backoff timer.
    window.addEventListener("online", function () {
      if (!self._socket && !self._closedByUs && self.state === "reconnecting") {
        self._attempt = 0;
        self.connect();
      }
    });
  };

  window.CareLive = CareLive;
})(window);
