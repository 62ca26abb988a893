// GET /api/health
module.exports = function health() {
  return { status: "ok" };
};
