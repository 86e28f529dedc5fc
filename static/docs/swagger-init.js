// Swagger UI for /docs. Kept out of the HTML so the page needs no inline script.
// Relative URLs keep it working behind a reverse proxy that mounts the service under a prefix.
"use strict";

window.addEventListener("DOMContentLoaded", function () {
  window.ui = SwaggerUIBundle({
    url: new URL("openapi.json", document.baseURI).href,
    dom_id: "#swagger-ui",
    deepLinking: true,
    // The public validator badge would send the document to a third party.
    validatorUrl: null,
    // Keys entered under "Authorize" live only as long as the tab; never in localStorage.
    persistAuthorization: false,
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
  });
});
