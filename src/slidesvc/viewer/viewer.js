/* slidesvc viewer: turns the document of slides into a slideshow.
 *
 * The page is built by slidesvc's render_html: <main class="deck"> holds one
 * <section class="slide"> per slide, each of fixed size (data-width/height).
 * This script shows one slide at a time scaled to the window, steps through
 * fragments, keeps the URL (#N) in step, and speaks three protocols: the
 * opener/popup postMessage pair (presenter window, works from file://),
 * BroadcastChannel (same-origin tabs) and the server's live WebSocket.
 * No framework, no build step; the page's CSP lets only this script run. */
(function () {
  "use strict";

  const root = document.documentElement;
  const deck = document.querySelector("main.deck");
  if (!deck) return;
  root.classList.remove("no-js");

  const slides = Array.from(deck.querySelectorAll(":scope > section.slide"));
  const count = slides.length;
  if (!count) return;
  const W = Number(deck.dataset.width) || 1280;
  const H = Number(deck.dataset.height) || 720;
  // Fragments in document order; nested lists count, as in the PDF.
  const FRAGMENTS = "ul.fragments > li, ol.fragments > li";
  const frags = slides.map((s) => Array.from(s.querySelectorAll(FRAGMENTS)));
  const hasNotes = deck.querySelector(".slide > .notes") !== null;
  const params = new URLSearchParams(location.search);
  const POPUP_NAME = "slidesvc-presenter";

  if (window.name === POPUP_NAME && hasNotes) root.dataset.mode = "presenter";
  const mode = root.dataset.mode || "deck";
  const follow = mode === "embed" && params.get("follow") === "1";
  if (mode === "embed" && params.get("controls") === "0") root.classList.add("no-controls");

  let cur = -1; // index of the slide shown
  let step = 0; // fragments revealed on it
  let peer = null; // the presenter popup, or the window that opened us
  let socket = null;

  // Images used several times are stored once, as a CSS variable that CSS
  // `content` draws; where a browser cannot do that, copy it into src.
  for (const img of document.querySelectorAll("img[data-im]")) {
    if (!getComputedStyle(img).content.startsWith("url(")) {
      const value = getComputedStyle(root).getPropertyValue("--im-" + img.dataset.im).trim();
      const m = /^url\("?(data:[^")]*)"?\)$/.exec(value);
      if (m) img.src = m[1];
    }
  }

  // ---- chrome the script adds (the no-JS document does not need it) ----
  function el(tag, cls, text) {
    const node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text) node.textContent = text;
    return node;
  }
  const live = el("div", "sr-only");
  live.setAttribute("aria-live", "polite");
  live.setAttribute("role", "status");
  const progress = el("div", "progress");
  const bar = progress.appendChild(el("span"));
  const controls = el("nav", "controls");
  controls.setAttribute("aria-label", "Slide navigation");
  const prevBtn = controls.appendChild(el("button", "prev", "\u2039"));
  const nextBtn = controls.appendChild(el("button", "next", "\u203a"));
  prevBtn.type = nextBtn.type = "button";
  prevBtn.setAttribute("aria-label", "Previous slide");
  nextBtn.setAttribute("aria-label", "Next slide");
  let fullLink = null;
  if (mode === "embed") {
    fullLink = controls.appendChild(el("a", "open-full", "\u2197"));
    fullLink.target = "_blank";
    fullLink.rel = "noopener";
    fullLink.title = "Open the full deck";
    fullLink.setAttribute("aria-label", fullLink.title);
  }
  document.body.append(live, progress, controls, el("div", "blank-screen"));

  // ---- presenter view: current slide (the deck itself), next slide, notes, clock ----
  const pv = mode === "presenter" ? buildPresenter() : null;

  function buildPresenter() {
    const box = el("div", "pv");
    const barEl = box.appendChild(el("div", "pv-bar"));
    const clock = barEl.appendChild(el("span", "pv-clock"));
    const timer = barEl.appendChild(el("span", "pv-timer", "0:00"));
    const pause = barEl.appendChild(el("button", "pv-pause", "Pause"));
    const reset = barEl.appendChild(el("button", "pv-reset", "Reset"));
    const counter = barEl.appendChild(el("span", "pv-count"));
    const next = box.appendChild(el("div", "pv-next"));
    next.appendChild(el("p", "pv-label", "Next"));
    const stage = next.appendChild(el("div", "pv-stage"));
    const notes = box.appendChild(el("div", "pv-notes"));
    notes.setAttribute("aria-label", "Speaker notes");
    document.body.append(box);

    let started = Date.now();
    let pausedAt = 0;
    const pad = (n) => String(n).padStart(2, "0");
    function tick() {
      const now = new Date();
      clock.textContent = pad(now.getHours()) + ":" + pad(now.getMinutes());
      const secs = Math.floor(((pausedAt || Date.now()) - started) / 1000);
      const h = Math.floor(secs / 3600);
      const m = Math.floor(secs / 60) % 60;
      timer.textContent = (h ? h + ":" + pad(m) : m) + ":" + pad(secs % 60);
    }
    pause.addEventListener("click", () => {
      if (pausedAt) {
        started += Date.now() - pausedAt;
        pausedAt = 0;
      } else {
        pausedAt = Date.now();
      }
      pause.textContent = pausedAt ? "Resume" : "Pause";
      timer.classList.toggle("paused", !!pausedAt);
      tick();
    });
    reset.addEventListener("click", () => {
      started = Date.now();
      if (pausedAt) pausedAt = started;
      tick();
    });
    tick();
    setInterval(tick, 1000);
    return { stage, notes, counter };
  }

  function updatePresenter() {
    pv.counter.textContent = cur + 1 + " / " + count;
    const aside = slides[cur].querySelector(":scope > .notes");
    pv.notes.replaceChildren(...(aside ? Array.from(aside.cloneNode(true).childNodes) : []));
    const nextSlide = slides[cur + 1];
    if (nextSlide) {
      const copy = nextSlide.cloneNode(true);
      copy.removeAttribute("id");
      copy.classList.add("current");
      pv.stage.replaceChildren(copy);
    } else {
      pv.stage.replaceChildren(el("p", "pv-end", "End of the deck"));
    }
  }

  // ---- scaling: the fixed-size slide fits its stage, aspect ratio kept ----
  function fit(stage) {
    const scale = Math.min(stage.clientWidth / W, stage.clientHeight / H);
    stage.style.setProperty("--scale", String(scale > 0 ? scale : 1));
  }
  function layout() {
    fit(deck);
    if (pv) fit(pv.stage);
    if (root.classList.contains("overview")) {
      const columns = Math.max(1, Math.min(5, Math.floor(deck.clientWidth / 260)));
      const thumb = (deck.clientWidth - 32 - 16 * (columns - 1) - 1) / columns / W;
      deck.style.setProperty("--thumb", String(thumb));
    }
  }
  window.addEventListener("resize", layout);

  // ---- navigation ----
  function show(index, revealed, how) {
    index = Math.max(0, Math.min(count - 1, index));
    revealed = Math.max(0, Math.min(frags[index].length, revealed));
    const moved = index !== cur;
    if (!moved && revealed === step) return;
    if (moved) {
      if (cur >= 0) slides[cur].classList.remove("current");
      slides[index].classList.add("current");
    }
    cur = index;
    step = revealed;
    frags[cur].forEach((li, j) => li.classList.toggle("future", j >= step));
    bar.style.width = ((cur + 1) / count) * 100 + "%";
    prevBtn.disabled = cur === 0 && step === 0;
    nextBtn.disabled = cur === count - 1 && step === frags[cur].length;
    if (fullLink) fullLink.href = "./#" + (cur + 1);
    if (moved) {
      const title = slides[cur].dataset.title;
      live.textContent = "Slide " + (cur + 1) + " of " + count + (title ? ": " + title : "");
      updateUrl(how);
      if (pv) updatePresenter();
      if (root.classList.contains("overview")) scrollToCurrent();
    }
    // A move that came from another window is not echoed back to windows,
    // but the presenter reports every move to the server's followers.
    if (how !== "remote") tellWindows();
    tellServer();
  }

  function updateUrl(how) {
    const hash = "#" + (cur + 1);
    if (location.hash === hash || how === "hash" || how === "start") return;
    // Only the full deck adds history entries: in an iframe they would be the
    // host page's back button, and remote moves are not the reader's own.
    if (mode === "deck" && how === "user") history.pushState(null, "", hash);
    else history.replaceState(null, "", hash);
  }

  function next() {
    if (step < frags[cur].length) show(cur, step + 1, "user");
    else if (cur < count - 1) show(cur + 1, 0, "user");
  }
  function prev() {
    if (step > 0) show(cur, step - 1, "user");
    else if (cur > 0) show(cur - 1, Infinity, "user"); // going back shows a slide fully revealed
  }

  function hashSlide() {
    const m = /^#(\d+)$/.exec(location.hash);
    return m ? Number(m[1]) : null;
  }
  function onHash() {
    const n = hashSlide();
    if (n === null || n - 1 === cur) return;
    show(n - 1, n - 1 < cur ? Infinity : 0, "hash");
  }
  window.addEventListener("hashchange", onHash);
  window.addEventListener("popstate", onHash);

  // ---- overview grid, blank screen, fullscreen ----
  function scrollToCurrent() {
    // Not scrollIntoView(): inside an iframe it would scroll the host page too.
    deck.scrollTop = slides[cur].offsetTop - 16;
  }
  function toggleOverview(on) {
    root.classList.toggle("overview", on);
    layout();
    if (on) scrollToCurrent();
  }
  function toggleFullscreen() {
    if (document.fullscreenElement) document.exitFullscreen();
    else if (root.requestFullscreen) root.requestFullscreen().catch(() => {});
  }

  // ---- presenter window: opener and popup talk by postMessage (works on file://) ----
  function openPresenter() {
    if (!hasNotes || mode !== "deck") return;
    if (peer && !peer.closed) {
      peer.focus(); // a window we opened ourselves, never the host page
      return;
    }
    const url = location.href.split("#")[0] + "#" + (cur + 1);
    peer = window.open(url, POPUP_NAME, "popup,width=1200,height=720");
  }
  if (window.name === POPUP_NAME && window.opener) {
    peer = window.opener;
    peer.postMessage({ slidesvc: "hello", from: mode }, "*");
  }
  // Same-origin tabs of this deck version (a served deck and its /presenter).
  const channelName = "slidesvc:" + (deck.dataset.version || document.title);
  const channel = "BroadcastChannel" in window ? new BroadcastChannel(channelName) : null;

  function position() {
    return { slidesvc: "position", slide: cur + 1, fragment: step, from: mode };
  }
  function tellWindows() {
    const msg = position();
    // file:// pages have an opaque origin, so "*" is the only target that
    // works; the message is a slide number, nothing secret.
    if (peer && !peer.closed) peer.postMessage(msg, "*");
    if (channel) channel.postMessage(msg);
  }
  function tellServer() {
    if (socket && socket.readyState === 1 && mode === "presenter") {
      socket.send(JSON.stringify({ slide: cur + 1, fragment: step }));
    }
  }
  function applyRemote(data) {
    if (!data || typeof data.slide !== "number") return;
    const fragment = typeof data.fragment === "number" ? data.fragment : 0;
    show(data.slide - 1, fragment, "remote");
  }
  window.addEventListener("message", (e) => {
    if (!e.data || typeof e.data !== "object" || !e.source || e.source === window) return;
    // After a reload the audience window has forgotten its popup; the popup
    // still knows its opener, so its next message re-pairs them.
    if (!peer && mode === "deck" && e.data.from === "presenter") peer = e.source;
    if (e.source !== peer) return;
    if (e.data.slidesvc === "hello") tellWindows();
    else if (e.data.slidesvc === "position") applyRemote(e.data);
  });
  if (channel) {
    channel.onmessage = (e) => {
      // Other tabs of the same deck follow a presenter, not each other.
      const d = e.data;
      if (!d || d.slidesvc !== "position" || (d.from !== "presenter" && mode !== "presenter")) return;
      if (mode !== "embed" || follow) applyRemote(d);
    };
  }

  // ---- live channel (only when the server announced one) ----
  const liveMeta = document.querySelector('meta[name="slidesvc:live"]');
  if (liveMeta) connect(1000);

  function connect(delay) {
    const url = new URL(liveMeta.content, location.href);
    url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
    let ws;
    try {
      ws = new WebSocket(url.href);
    } catch (err) {
      return;
    }
    socket = ws;
    ws.onopen = () => {
      delay = 1000;
      tellServer();
    };
    ws.onmessage = (e) => {
      let msg;
      try {
        msg = JSON.parse(e.data);
      } catch (err) {
        return;
      }
      if (msg.type === "position" && (mode === "deck" || follow)) applyRemote(msg);
      else if (msg.type === "reload") location.reload(); // the URL carries #N
      else if (msg.type === "error") showError(String(msg.message));
    };
    ws.onclose = () => {
      if (socket === ws) socket = null;
      setTimeout(() => connect(Math.min(delay * 2, 30000)), delay);
    };
  }
  function showError(message) {
    let box = document.querySelector(".live-error");
    if (!box) {
      box = document.body.appendChild(el("pre", "live-error"));
      box.setAttribute("role", "alert");
    }
    box.textContent = message;
  }

  // ---- input: keys, clicks, touch, wheel ----
  document.addEventListener("keydown", (e) => {
    if (e.ctrlKey || e.metaKey || e.altKey || e.defaultPrevented) return;
    if (e.target.closest && e.target.closest("input, textarea, select, [contenteditable]")) return;
    const overview = root.classList.contains("overview");
    let handled = true;
    switch (e.key) {
      case "ArrowRight": case "ArrowDown": case "PageDown":
        if (overview) show(cur + 1, 0, "user"); else next();
        break;
      case "ArrowLeft": case "ArrowUp": case "PageUp":
        if (overview) show(cur - 1, 0, "user"); else prev();
        break;
      case " ":
        if (e.shiftKey) prev(); else next();
        break;
      case "Home": show(0, 0, "user"); break;
      case "End": show(count - 1, Infinity, "user"); break;
      case "o": case "O": toggleOverview(!overview); break;
      case "Escape": case "Enter":
        if (overview) toggleOverview(false); else handled = false;
        break;
      case "f": case "F": toggleFullscreen(); break;
      case "b": case "B": case ".": root.classList.toggle("blanked"); break;
      case "p": case "P":
        if (hasNotes && mode === "deck") openPresenter(); else handled = false;
        break;
      default: handled = false;
    }
    if (handled) e.preventDefault();
  });

  prevBtn.addEventListener("click", prev);
  nextBtn.addEventListener("click", next);
  deck.addEventListener("click", (e) => {
    const interactive = "a, button, input, textarea, select, label, summary, video, audio, [contenteditable]";
    if (e.target.closest(interactive)) return;
    if (root.classList.contains("overview")) {
      const slide = e.target.closest("section.slide");
      if (slide) show(slides.indexOf(slide), 0, "user");
      toggleOverview(false);
      return;
    }
    if (String(window.getSelection())) return; // the reader is selecting text
    if (e.clientX < deck.getBoundingClientRect().left + deck.clientWidth / 4) prev();
    else next();
  });

  let touch = null;
  deck.addEventListener("touchstart", (e) => {
    touch = e.touches.length === 1 ? { x: e.touches[0].clientX, y: e.touches[0].clientY } : null;
  }, { passive: true });
  deck.addEventListener("touchend", (e) => {
    if (!touch || root.classList.contains("overview")) return;
    const dx = e.changedTouches[0].clientX - touch.x;
    const dy = e.changedTouches[0].clientY - touch.y;
    touch = null;
    if (Math.abs(dx) > 50 && Math.abs(dx) > 1.5 * Math.abs(dy)) (dx < 0 ? next : prev)();
  }, { passive: true });

  // A trackpad flick sends dozens of wheel events: one step per gesture,
  // and the gesture ends after a quiet pause.
  let wheelQuietUntil = 0;
  if (mode !== "embed") {
    deck.addEventListener("wheel", (e) => {
      if (e.ctrlKey || root.classList.contains("overview")) return;
      const now = Date.now();
      const busy = now < wheelQuietUntil;
      wheelQuietUntil = now + 300;
      if (busy || Math.abs(e.deltaY) < 4) return;
      if (e.deltaY > 0) next(); else prev();
    }, { passive: true });
  }

  // ---- start: #N, else ?slide=N in the embed view, else slide 1 ----
  function startSlide() {
    const n = hashSlide();
    if (n !== null) return n;
    const asked = params.get("slide");
    if (mode === "embed" && asked !== null && /^\d+$/.test(asked)) return Number(asked);
    return 1;
  }
  layout();
  const first = startSlide() - 1;
  show(first, 0, "start");
  // A hash past the end is corrected in place.
  if (hashSlide() !== null && hashSlide() !== cur + 1) history.replaceState(null, "", "#" + (cur + 1));
})();
