/* Swagger UI over the gateway's OpenAPI document (the URL is the page's
 * data-openapi-url). A file of its own, not an inline script: the gateway's
 * Content-Security-Policy allows scripts from the gateway only. */
(function () {
  "use strict";
  var root = document.getElementById("swagger-ui");

  window.ui = SwaggerUIBundle({
    url: root.getAttribute("data-openapi-url"),
    domNode: root,
    layout: "BaseLayout", // no top bar: it would offer to load documents from anywhere
    presets: [SwaggerUIBundle.presets.apis],
    validatorUrl: null, // the badge would send the document to validator.swagger.io
    // Deep links put a link inside each operation's toggle button, and
    // controls nested in a button are lost to keyboards and screen readers
    // (axe: nested-interactive).
    deepLinking: false,
    // Swagger UI's default code colours ("agate") put some text at 3.5:1
    // on its dark background; "arta"'s all reach 4.5:1 (axe: color-contrast).
    syntaxHighlight: {activated: true, theme: "arta"}
  });

  // Fixes to what Swagger UI 4.15.5 renders, kept up as it re-renders:
  // - each operation's toggle is labelled "post /v1/referrals" while it also
  //   shows the operation's summary: a speech-input user saying what they
  //   see finds no such control (WCAG 2.5.3; axe: label-content-name-mismatch).
  //   Without the label, the button's name is all it shows;
  // - the examples' code blocks scroll sideways but cannot be focused, so a
  //   keyboard cannot scroll them (axe: scrollable-region-focusable);
  // - some controls have no name (axe: button-name, label, select-name): the
  //   dialogs' close button and the copy buttons (icons), the request body's
  //   text area and the lists of a parameter's values (under "Try it out").
  function each(selector, change) {
    var nodes = root.querySelectorAll(selector);
    for (var i = 0; i < nodes.length; i++) {
      change(nodes[i]);
    }
  }
  function fix() {
    each(".opblock-summary-control[aria-label]", function (node) { node.removeAttribute("aria-label"); });
    each("pre.microlight:not([tabindex])", function (node) { node.setAttribute("tabindex", "0"); });
    each("button.close-modal:not([aria-label])", function (node) { node.setAttribute("aria-label", "Close"); });
    each(".copy-to-clipboard button:not([aria-label])", function (node) {
      node.setAttribute("aria-label", "Copy to clipboard");
    });
    each("textarea.body-param__text:not([aria-label])", function (node) {
      node.setAttribute("aria-label", "Request body");
    });
    each("tr[data-param-name] select:not([aria-label])", function (node) {
      node.setAttribute("aria-label", node.closest("tr").getAttribute("data-param-name"));
    });
  }
  new MutationObserver(fix).observe(root, {
    childList: true, subtree: true, attributes: true, attributeFilter: ["aria-label", "tabindex"]
  });
})();
