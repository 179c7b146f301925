// Draws the statistics chart from the JSON the page carries (no inline script: the CSP forbids it).
window.addEventListener("DOMContentLoaded", () => {
  const data = document.getElementById("chart-data");
  if (!data || !window.Chart) return;
  const chart = JSON.parse(data.textContent);
  const words = JSON.parse(document.getElementById("chart-words").textContent);
  const colours = { answered: "#1e6b34", abandoned: "#c77700", missed: "#a11d1d", other: "#5b6675" };
  const datasets = Object.keys(chart.series).map((name) => ({
    label: words[name] || name, data: chart.series[name], backgroundColor: colours[name], stack: "calls",
  }));
  new window.Chart(document.getElementById("outcomes"), {
    type: "bar",
    data: { labels: chart.labels, datasets },
    options: { responsive: true, maintainAspectRatio: false, animation: false,
      scales: { x: { stacked: true }, y: { stacked: true, beginAtZero: true, ticks: { precision: 0 } } } },
  });
});
