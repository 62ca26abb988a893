// The standalone server build.js puts at .next/standalone/server.js. Like Next.js's, it runs
// from its own folder and serves .next/static at /_next/static and public/ at /.
const http = require("http");
const fs = require("fs");
const path = require("path");

process.chdir(__dirname);
const pages = path.join(__dirname, "node_modules", "built-pages");
const port = Number(process.env.PORT || 3000);
const host = process.env.HOSTNAME || "0.0.0.0";

function send(res, status, type, body) {
  res.writeHead(status, { "content-type": type });
  res.end(body);
}

http
  .createServer((req, res) => {
    const url = req.url.split("?")[0];
    if (url === "/api/health") return send(res, 200, "application/json", fs.readFileSync(path.join(pages, "health.json")));
    if (url === "/") return send(res, 200, "text/html", fs.readFileSync(path.join(pages, "index.html")));
    const file = url.startsWith("/_next/static/")
      ? path.join(".next", "static", url.slice("/_next/static/".length))
      : path.join("public", url);
    const safe = path.normalize(file);
    if (safe.startsWith("..") || !fs.existsSync(safe) || !fs.statSync(safe).isFile()) return send(res, 404, "text/plain", "not found\n");
    send(res, 200, "application/octet-stream", fs.readFileSync(safe));
  })
  .listen(port, host, () => console.log(`ready on ${host}:${port}`));
