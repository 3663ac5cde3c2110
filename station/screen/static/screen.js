// Counter screen: fills the page from the station's view (JSON), live through server-sent events.
// Every word comes from the server (already translated); this file only places it.
"use strict";

(function () {
  const body = document.body;
  const $ = (id) => document.getElementById(id);
  const MAX_ITEMS = 60; // rows built before dropping the oldest that do not fit

  function text(id, value) {
    const el = $(id);
    if (el.textContent !== value) el.textContent = value;
  }

  let lastKey = null;
  let current = null;

  function row(item) {
    const li = document.createElement("li");
    const kg = document.createElement("span");
    kg.className = "kg";
    kg.textContent = item.weight;
    const cat = document.createElement("span");
    cat.className = "cat";
    cat.textContent = item.category;
    li.append(kg, cat);
    return li;
  }

  // The newest items that fit the list at this screen size; the others are counted above it
  // in words ("+6 earlier items"), so no row is ever cut or silently missing.
  function items(v) {
    const list = $("items");
    const shown = v.items.slice(-MAX_ITEMS);
    list.replaceChildren(...shown.map(row));
    const top = list.getBoundingClientRect().top;
    while (list.firstElementChild && list.firstElementChild.getBoundingClientRect().top < top - 0.5) {
      list.firstElementChild.remove();
    }
    const hidden = v.items.length - list.children.length;
    const words = hidden === 1 ? v.more.one : v.more.many;
    text("more", hidden > 0 ? words.replace("{n}", String(hidden)) : "");
  }

  // While the void button waits for its second tap, the hint names the item it would void.
  function hint() {
    const armed = document.querySelector("button.armed") !== null;
    text("hint", armed ? current.void_confirm : current.hint);
    $("hint").dataset.tone = armed ? "bad" : current.hint_tone;
  }

  function render(v) {
    current = v;
    text("beneficiary", v.beneficiary || "—");
    text("referrer", v.referrer);
    text("category", v.category || "—");
    $("category-field").dataset.state = v.category_state;
    text("container", v.container);
    text("operator", v.operator || "—");
    const w = $("weight");
    w.dataset.state = v.weight.state;
    w.dataset.waiting = v.waiting ? "1" : "0";
    text("weight-number", v.weight.number);
    text("weight-state", v.weight.words);
    text("count", v.count);
    text("total", v.total);

    const last = $("last");
    if (v.last) {
      last.dataset.kind = v.last.kind;
      text("last-text", v.last.text);
      if (lastKey !== null && v.last.key !== lastKey) {
        last.classList.remove("flash");
        void last.offsetWidth; // restart the animation
        last.classList.add("flash");
      }
      lastKey = v.last.key;
    } else {
      last.dataset.kind = "none";
      text("last-text", "");
    }
    hint();
    const sync = $("sync");
    sync.dataset.state = v.sync.state;
    text("sync", v.sync.words);
    text("warnings", v.warnings.join(" · "));
    items(v); // last: how many rows fit depends on the rest of the layout
  }

  window.addEventListener("resize", () => current && items(current));
  render(JSON.parse($("initial").textContent));

  const link = $("link");
  const events = new EventSource(body.dataset.events);
  events.addEventListener("view", (e) => {
    link.hidden = true;
    body.dataset.live = "1";
    render(JSON.parse(e.data));
  });
  // A page left open keeps its session (LAN mode): any request renews the cookie in time.
  setInterval(() => fetch("view.json", { credentials: "same-origin" }).catch(() => {}), 15 * 60 * 1000);
  events.addEventListener("error", () => {
    // the browser reconnects by itself; meanwhile say the screen may be stale
    link.textContent = body.dataset.lost;
    link.hidden = false;
    body.dataset.live = "0";
    if (events.readyState === EventSource.CLOSED) {
      // refused, not unreachable: a browser never retries that, so say what to do
      fetch("view.json", { credentials: "same-origin" })
        .then((reply) => {
          if (reply.status === 401) {
            link.textContent = body.dataset.expired;
            body.dataset.live = "expired";
          }
        })
        .catch(() => {});
    }
  });

  // Touch buttons: the server posts the same events as the physical button and ignores a
  // double tap; the button is also disabled for a moment so a shaky finger sends one tap.
  for (const button of document.querySelectorAll("button[data-action]")) {
    const label = button.textContent;
    let armed = 0;
    button.addEventListener("click", async () => {
      if (button.disabled) return;
      if (button.dataset.confirm && Date.now() - armed > 3000) {
        armed = Date.now();
        button.textContent = body.dataset.confirmVoid;
        button.classList.add("armed");
        hint();
        setTimeout(() => {
          if (Date.now() - armed >= 3000) {
            button.textContent = label;
            button.classList.remove("armed");
            hint();
          }
        }, 3100);
        return;
      }
      armed = 0;
      button.textContent = label;
      button.classList.remove("armed");
      hint();
      button.disabled = true;
      setTimeout(() => (button.disabled = false), 1200);
      try {
        await fetch(button.dataset.action, { method: "POST", credentials: "same-origin" });
      } catch (err) {
        link.textContent = body.dataset.lost;
        link.hidden = false;
      }
    });
  }
})();
