// The live board: snapshots from /live/events (server-sent events), timers counted up every second.
(() => {
  const words = JSON.parse(document.getElementById("live-words").textContent);
  const topics = JSON.parse(document.getElementById("live-topics").textContent);
  const state = { board: null, offset: 0 };

  const { clock, cell } = window.Timers;
  const now = () => Date.now() / 1000 - state.offset;

  // Several Asterisk nodes: each call says which one has it, each operator's state on every node is in its title.
  const several = () => (state.board.nodes || []).length > 1;

  function renderCalls() {
    const stages = state.board.calls || {};
    for (const body of document.querySelectorAll("tbody[data-stage]")) {
      const stage = body.dataset.stage, calls = stages[stage] || [];
      document.querySelector(`[data-stage-count="${stage}"]`).textContent = calls.length;
      body.replaceChildren();
      if (!calls.length) {
        const tr = document.createElement("tr"), td = cell(words.none);
        td.colSpan = 5; td.className = "empty"; tr.append(td); body.append(tr); continue;
      }
      for (const call of calls) {
        const tr = document.createElement("tr");
        tr.dataset.linkedid = call.linkedid;
        const who = (call.caller_number || "") + (call.caller_name ? " · " + call.caller_name : "");
        const timer = cell(clock(now() - call.since));
        timer.dataset.since = call.since; timer.className = "num";
        tr.dataset.node = call.node || "";
        tr.append(cell(who), cell(call.line + (several() && call.node ? " · " + call.node : "")),
                  cell(topics[call.topic] || call.topic || ""),
                  cell(stage === "talking" ? call.operators.join(" → ") : new Date(call.since * 1000).toLocaleTimeString()),
                  timer);
        body.append(tr);
      }
    }
  }

  function renderOperators() {
    const body = document.getElementById("operators");
    body.replaceChildren();
    for (const op of state.board.operators || []) {
      const tr = document.createElement("tr"), badge = document.createElement("span");
      badge.className = "pill state-" + op.state;
      badge.textContent = (words[op.state] || op.state) + (op.paused_reason ? " (" + op.paused_reason + ")" : "");
      if (several()) {
        badge.title = Object.entries(op.nodes || {}).map(([node, st]) => node + ": " + (words[st] || st)).join(", ");
      }
      const st = document.createElement("td"); st.append(badge);
      const timer = cell(op.since ? clock(now() - op.since) : ""); timer.dataset.since = op.since || "";
      tr.append(cell(op.name + " (" + op.id + ")"), st, timer);
      body.append(tr);
    }
  }

  function render() {
    const link = document.getElementById("link-state");
    const away = (state.board.nodes || []).filter((node) => !node.connected).map((node) => node.name);
    link.textContent = state.board.connected ? link.dataset.connected
      : link.dataset.disconnected + (several() && away.length ? " (" + away.join(", ") + ")" : "");
    link.dataset.state = state.board.connected ? "up" : "down";
    for (const node of document.querySelectorAll("[data-count]")) {
      node.textContent = (state.board.today || {})[node.dataset.count] || 0;
    }
    renderCalls();
    renderOperators();
  }

  const source = new EventSource("/live/events");
  source.addEventListener("board", (message) => {
    state.board = JSON.parse(message.data);
    state.offset = Date.now() / 1000 - state.board.sent_at;
    render();
    document.body.dataset.boardVersion = String((Number(document.body.dataset.boardVersion) || 0) + 1);
  });
  setInterval(() => {
    for (const node of document.querySelectorAll("[data-since]")) {
      if (node.dataset.since) node.textContent = clock(now() - Number(node.dataset.since));
    }
  }, 1000);
})();
