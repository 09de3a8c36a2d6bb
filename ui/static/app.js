// dropmesh web UI script: live updates, confirmations and the log viewer.
// No dependencies. The pages work without it; it only keeps them current.
(function () {
  "use strict";

  var main = document.getElementById("main");
  var banner = null;
  var leaving = false;
  window.addEventListener("pagehide", function () { leaving = true; });
  window.addEventListener("pageshow", function (e) { if (e.persisted) { leaving = false; refresh(); } });

  // Show a short status at the bottom of the page ("" hides it).
  function status(text) {
    if (!banner) {
      banner = document.createElement("div");
      banner.className = "live-banner";
      banner.setAttribute("role", "status");
      document.body.appendChild(banner);
    }
    banner.textContent = text;
    banner.hidden = !text;
  }

  function liveDot(state) {
    var dot = document.getElementById("live-dot");
    if (dot) {
      dot.className = "live-dot " + state;
      dot.title = state === "on" ? "Live updates on" : "Live updates interrupted";
    }
  }

  // After a refused form the server shows the page at its own address.
  if (main && main.dataset.url && main.dataset.url !== location.pathname + location.search) {
    history.replaceState(null, "", main.dataset.url + location.hash);
  }

  // Confirm dangerous actions; remember forms the user is editing, which a
  // live refresh must leave alone; stop double submits.
  document.addEventListener("submit", function (e) {
    var form = e.target;
    if (form.dataset.confirm && !window.confirm(form.dataset.confirm)) {
      e.preventDefault();
      return;
    }
    form.dataset.dirty = "1";
    leaving = true; // the page is being replaced: no more live refreshes
    setTimeout(function () {
      form.querySelectorAll("button").forEach(function (b) { b.disabled = true; });
    }, 0);
  });
  document.addEventListener("input", function (e) {
    var form = e.target.closest && e.target.closest("form[data-keep]");
    if (form) form.dataset.dirty = "1";
  });
  // A picker that is a whole form (the admin page's node for the agent
  // log) goes at once; its button is there for pages without the script.
  document.addEventListener("change", function (e) {
    var el = e.target;
    if (el.matches && el.matches("select[data-autosubmit]") && el.form) el.form.requestSubmit();
  });

  // Swap a freshly rendered main block in, keeping dirty forms, open
  // <details>, focus and the scroll position.
  function swap(html) {
    var tpl = document.createElement("template");
    tpl.innerHTML = html;
    var next = tpl.content;
    var active = document.activeElement;
    var sel = null;
    if (active && "selectionStart" in active) {
      try { sel = [active.selectionStart, active.selectionEnd]; } catch (err) { sel = null; }
    }
    main.querySelectorAll("form[data-keep][id]").forEach(function (old) {
      if (old.dataset.dirty || old.contains(active)) {
        var repl = next.getElementById(old.id);
        if (repl) repl.replaceWith(old);
      }
    });
    main.querySelectorAll("details[id]").forEach(function (d) {
      var n = next.getElementById(d.id);
      if (n) n.open = d.open;
    });
    var y = window.scrollY;
    main.replaceChildren(next);
    window.scrollTo(0, y);
    if (active && active !== document.body && document.contains(active)) {
      active.focus({ preventScroll: true });
      if (sel) { try { active.setSelectionRange(sel[0], sel[1]); } catch (err) { /* not a text field */ } }
    }
  }

  // Fetch the main block again; one fetch at a time, and one more if a
  // change came in meanwhile.
  var fetching = false, again = false;
  function refresh() {
    if (!main || leaving) return;
    if (fetching) { again = true; return; }
    fetching = true;
    var url = main.dataset.url || (location.pathname + location.search);
    url += (url.indexOf("?") < 0 ? "?" : "&") + "fragment=main";
    fetch(url, { headers: { "X-Requested-With": "dropmesh" }, credentials: "same-origin" })
      .then(function (res) {
        if (leaving) return;
        if (res.headers.get("X-Dropmesh-Reload")) { location.reload(); return; }
        if (res.status === 401) {
          location.href = "/login?next=" + encodeURIComponent(location.pathname + location.search);
          return;
        }
        return res.text().then(function (body) {
          if (res.ok) {
            swap(body);
            status("");
            if (res.headers.get("X-Dropmesh-Index")) main.dataset.index = res.headers.get("X-Dropmesh-Index");
          }
          else status(body || ("Refresh failed (" + res.status + ")"));
        });
      })
      .catch(function () { status("Connection lost; retrying…"); })
      .then(function () {
        fetching = false;
        if (again) { again = false; refresh(); }
      });
  }

  // Server-sent events: "change" whenever the state changes.
  var eventsURL = document.body.dataset.events;
  if (main && eventsURL && window.EventSource) {
    var down = false;
    var connect = function () {
      var es = new EventSource(eventsURL);
      es.addEventListener("hello", function (e) {
        // A change between drawing the page and connecting: catch up.
        if (down || e.data !== main.dataset.index) refresh();
        down = false;
        liveDot("on");
        status("");
      });
      es.addEventListener("change", function (e) { if (e.data !== main.dataset.index) refresh(); });
      es.addEventListener("leader", function () { es.close(); location.reload(); });
      es.onerror = function () {
        down = true;
        liveDot("off");
        if (es.readyState === EventSource.CLOSED) {
          // Refused (signed out, no leader): find out why, then try again.
          refresh();
          setTimeout(connect, 3000);
        }
      };
    };
    connect();
  }

  // Pages with figures that do not come from the state refresh on a timer.
  var poll = parseInt(document.body.dataset.poll || "0", 10);
  if (main && poll > 0) {
    setInterval(function () { if (!document.hidden) refresh(); }, poll);
  }

  // The log viewer: one stream at a time, at most data-max-lines lines in
  // the page (the oldest go), paused lines wait in a bounded buffer.
  var logs = document.getElementById("logs");
  if (logs) {
    var lines = document.getElementById("logs-lines");
    var nameEl = document.getElementById("logs-name");
    var statusEl = document.getElementById("logs-status");
    var followEl = document.getElementById("logs-follow");
    var pauseBtn = document.getElementById("logs-pause");
    var filterEl = document.getElementById("logs-filter");
    var max = parseInt(logs.dataset.maxLines, 10) || 1000;
    var stream = null, paused = false, pending = [], scheduled = false, current = "", total = 0;

    var setStatus = function (t) { statusEl.textContent = t; };
    var matches = function (text) {
      var f = filterEl.value.toLowerCase();
      return !f || text.toLowerCase().indexOf(f) >= 0;
    };
    var flush = function () {
      scheduled = false;
      if (paused || pending.length === 0) return;
      var frag = document.createDocumentFragment();
      pending.forEach(function (text) {
        var d = document.createElement("div");
        d.textContent = text;
        if (/\b(error|fatal|panic)\b/i.test(text)) d.className = "ll-err";
        else if (/\bwarn(ing)?\b/i.test(text)) d.className = "ll-warn";
        d.hidden = !matches(text);
        frag.appendChild(d);
      });
      pending = [];
      var atBottom = lines.scrollTop + lines.clientHeight >= lines.scrollHeight - 24;
      lines.appendChild(frag);
      var extra = lines.childElementCount - max;
      while (extra-- > 0) lines.firstElementChild.remove();
      if (atBottom) lines.scrollTop = lines.scrollHeight;
    };
    var schedule = function () {
      if (!scheduled && !paused) { scheduled = true; requestAnimationFrame(flush); }
    };
    var stop = function () { if (stream) { stream.close(); stream = null; } };
    var open = function (name) {
      stop();
      current = name;
      logs.hidden = false;
      nameEl.textContent = name;
      lines.textContent = "";
      pending = [];
      total = 0;
      var url = logs.dataset.logsUrl + "?container=" + encodeURIComponent(name) + (followEl.checked ? "&follow=1" : "");
      var es = new EventSource(url);
      stream = es;
      setStatus(followEl.checked ? "Following the log…" : "Loading the log…");
      es.onmessage = function (e) {
        var batch = e.data.split("\n");
        total += batch.length;
        logs.dataset.received = String(total);
        pending = pending.concat(batch);
        if (pending.length > max) pending = pending.slice(pending.length - max);
        schedule();
        if (!paused) setStatus((followEl.checked ? "Following" : "Showing") + " · " + total + " lines received, at most " + max + " kept");
      };
      es.addEventListener("end", function () { setStatus("End of the log (" + total + " lines)."); stop(); });
      es.addEventListener("failure", function (e) { setStatus(e.data); stop(); });
      es.onerror = function () {
        if (stream !== es) return;
        stop();
        setStatus("The log stream was interrupted. Choose the container again to reopen it.");
      };
      logs.scrollIntoView({ behavior: "smooth", block: "start" });
    };
    document.addEventListener("click", function (e) {
      var b = e.target.closest && e.target.closest("[data-logs]");
      if (b) { e.preventDefault(); open(b.dataset.logs); }
    });
    followEl.addEventListener("change", function () { if (current) open(current); });
    pauseBtn.addEventListener("click", function () {
      paused = !paused;
      pauseBtn.textContent = paused ? "Resume" : "Pause";
      pauseBtn.setAttribute("aria-pressed", paused ? "true" : "false");
      if (paused) setStatus("Paused: new lines wait (at most " + max + ").");
      else schedule();
    });
    filterEl.addEventListener("input", function () {
      for (var el = lines.firstElementChild; el; el = el.nextElementSibling) el.hidden = !matches(el.textContent);
    });
    document.getElementById("logs-clear").addEventListener("click", function () { lines.textContent = ""; });
    document.getElementById("logs-close").addEventListener("click", function () {
      stop();
      current = "";
      logs.hidden = true;
    });
    window.addEventListener("pagehide", stop);
  }
})();
