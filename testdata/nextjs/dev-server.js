// The dev target's server (a stand-in for `next dev`): renders the page from the sources on
// every request.
const http = require("http");
const port = Number(process.env.PORT || 3000);
http
  .createServer((req, res) => {
    const url = req.url.split("?")[0];
    for (const m of Object.keys(require.cache)) delete require.cache[m];
    if (url === "/api/health") {
      res.writeHead(200, { "content-type": "application/json" });
      return res.end(JSON.stringify({ ...require("./app/api-health.js")(), mode: "dev" }));
    }
    res.writeHead(200, { "content-type": "text/html" });
    res.end(require("./app/page.js")());
  })
  .listen(port, "0.0.0.0", () => console.log(`dev server on ${port}`));
