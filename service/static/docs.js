// Starts Swagger UI on this service's own OpenAPI document (GET /openapi.json).
// A file of its own rather than an inline script, so that the page's Content-Security-Policy
// can forbid inline scripts; everything it loads comes from this service.
"use strict";

window.addEventListener("DOMContentLoaded", function () {
  var tokenRequired = document.body.dataset.token === "required";
  var ui = SwaggerUIBundle({
    url: new URL("openapi.json", document.baseURI).href,
    dom_id: "#swagger-ui",
    // Swagger UI would otherwise send the document to a validator on another site for a badge.
    validatorUrl: null,
    deepLinking: false,
    displayRequestDuration: true,
    defaultModelsExpandDepth: 0,
    onComplete: function () {
      if (tokenRequired) {
        document.getElementById("token-notice").hidden = false;
        ui.authActions.showDefinitions(ui.authSelectors.definitionsToAuthorize());
      }
    },
  });
  window.ui = ui;
});
