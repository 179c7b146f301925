// Shared by the live board and the desk: durations as m:ss / h:mm:ss, and table cells.
window.Timers = {
  clock(seconds) {
    const s = Math.max(0, Math.round(seconds));
    const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
    return (h ? h + ":" + String(m).padStart(2, "0") : m) + ":" + String(r).padStart(2, "0");
  },
  cell(text) { const td = document.createElement("td"); td.textContent = text; return td; },
};
