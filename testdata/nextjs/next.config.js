// Next.js configuration. `output: "standalone"` makes `next build` write .next/standalone: a
// server.js plus the node_modules it traced, which is all the runtime image needs (with
// .next/static and public copied beside it, as the Next.js docs say).
/** @type {import('next').NextConfig} */
module.exports = {
  output: "standalone",
  // Trace from this folder, whatever lockfiles sit in the folders above it, so the standalone
  // tree is always .next/standalone/server.js (not nested under a guessed workspace root).
  outputFileTracingRoot: __dirname,
  // A fixed build id (default: random per build), so the static asset paths under
  // /_next/static/<id>/ are the same from one build to the next.
  generateBuildId: async () => "hoist-example",
  // No ESLint in this example.
  eslint: { ignoreDuringBuilds: true },
};
