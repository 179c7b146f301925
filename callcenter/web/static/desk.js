// The operator desk: its state from /desk/events (server-sent events); availability and notes are posted with
// fetch so the page (and, later, its softphone) stays up; without scripts the forms post normally.
(() => {
  const words = JSON.parse(document.getElementById("desk-words").textContent);
  const topics = JSON.parse(document.getElementById("desk-topics").textContent);
  const state = { desk: null, offset: 0 };
  const $ = (id) => document.getElementById(id);
  const word = (key) => words[key] || key;

  const { clock, cell } = window.Timers;
  const now = () => Date.now() / 1000 - state.offset;

  function say(text, bad) {
    const box = $("desk-message");
    box.textContent = text; box.hidden = !text;
    box.classList.toggle("error", Boolean(bad));
  }

  function renderMe(me) {
    const pill = $("my-state");
    const current = me ? me.state : "unreachable";
    pill.dataset.state = current;
    pill.className = "pill state-" + current;
    pill.textContent = word(current);
    const reason = me && me.paused_reason;
    $("my-reason").textContent = !reason ? "" : reason === "Auto-Pause"
      ? word("paused by the queue: a call rang out unanswered") : "(" + word(reason) + ")";
    $("my-since").dataset.since = me && me.since ? me.since : "";
    for (const form of document.querySelectorAll("form.desk-action")) {
      form.hidden = !form.dataset.show.split(" ").includes(current);
    }
  }

  function renderOffer(offer) {
    $("offer-none").hidden = Boolean(offer);
    $("offer-body").hidden = !offer;
    const badge = $("offer-state");
    badge.textContent = offer ? word(offer.state === "ringing" ? "ringing_offer" : offer.state) : "";
    badge.className = offer ? "pill state-" + (offer.state === "ringing" ? "ringing" : "on_call") : "pill";
    if (!offer) return;
    $("offer-number").textContent = offer.caller_number;
    $("offer-name").textContent = offer.caller_name || "";
    $("offer-line").textContent = offer.line + (offer.line_name ? " · " + offer.line_name : "");
    $("offer-topic").textContent = topics[offer.topic] || offer.topic || word("None");
    $("offer-waited").dataset.since = offer.queued || "";
    const requests = $("offer-requests"), earlier = $("offer-earlier");
    requests.replaceChildren(); earlier.replaceChildren();
    if (offer.requests === null) { requests.append(Object.assign(document.createElement("li"), { textContent: "…" })); }
    else if (!offer.requests.length) { requests.append(Object.assign(document.createElement("li"), { textContent: word("None"), className: "muted" })); }
    else for (const r of offer.requests) {
      const li = document.createElement("li");
      li.textContent = new Date(r.started_at * 1000).toLocaleString() + " · " + word(r.status) +
        (r.callback_number ? " · " + r.callback_number : "");
      li.dataset.request = r.id;
      requests.append(li);
    }
    const theirs = $("offer-cases");
    theirs.replaceChildren();
    for (const c of offer.cases || []) {
      const li = document.createElement("li"), link = document.createElement("a");
      link.href = "/cases/" + c.number; link.textContent = c.number; link.className = "num";
      li.dataset.case = c.number;
      li.append(link, " · " + word(c.status) + " · " + (topics[c.topic] || c.topic));
      theirs.append(li);
    }
    if (offer.cases && !offer.cases.length) {
      theirs.append(Object.assign(document.createElement("li"), { textContent: word("None"), className: "muted" }));
    }
    for (const c of offer.earlier || []) {
      const tr = document.createElement("tr");
      const link = document.createElement("a");
      link.href = "/calls/" + c.id; link.textContent = new Date(c.started_at * 1000).toLocaleString();
      const first = document.createElement("td"); first.append(link);
      tr.append(first, cell(word(c.status)), cell(topics[c.topic] || c.topic || ""), cell(c.operator || ""));
      earlier.append(tr);
    }
    if (offer.earlier && !offer.earlier.length) {
      const tr = document.createElement("tr"), td = cell(word("None"));
      td.colSpan = 4; td.className = "empty"; tr.append(td); earlier.append(tr);
    }
  }

  function renderLast(last, wrapup) {
    const form = $("note-form");
    $("wrapup-none").hidden = Boolean(last);
    form.hidden = !last;
    const timer = $("wrapup-timer");
    timer.hidden = !(last && wrapup);
    timer.dataset.until = last && wrapup ? last.since + wrapup : "";
    $("case-box").hidden = !last;
    if (!last || $("note-linkedid").value === last.linkedid) return;
    $("note-linkedid").value = last.linkedid;  // a new conversation ended: fresh forms
    $("case-form").reset();
    $("case-linkedid").value = last.linkedid;
    $("case-form").querySelector("[name=topic]").value = last.topic || "";
    $("case-form").querySelector("[name=contact_phone]").value = last.caller_number || "";
    $("note-text").value = ""; $("note-topic").value = "";
    $("last-caller").textContent = last.caller_number + (last.caller_name ? " · " + last.caller_name : "");
    $("last-topic").textContent = topics[last.topic] || last.topic || word("None");
  }

  function render() {
    const desk = state.desk;
    const link = $("link-state");
    // Several nodes: the nodes away are named, after "connected" too (a node away that lacks the phone does not
    // stop the desk, but calls queued there do not reach the operator until it is back).
    const away = desk.away || [], several = Object.keys((desk.operator || {}).nodes || {}).length > 1;
    const named = several && away.length ? away.join(", ") : "";
    link.textContent = desk.connected
      ? link.dataset.connected + (named ? " (" + link.dataset.away + ": " + named + ")" : "")
      : link.dataset.disconnected + (named ? " (" + named + ")" : "");
    link.dataset.state = desk.connected ? (named ? "partial" : "up") : "down";  // partial: the warning colour
    renderMe(desk.operator);
    renderOffer(desk.offer);
    renderLast(desk.last, desk.wrapup_seconds);
    tick();
  }

  function tick() {
    const since = $("my-since").dataset.since;
    $("my-since").textContent = since ? clock(now() - since) : "";
    const waited = $("offer-waited").dataset.since;
    $("offer-waited").textContent = waited ? clock(now() - waited) : "";
    const until = $("wrapup-timer").dataset.until;
    if (until) $("wrapup-timer").textContent = clock(until - now());
  }

  async function post(form, submitter) {
    // URL-encoded, as the forms post without scripts (the CSRF check reads the token from such a body)
    const body = new URLSearchParams(new FormData(form));
    if (submitter && submitter.name) body.set(submitter.name, submitter.value);
    // getAttribute: a control named "action" shadows form.action
    const answer = await fetch(form.getAttribute("action"), { method: "POST", body, headers: { Accept: "application/json" } });
    const data = await answer.json().catch(() => ({}));
    return { ok: answer.ok, detail: data.detail || answer.statusText, data };
  }

  for (const form of document.querySelectorAll("form.desk-action, #note-form, #case-form")) {
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const result = await post(form, event.submitter);
      if (form.id === "note-form" && result.ok) { say(word("Saved")); $("note-text").value = ""; }
      else if (form.id === "case-form" && result.ok) {
        say(word("Case opened. Tell the citizen the case number:") + " " + result.data.number);
        $("case-number-opened").textContent = result.data.number;
        $("case-box").open = false;
      }
      else say(result.ok ? "" : result.detail, !result.ok);
    });
  }

  const source = new EventSource("/desk/events");
  source.addEventListener("desk", (event) => {
    state.desk = JSON.parse(event.data);
    if (state.desk.sent_at) state.offset = Date.now() / 1000 - state.desk.sent_at;
    render();
  });
  source.addEventListener("error", () => {
    const link = $("link-state");
    link.textContent = link.dataset.disconnected; link.dataset.state = "down";
  });
  setInterval(tick, 1000);
})();
