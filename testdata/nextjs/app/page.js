// The app's one page, rendered to HTML by the build (and live by dev-server.js).
module.exports = function page() {
  return "<!doctype html><title>hoist nextjs example</title><h1>Hello from a standalone build</h1>" +
    '<script src="/_next/static/chunks/main.js"></script>';
};
