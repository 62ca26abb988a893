// GET /api/health: {"status":"ok"}, answered on every request (never prerendered). The dev
// server (`next dev`) adds "mode":"dev", so a test can tell the dev target from the prod one.
export const dynamic = "force-dynamic";

export function GET() {
  const body = process.env.NODE_ENV === "development" ? { status: "ok", mode: "dev" } : { status: "ok" };
  return Response.json(body);
}
