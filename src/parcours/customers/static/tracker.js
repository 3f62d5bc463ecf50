/*
 * Parcours web tracker (served at /v1/parcours.js). First-party, no dependency.
 *
 *   <script async src="https://YOUR-PARCOURS/v1/parcours.js" data-write-key="pk_…"></script>
 *
 * Keeps an anonymous id in a first-party cookie (prc_aid), sends a page view on load,
 * and exposes window.parcours.track(event, properties), identify(userId, traits),
 * page(name, properties), reset() and flush(). Events are batched to /v1/batch with
 * fetch, and with navigator.sendBeacon when the page is hidden or left.
 * Calls made before the script loads are queued by the snippet in docs/tracking.md.
 */
(function (window, document) {
  "use strict";

  var VERSION = "1.0.0";
  var COOKIE = "prc_aid";
  var USER_KEY = "prc_uid";
  var ONE_YEAR_S = 31536000;
  var BATCH_SIZE = 20; // events that trigger a send at once
  var MAX_PER_REQUEST = 100; // far below the 500 KB batch limit
  var MAX_BUFFER = 500; // events kept while the server cannot be reached
  var FLUSH_MS = 1000;

  var waiting = window.parcours;
  if (waiting && waiting.loaded) {
    return;
  }

  var script = document.currentScript || findScript();
  var settings = {
    writeKey: attribute("data-write-key"),
    host: (attribute("data-host") || scriptOrigin()).replace(/\/+$/, ""),
    channel: attribute("data-channel") || "web",
    storeId: attribute("data-store-id"),
    cookieDomain: attribute("data-cookie-domain"),
    pageView: attribute("data-page-view") !== "off"
  };
  var buffer = [];
  var timer = null;
  var inflight = []; // sends not yet answered, so that flush() can wait for them

  function findScript() {
    var scripts = document.getElementsByTagName("script");
    for (var i = scripts.length - 1; i >= 0; i--) {
      if (/\/v1\/parcours\.js(\?|$)/.test(scripts[i].src)) {
        return scripts[i];
      }
    }
    return null;
  }

  function attribute(name) {
    return script ? script.getAttribute(name) : null;
  }

  function scriptOrigin() {
    try {
      return new URL(script.src).origin;
    } catch (e) {
      return window.location.origin;
    }
  }

  function newId() {
    if (window.crypto && window.crypto.randomUUID) {
      return window.crypto.randomUUID();
    }
    var bytes = new Uint8Array(16);
    window.crypto.getRandomValues(bytes);
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    var hex = Array.prototype.map.call(bytes, function (b) {
      return (b + 0x100).toString(16).slice(1);
    }).join("");
    return hex.slice(0, 8) + "-" + hex.slice(8, 12) + "-" + hex.slice(12, 16) + "-" +
      hex.slice(16, 20) + "-" + hex.slice(20);
  }

  function readCookie(name) {
    var parts = document.cookie ? document.cookie.split("; ") : [];
    for (var i = 0; i < parts.length; i++) {
      var eq = parts[i].indexOf("=");
      if (parts[i].slice(0, eq) === name) {
        return decodeURIComponent(parts[i].slice(eq + 1));
      }
    }
    return null;
  }

  function writeCookie(name, value, maxAge) {
    var cookie = name + "=" + encodeURIComponent(value) + "; Max-Age=" + maxAge +
      "; Path=/; SameSite=Lax";
    if (settings.cookieDomain) {
      cookie += "; Domain=" + settings.cookieDomain;
    }
    if (window.location.protocol === "https:") {
      cookie += "; Secure";
    }
    document.cookie = cookie;
  }

  function anonymousId() {
    var id = readCookie(COOKIE);
    if (!id) {
      id = newId();
    }
    writeCookie(COOKIE, id, ONE_YEAR_S); // each visit extends it by a year
    return id;
  }

  function storedUserId() {
    try {
      return window.localStorage.getItem(USER_KEY);
    } catch (e) {
      return null;
    }
  }

  function storeUserId(value) {
    try {
      if (value) {
        window.localStorage.setItem(USER_KEY, value);
      } else {
        window.localStorage.removeItem(USER_KEY);
      }
    } catch (e) {
      /* storage refused (private mode): the user id lasts for this page only */
    }
  }

  var state = { anonymousId: anonymousId(), userId: storedUserId() };

  function context() {
    var location = window.location;
    var ctx = {
      channel: settings.channel,
      library: { name: "parcours.js", version: VERSION },
      page: {
        path: location.pathname,
        referrer: document.referrer,
        search: location.search,
        title: document.title,
        url: location.href
      },
      userAgent: window.navigator.userAgent,
      locale: window.navigator.language
    };
    if (settings.storeId) {
      ctx.store_id = settings.storeId;
    }
    return ctx;
  }

  function enqueue(message) {
    message.messageId = newId();
    message.anonymousId = state.anonymousId;
    if (state.userId) {
      message.userId = state.userId;
    }
    message.timestamp = new Date().toISOString();
    message.context = context();
    buffer.push(message);
    if (buffer.length >= BATCH_SIZE) {
      flush();
    } else if (timer === null) {
      timer = window.setTimeout(flush, FLUSH_MS);
    }
  }

  function body(events) {
    return JSON.stringify({
      batch: events,
      sentAt: new Date().toISOString(),
      writeKey: settings.writeKey
    });
  }

  function keepForLater(events) {
    buffer = events.concat(buffer).slice(-MAX_BUFFER);
    if (timer === null) {
      timer = window.setTimeout(flush, FLUSH_MS * 5);
    }
  }

  function send(events) {
    var sent = post(events).then(function (answer) {
      inflight.splice(inflight.indexOf(sent), 1);
      return answer;
    });
    inflight.push(sent);
    return sent;
  }

  function post(events) {
    // text/plain keeps the request "simple": no CORS preflight, and beacons accept it.
    return window.fetch(settings.host + "/v1/batch", {
      method: "POST",
      body: body(events),
      headers: { "Content-Type": "text/plain" },
      credentials: "omit",
      keepalive: true
    }).then(function (response) {
      if (response.status >= 500 || response.status === 429) {
        keepForLater(events); // the same messageIds make the retry safe
      }
      return response.json().catch(function () { return null; });
    }, function () {
      keepForLater(events);
      return null;
    });
  }

  function flush(useBeacon) {
    if (timer !== null) {
      window.clearTimeout(timer);
      timer = null;
    }
    var earlier = inflight.slice();
    var sends = [];
    while (buffer.length) {
      var events = buffer.splice(0, MAX_PER_REQUEST);
      if (useBeacon === true && window.navigator.sendBeacon) {
        var blob = new Blob([body(events)], { type: "text/plain" });
        if (window.navigator.sendBeacon(settings.host + "/v1/batch", blob)) {
          continue;
        }
      }
      sends.push(send(events));
    }
    // Resolves once everything sent so far is answered, with this flush's answers.
    return Promise.all(earlier.concat(sends)).then(function (answers) {
      return answers.slice(earlier.length);
    });
  }

  var api = {
    loaded: true,
    version: VERSION,
    track: function (event, properties) {
      enqueue({ type: "track", event: String(event), properties: properties || {} });
    },
    page: function (name, properties) {
      var message = { type: "page", properties: properties || {} };
      if (name) {
        message.name = String(name);
      }
      enqueue(message);
    },
    identify: function (userId, traits) {
      if (userId) {
        state.userId = String(userId);
        storeUserId(state.userId);
      }
      enqueue({ type: "identify", traits: traits || {} });
    },
    reset: function () {
      // On log-out: forget the user and start a new anonymous visitor.
      state.userId = null;
      storeUserId(null);
      writeCookie(COOKIE, "", 0);
      state.anonymousId = anonymousId();
    },
    flush: function () {
      return flush(false);
    },
    anonymousId: function () {
      return state.anonymousId;
    },
    userId: function () {
      return state.userId;
    }
  };

  function leaving() {
    if (document.visibilityState === "hidden") {
      flush(true);
    }
  }

  document.addEventListener("visibilitychange", leaving);
  window.addEventListener("pagehide", function () { flush(true); });

  window.parcours = api;
  if (settings.pageView) {
    api.page();
  }
  if (waiting && waiting.length) {
    for (var i = 0; i < waiting.length; i++) {
      var call = waiting[i];
      if (call && typeof api[call[0]] === "function") {
        api[call[0]].apply(api, call.slice(1));
      }
    }
  }
})(window, document);
