// Next.js reads this; the stand-in build (build.js) honours the same setting.
module.exports = { output: "standalone" };
