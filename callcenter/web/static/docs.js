// Starts Swagger UI on /docs from the app's own copy (no CDN, no inline script: the CSP forbids both).
window.addEventListener("DOMContentLoaded", () => {
  const node = document.getElementById("swagger-ui");
  window.SwaggerUIBundle({ url: node.dataset.spec, dom_id: "#swagger-ui" });
});
