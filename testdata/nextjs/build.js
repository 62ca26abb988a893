// A stand-in for `next build` with output: "standalone" (the real one needs the next package):
// it writes the layout Next.js documents, so hoist's nextjs-standalone recipe can be tested
// without downloading Next.js.
//   .next/standalone/server.js      the server, which the image runs with `node server.js`
//   .next/standalone/package.json
//   .next/standalone/node_modules/  what the server needs, traced (here: the built pages)
//   .next/static/chunks/main.js     client assets, served at /_next/static/
// public/ is not copied: as with Next.js, it must be put beside server.js.
const fs = require("fs");
const path = require("path");

const out = path.join(__dirname, ".next");
fs.rmSync(out, { recursive: true, force: true });
const standalone = path.join(out, "standalone");
const pages = path.join(standalone, "node_modules", "built-pages");
fs.mkdirSync(pages, { recursive: true });
fs.mkdirSync(path.join(out, "static", "chunks"), { recursive: true });

const page = require("./app/page.js");
fs.writeFileSync(path.join(pages, "index.html"), page());
fs.writeFileSync(
  path.join(pages, "health.json"),
  JSON.stringify(require("./app/api-health.js")())
);
fs.writeFileSync(path.join(pages, "package.json"), '{"name":"built-pages","version":"0.0.0"}\n');
fs.writeFileSync(
  path.join(standalone, "package.json"),
  JSON.stringify({ name: "nextjs-standalone-example", private: true }, null, 2) + "\n"
);
fs.copyFileSync(path.join(__dirname, "server.template.js"), path.join(standalone, "server.js"));
fs.writeFileSync(path.join(out, "static", "chunks", "main.js"), "console.log('hydrated');\n");
console.log("built .next/standalone and .next/static");
