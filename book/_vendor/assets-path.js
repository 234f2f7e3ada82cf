// Loaded on widget pages just before require.js and embed-amd.js (see _config.yml).
// The AMD modules bundled in embed-amd.js locate their assets (Font Awesome fonts) from
// their module URL; map their ids to this folder, where the fonts are vendored, so that
// nothing is fetched from a CDN or from the page's folder.
(function () {
  var base = document.currentScript.src.replace(/[^/]*([?#].*)?$/, "");
  window.__jupyter_widgets_assets_path__ = base;
  var ids = ["@jupyter-widgets/base", "@jupyter-widgets/controls", "@jupyter-widgets/base7",
             "@jupyter-widgets/controls7", "@jupyter-widgets/html-manager",
             "@jupyter-widgets/html-manager/dist/libembed-amd"];
  var paths = {};
  ids.forEach(function (id) { paths[id] = base + id.replace(/\//g, "_"); });
  // require.js reads a global `require` object defined before it loads as its configuration
  if (typeof window.require === "undefined") { window.require = { paths: paths }; }
})();
