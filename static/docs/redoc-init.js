// ReDoc for /redoc. Redoc 3 ships its standalone bundle as an ES module.
import { init } from "../vendor/redoc/redoc.standalone.js";

init(
  new URL("openapi.json", document.baseURI).href,
  // Telemetry would report to Redocly; the CSP's connect-src 'self' blocks it as well.
  { disableTelemetry: true },
  document.getElementById("redoc-container"),
);
