// Counter screen: fills the page from the station's view (JSON), live through server-sent events.
// Every word comes from the server (already translated); this file only places it.
"use strict";

(function () {
  const body = document.body;
  const $ = (id) => document.getElementById(id);
  const MAX_ITEMS = 8; // the rest is summed up in "+N" (the total always counts everything)

  function text(id, value) {
    const el = $(id);
    if (el.textContent !== value) el.textContent = value;
  }

  let lastKey = null;

  function render(v) {
    text("beneficiary", v.beneficiary || "—");
    text("referrer", v.referrer);
    text("category", v.category || "—");
    text("container", v.container);
    const w = $("weight");
    w.dataset.state = v.weight.state;
    w.dataset.waiting = v.waiting ? "1" : "0";
    text("weight-number", v.weight.number);
    text("weight-state", v.weight.words);

    const list = $("items");
    const shown = v.items.slice(-MAX_ITEMS);
    list.replaceChildren(
      ...shown.map((item) => {
        const li = document.createElement("li");
        const kg = document.createElement("span");
        kg.className = "kg";
        kg.textContent = item.weight;
        const cat = document.createElement("span");
        cat.className = "cat";
        cat.textContent = item.category;
        li.append(kg, cat);
        return li;
      })
    );
    text("more", v.items.length > shown.length ? "+" + (v.items.length - shown.length) : "");
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
    text("hint", v.hint);
    const sync = $("sync");
    sync.dataset.state = v.sync.state;
    text("sync", v.sync.words);
    text("warnings", v.warnings.join(" · "));
  }

  render(JSON.parse($("initial").textContent));

  const link = $("link");
  const events = new EventSource(body.dataset.events);
  events.addEventListener("view", (e) => {
    link.hidden = true;
    body.dataset.live = "1";
    render(JSON.parse(e.data));
  });
  events.addEventListener("error", () => {
    // the browser reconnects by itself; meanwhile say the screen may be stale
    link.textContent = body.dataset.lost;
    link.hidden = false;
    body.dataset.live = "0";
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
        setTimeout(() => {
          if (Date.now() - armed >= 3000) {
            button.textContent = label;
            button.classList.remove("armed");
          }
        }, 3100);
        return;
      }
      armed = 0;
      button.textContent = label;
      button.classList.remove("armed");
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
