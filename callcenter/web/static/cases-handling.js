// Draws the handling-time chart from the JSON the page carries (no inline script: the CSP forbids it).
window.addEventListener("DOMContentLoaded", () => {
  const data = document.getElementById("handling-data");
  if (!data || !window.Chart) return;
  const chart = JSON.parse(data.textContent);
  const words = JSON.parse(document.getElementById("handling-words").textContent);
  new window.Chart(document.getElementById("handling-chart"), {
    type: "bar",
    data: { labels: chart.labels, datasets: [
      { label: words.average, data: chart.average, backgroundColor: "#0b5cad" },
      { label: words.p90, data: chart.p90, backgroundColor: "#c77700" },
    ] },
    options: { responsive: true, maintainAspectRatio: false, animation: false,
      scales: { y: { beginAtZero: true, title: { display: true, text: "h" } } } },
  });
});
